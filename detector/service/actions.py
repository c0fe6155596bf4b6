"""What each command does to a camera: its settings, its masks, its alert (reset, test alert,
"Not smoke"), and the masks the Pyronear API sends through the bridge.

The command table (command_table.py) parses and routes; these actions run on the control thread,
change the pipeline's scoring state under the service's lock (the inference worker reads it) and
publish what changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from detector.annotate import annotate_jpeg
from detector.masks import Mask, masks_from_json, masks_to_json
from detector.pipeline import Pipeline
from detector.service.alerts import test_alert_boxes
from detector.service.cameras import CameraWatch
from detector.service.command_table import CommandRefused
from detector.service.false_alarm import FalseAlarm, false_alarm_masks, masks_attributes
from detector.service.false_alarm_store import FalseAlarmStore
from detector.service.publisher import Publisher
from detector.service.refusals import RefusalLog
from detector.service.scheduler import Scheduler
from detector.service.settings import MASKS_MAX_BYTES
from detector.untrusted import parse_json

_LOGGER = logging.getLogger(__name__)

TEST_ALERT_SECONDS = 30.0
# A masks/remote payload retained by a bridge older than the mask JSON (the API's own mask
# strings) is refused with this; the upgraded bridge replaces it at its first masks fetch.
REMOTE_MASKS_HINT = (
    "; the previous remote masks stay (a payload from an older bridge is replaced at the"
    " upgraded bridge's first masks fetch)"
)


class CameraActions:
    """The commands' effects on the cameras (control thread)."""

    def __init__(
        self,
        cameras: dict[str, CameraWatch],
        pipeline: Pipeline,
        lock: threading.Lock,
        publisher: Publisher,
        refusals: RefusalLog,
        scheduler: Scheduler,
        run_on_control: Callable[[Callable[[], None]], Any],
        false_alarms: FalseAlarmStore | None = None,
    ) -> None:
        self.cameras = cameras
        self.pipeline = pipeline
        self.lock = lock  # the pipeline's and the alerts' state: worker vs commands
        self.publisher = publisher
        self.refusals = refusals
        self.scheduler = scheduler
        self.run_on_control = run_on_control  # queues a task for the control thread (timers)
        self.false_alarms = false_alarms  # where dismissed alerts' frames are kept
        self.test_alert_seconds = TEST_ALERT_SECONDS

    # -- settings --------------------------------------------------------------------------

    def set_enabled(self, camera: str, enabled: bool, source: str) -> None:
        """The Detection switch."""
        self.cameras[camera].settings.set("enabled", enabled)
        self.apply_live(camera)
        self.publish_settings(camera)

    def set_threshold(self, camera: str, threshold: float, source: str) -> None:
        """The Smoke threshold number."""
        self.cameras[camera].settings.set("threshold", threshold)
        self.apply_live(camera)
        self.publish_settings(camera)

    def set_masks(self, camera: str, masks: list[Mask], source: str) -> None:
        """The zones drawn in HA (local masks): replaced as a whole."""
        with self.lock:
            self.pipeline.camera(camera).set_masks("local", masks)
        self.publish_settings(camera)

    def use_file_settings(self, camera: str) -> None:
        """Back to the file's enabled and threshold."""
        changed = self.cameras[camera].settings.use_file()
        self.apply_live(camera)
        self.publish_settings(camera)
        _LOGGER.info(
            "Camera %s: back to the file's settings (%s)", camera, ", ".join(changed) or "no change"
        )

    def apply_live(self, camera: str) -> None:
        """Hand the camera's live settings to whoever uses them (the scheduler, the vote)."""
        settings = self.cameras[camera].settings
        if not settings.enabled:
            self.scheduler.discard(camera)
        with self.lock:
            state = self.pipeline.camera(camera)
            if state.settings.threshold != settings.threshold:
                state.set_threshold(settings.threshold)

    def publish_settings(self, camera: str) -> None:
        """The settings' states, where they come from, and every mask of the camera."""
        watch = self.cameras[camera]
        self.publisher.setting_states(
            camera,
            enabled=watch.settings.enabled,
            threshold=watch.settings.threshold,
            masks=masks_to_json(self.pipeline.camera(camera).masks("local")),
            sources=watch.settings.to_json(),
        )
        self.publish_masks_attributes(camera)

    def publish_masks_attributes(self, camera: str) -> None:
        """Every mask of the camera (local, the API's, false alarms) for the zone card."""
        state = self.pipeline.camera(camera)
        attributes = masks_attributes(
            state.masks("local"), state.masks("remote"), list(self.cameras[camera].false_alarms)
        )
        self.publisher.masks_attributes(camera, attributes)

    def remote_masks(self, camera: str, payload: bytes) -> None:
        """The Pyronear API's masks, as the bridge translated them into mask JSON."""
        if camera not in self.cameras:
            return
        try:
            data = parse_json(payload, max_bytes=MASKS_MAX_BYTES) if payload else []
            masks = masks_from_json(data)
        except ValueError as err:
            self.refusals.refuse(camera, "bad_remote_masks", f"{err}{REMOTE_MASKS_HINT}")
            return
        with self.lock:
            self.pipeline.camera(camera).set_masks("remote", masks)
        self.publish_masks_attributes(camera)
        _LOGGER.info("Camera %s: %d occlusion mask(s) from the Pyronear API", camera, len(masks))

    # -- the alert -------------------------------------------------------------------------

    def reset(self, camera: str) -> None:
        """Acknowledge: the alert ends and the vote starts again."""
        with self.lock:
            self.pipeline.camera(camera).reset()
            self.publisher.alert(camera, self.cameras[camera].alert.reset())
        _LOGGER.info("Camera %s: alert reset", camera)

    def false_alarm(self, camera: str) -> None:
        """ "Not smoke": mask the latest alert's boxes (IoU rule), then end the alert."""
        watch = self.cameras[camera]
        with self.lock:
            state = self.pipeline.camera(camera)
            local = state.masks("local")
            added = false_alarm_masks(watch.alert.boxes, [mask.name for mask in local])
            if not added:
                raise CommandRefused("no alert on this camera has boxes to mask yet")
            state.set_masks("local", (*local, *added))
            event = FalseAlarm(
                at=time.time(),
                alert_started=watch.alert.boxes_started,
                masks=tuple(mask.name for mask in added),
                boxes=tuple(mask.bounds for mask in added),
            )
            watch.false_alarms.append(event)
            state.reset()
            change = watch.alert.dismissed(event)
            frames = list(watch.recent)
            watch.recent.clear()  # the vote restarts: so does what a next dismissal keeps
        if self.false_alarms is not None:
            self.false_alarms.save(camera, frames, event)
        _LOGGER.info(
            "Camera %s: false alarm, %d box(es) masked as %s",
            camera,
            len(added),
            ", ".join(event.masks),
        )
        self.publish_settings(camera)
        # The alert ends as an acknowledged one does.
        self.publisher.alert(camera, change)
        _LOGGER.info("Camera %s: alert reset", camera)

    def test_alert(self, camera: str) -> None:
        """A synthetic alert through the real outputs; never forwarded to the Pyronear API."""
        watch = self.cameras[camera]
        source = watch.last_jpeg or _blank_jpeg()
        image = annotate_jpeg(
            source, test_alert_boxes(), label="test", banner="SMOKEWATCH TEST ALERT"
        )
        with self.lock:
            change = watch.alert.test_started(time.time())
            if change is None:
                raise CommandRefused("a test alert is refused while an alert is on")
            watch.alert_image = image
            self.publisher.alert_image(camera, image)
            self.publisher.alert(camera, change)
        _LOGGER.info("Camera %s: test alert for %.0f s", camera, self.test_alert_seconds)

        def end() -> None:
            with self.lock:
                ended = watch.alert.test_ended()
                if ended is not None:  # neither reset nor a real alert took over meanwhile
                    self.publisher.alert(camera, ended)

        watch.test_timer = threading.Timer(
            self.test_alert_seconds, lambda: self.run_on_control(end)
        )
        watch.test_timer.daemon = True
        watch.test_timer.start()


def _blank_jpeg() -> bytes:
    """A grey frame for a test alert on a camera that has not sent one yet."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", np.full((360, 640, 3), 96, np.uint8))
    assert ok
    return bytes(encoded.tobytes())
