"""The one door of live frames: known camera, one size check, then the camera's slot.

MQTT snapshots (`message`, on paho's thread) and the built-in poller's frames (on the poller's
threads) both end in `offer`, so a frame is held to `detection.max_frame_bytes` once, in one
place, whatever brought it. What happens to a frame that passed (the scheduler's slot, the
camera's health) is the service's `store`; a refusal goes to its `reject`, counted and logged.
"""

from __future__ import annotations

from collections.abc import Callable

from detector.config import CameraConfig
from detector.errors import FrameError
from detector.frames import check_frame_size
from detector.inputs.pollers import Report, SourceRunner
from detector.supervise import Health

Store = Callable[[str, bytes], None]  # camera, payload
Republish = Callable[[str, bytes], object]  # full topic, payload


class FrameInputs:
    """Every live frame of the configured cameras, from MQTT and from the built-in poller."""

    def __init__(
        self,
        cameras: list[CameraConfig],
        *,
        max_bytes: int,
        store: Store,
        reject: Report,
        republish: Republish,
        health: Health | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.store, self.reject, self.republish = store, reject, republish
        self.cameras = {camera.id: camera for camera in cameras}
        # Full image topic → camera: what `message` routes by (a topic may be set per camera).
        self.image_topics = {camera.image_topic: camera.id for camera in cameras}
        self.pollers = SourceRunner(cameras, self._polled, reject, max_bytes, health=health)

    def start(self) -> None:
        """Start the built-in poller (MQTT frames arrive through `message`)."""
        self.pollers.start()

    def stop(self) -> None:
        """Stop the built-in poller."""
        self.pollers.stop()

    def message(self, topic: str, payload: bytes) -> None:
        """A snapshot arrived on an image topic (paho's thread: only checks and stores)."""
        camera = self.image_topics.get(topic)
        if camera is None:
            unknown = topic.split("/")[-2] if topic.count("/") else topic
            self.reject(unknown, "unknown_camera", f"frame on {topic} for a camera not configured")
            return
        self.offer(camera, payload)

    def offer(self, camera: str, payload: bytes) -> bool:
        """The one size check, then the camera's slot; False (reported) when refused."""
        try:
            check_frame_size(len(payload), self.max_bytes)
        except FrameError as err:
            self.reject(camera, err.reason, str(err))
            return False
        self.store(camera, payload)
        return True

    def _polled(self, camera: str, payload: bytes) -> None:
        """A frame of the built-in poller (on a poller thread)."""
        source = self.cameras[camera].source
        if source is not None and source.publish:
            # Other consumers see the same frame; it comes back through `message` (and the
            # gate) by the service's own subscription.
            self.republish(self.cameras[camera].image_topic, payload)
        else:
            self.offer(camera, payload)
