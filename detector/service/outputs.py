"""Everything a scored frame sends out, in one place: the camera's view, score, attributes and
smoke state, the alert image (drawn off the scoring path), the scored frame for the zone card
(at a bounded rate), the Frigate event, and the detections for the bridge.

`scored` runs on the inference worker with the service's lock held, so a command on the
control thread cannot slip between a frame's vote and what it publishes: it only publishes
(paho queues) or hands work to the image executor, never waits on a disk or a server. The
bridge, in this process or another, takes the detections from the broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from detector.annotate import annotate_jpeg
from detector.contract import DetectionMessage
from detector.errors import FrameError
from detector.outputs.frigate import FrigateEvents
from detector.pipeline import FrameResult
from detector.service.alerts import AlertChange
from detector.service.cameras import CameraWatch
from detector.service.publisher import Publisher
from detector.supervise import Health

_LOGGER = logging.getLogger(__name__)

# The latest scored frame goes to Home Assistant (the zone card's picture) at most this often
# per camera: enough to draw on, without a multi-megabyte retained publish at every interval.
SCORED_FRAME_EVERY = 30.0


class FrameOutputs:
    """Publishes what one scored frame changed."""

    def __init__(
        self,
        publish: Publisher,
        health: Health,
        frigate: FrigateEvents,
        *,
        wake_control: Callable[[], None],
        status_changed: Callable[[], None],
        scored_frame_every: float = SCORED_FRAME_EVERY,
    ) -> None:
        self.publish = publish
        self.health = health
        self.frigate = frigate
        self.wake_control = wake_control  # the control loop offers refused detections again
        self.status_changed = status_changed  # a camera's status may follow its view at once
        self.scored_frame_every = scored_frame_every
        self._images = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-image")

    def scored(
        self, watch: CameraWatch, result: FrameResult, change: AlertChange, data: bytes
    ) -> None:
        """Publish what `result` (and the alert transition `change` it caused) changed."""
        camera = result.camera
        vote = result.vote
        if result.view is not None and result.view.state != watch.view:
            watch.view = result.view.state
            self.publish.view(camera, watch.view)
            _LOGGER.info("Camera %s: view %s", camera, watch.view)
            self.status_changed()
        if watch.alert.score is not None:
            self.publish.score(camera, watch.alert.score)
        if change.attributes is not None:
            self.publish.attributes(camera, change.attributes)
        if vote.ongoing:
            self._images.submit(self._alert_image, watch, data, vote.boxes)
        self._scored_frame(watch, data)
        if change.smoke is not None:
            self.publish.alert(camera, AlertChange(change.smoke, change.event))
            if change.smoke:
                _LOGGER.info("Camera %s: SMOKE (score %.1f)", camera, watch.alert.score or 0.0)
            else:
                _LOGGER.info("Camera %s: smoke alert ended", camera)
            if watch.config.frigate_events is not None:
                self.frigate.alert(camera, watch.config.frigate_events, change.smoke, vote.score)
        for detection in result.detections:
            self.detection(detection)

    def detection(self, detection: DetectionMessage) -> None:
        """One detection for the bridge, over MQTT (QoS 1: its persistent session keeps it)."""
        if not self.publish.detection(detection.camera, detection.to_json()):
            self.wake_control()  # the control loop offers it again

    def shutdown(self) -> None:
        """Finish the alert images being drawn."""
        self._images.shutdown(wait=True)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the alert images asked for so far are drawn and published."""
        self._images.submit(lambda: None).result(timeout)

    def _scored_frame(self, watch: CameraWatch, data: bytes) -> None:
        """The frame just scored, unannotated, for the zone card: at most once per period."""
        now = time.monotonic()
        last = watch.frame_published_at
        if last is not None and now - last < self.scored_frame_every:
            return
        watch.frame_published_at = now
        self.publish.frame(watch.config.id, data)

    def _alert_image(self, watch: CameraWatch, data: bytes, boxes: Any) -> None:
        camera = watch.config.id
        try:
            image = annotate_jpeg(data, boxes)
        except FrameError as err:
            _LOGGER.warning("Alert image of %s not drawn: %s", camera, err)
            return
        except Exception as err:  # runs in an executor: an exception would vanish in its future
            self.health.failed("alert image", err)
            return
        self.health.ok("alert image")
        watch.alert_image = image
        self.publish.alert_image(camera, image)
