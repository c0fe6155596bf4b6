"""What a Pyronear camera does besides detections: heartbeat, last image, pose image, masks.

Per camera: a heartbeat while frames flow (a frame seen within two heartbeat intervals), the
latest frame as the camera's image every `last_image_interval`, once a day after
`pose_image_hour` (local time) the latest frame as the pose's image, and every
`masks_interval` the pose's occlusion masks, translated into the detector's mask JSON
(detector.bridge.api_masks) and published retained for the detector. Only the
latest frame of each camera is kept, in memory. A failed duty is tried again after at most a
minute; its failures are logged when they start and when they end, not on every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detector.bridge.access import POSE, TOKEN, ApiAccess, pose_reason, token_reason
from detector.bridge.api import Outcome, PyronearClient, fit_for_upload
from detector.bridge.api_masks import translate_api_masks
from detector.bridge.outbox import Outbox
from detector.bridge.spacing import UploadSpacing
from detector.config import BridgeConfig
from detector.supervise import Health

_LOGGER = logging.getLogger(__name__)

RETRY_AFTER = 60.0
# Names of the persisted duty times (outbox table `duties`). The masks' name changed with what
# is published: an older bridge published the API's own mask strings, which the detector now
# refuses. Its saved time is not read, so the first fetch after the upgrade happens at once and
# replaces the retained payload within seconds instead of up to masks_interval later.
LAST_IMAGE, POSE_IMAGE, MASKS = "last_image", "pose_image_day", "masks_published"
# Duties that name the pose: a 403 there is the pose's (another camera's), not the token's.
POSE_DUTIES = ("pose image", "occlusion masks")


@dataclass
class CameraDuties:
    """What the duties remember about one camera (times are time.monotonic())."""

    frame: bytes | None = None
    frame_at: float | None = None
    next_heartbeat: float = 0.0
    next_last_image: float = 0.0
    next_masks: float = 0.0
    next_pose_image: float = 0.0
    pose_image_day: str | None = None
    masks: Any = None
    failing: set[str] = field(default_factory=set)


class Duties:
    """The periodic calls of every camera, run by one asyncio task."""

    def __init__(
        self,
        settings: BridgeConfig,
        api: PyronearClient,
        *,
        publish_masks: Callable[[str, str], None],
        on_outcome: Callable[[Outcome], None],
        local_now: Callable[[], datetime] = datetime.now,
        health: Health | None = None,
        spacing: UploadSpacing | None = None,
        outbox: Outbox | None = None,
        access: ApiAccess | None = None,
    ) -> None:
        self.settings = settings
        self.api = api
        self.publish_masks = publish_masks
        self.on_outcome = on_outcome
        self.local_now = local_now
        self.health = health or Health("bridge")
        self.spacing = spacing or UploadSpacing()
        self.outbox = outbox
        self.access = access or ApiAccess(self.health)
        self.cameras = {camera: CameraDuties() for camera in settings.cameras}
        self.calls: dict[str, int] = {}
        # API masks skipped (bad or too many) per camera: in the bridge's stats.
        self.masks_skipped: Counter[str] = Counter()
        if outbox is not None:
            self._restore(outbox.duty_times())

    def _restore(self, times: dict[tuple[str, str], str]) -> None:
        """Resume the cadence of the previous run: what succeeded recently is not redone."""
        now, wall = time.monotonic(), time.time()
        for camera, duties in self.cameras.items():
            for name, interval in (
                (LAST_IMAGE, self.settings.last_image_interval),
                (MASKS, self.settings.masks_interval),
            ):
                value = times.get((camera, name))
                if value is None:
                    continue
                with contextlib.suppress(ValueError):
                    due = now + max(0.0, interval - max(0.0, wall - float(value)))
                    if name == LAST_IMAGE:
                        duties.next_last_image = due
                    else:
                        duties.next_masks = due
            duties.pose_image_day = times.get((camera, POSE_IMAGE))

    async def _remember(self, camera: str, name: str, value: str) -> None:
        """Persist a duty's success; a storage failure costs at most one redone duty."""
        if self.outbox is None:
            return
        try:
            await asyncio.to_thread(self.outbox.set_duty_time, camera, name, value)
        except Exception as err:  # a full disk must not stop heartbeats
            self.health.failed("duty times", err)
        else:
            self.health.ok("duty times")

    def frame(self, camera: str, data: bytes) -> None:
        """A camera frame went by (paho's thread): keep only the latest one."""
        duties = self.cameras.get(camera)
        if duties is not None:
            duties.frame, duties.frame_at = data, time.monotonic()

    def flowing(self, camera: str, now: float | None = None) -> bool:
        """True when the camera sent a frame within two heartbeat intervals."""
        at = self.cameras[camera].frame_at
        now = time.monotonic() if now is None else now
        return at is not None and now - at < 2 * self.settings.heartbeat_interval

    async def run(self, stop: asyncio.Event) -> None:
        """Do what is due, then sleep until the next thing is (at most a second)."""
        while not stop.is_set():
            await self.run_due()
            self.health.ok("duties")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def run_due(self) -> None:
        """Every duty of every camera that is due now."""
        for camera, duties in self.cameras.items():
            identity = self.settings.cameras[camera]
            token = str(identity.token)
            now = time.monotonic()
            flowing = self.flowing(camera, now)
            if flowing and now >= duties.next_heartbeat:
                outcome = await self.api.heartbeat(token)
                duties.next_heartbeat = self._next(outcome, now, self.settings.heartbeat_interval)
                self._report(camera, "heartbeat", outcome)
            if flowing and duties.frame is not None and now >= duties.next_last_image:
                image = await self._upload_form(duties.frame)
                async with self.spacing.upload(camera, "camera", image):
                    outcome = await self.api.last_image(token, image)
                duties.next_last_image = self._next(outcome, now, self.settings.last_image_interval)
                self._report(camera, "last image", outcome)
                if outcome.ok:
                    await self._remember(camera, LAST_IMAGE, repr(time.time()))
            today = self.local_now()
            if (
                flowing
                and duties.frame is not None
                and now >= duties.next_pose_image
                and duties.pose_image_day != today.date().isoformat()
                and today.hour >= self.settings.pose_image_hour
            ):
                image = await self._upload_form(duties.frame)
                async with self.spacing.upload(camera, "pose", image):
                    outcome = await self.api.pose_image(token, identity.pose_id, image)
                if outcome.ok:
                    duties.pose_image_day = today.date().isoformat()
                    await self._remember(camera, POSE_IMAGE, duties.pose_image_day)
                else:
                    duties.next_pose_image = now + RETRY_AFTER
                self._report(camera, "pose image", outcome)
            if now >= duties.next_masks:
                outcome = await self.api.occlusion_masks(token, identity.pose_id)
                duties.next_masks = self._next(outcome, now, self.settings.masks_interval)
                if outcome.ok and outcome.body != duties.masks:
                    duties.masks = outcome.body
                    self._publish_masks(camera, outcome.body)
                self._report(camera, "occlusion masks", outcome)
                if outcome.ok:
                    await self._remember(camera, MASKS, repr(time.time()))

    def _publish_masks(self, camera: str, body: Any) -> None:
        """Publish the API's masks in the detector's format; each one left out is counted and
        logged (once per change of the API's masks, since unchanged masks are not redone)."""
        try:
            translated = translate_api_masks(body)
        except ValueError as err:
            # Nothing is published: the detector keeps the masks it has.
            self._skip_masks(camera, [str(err)])
            return
        self._skip_masks(camera, translated.problems)
        self.publish_masks(camera, json.dumps(translated.masks))

    def _skip_masks(self, camera: str, problems: list[str]) -> None:
        for problem in problems:
            self.masks_skipped[camera] += 1
            _LOGGER.warning("Camera %s: occlusion mask skipped: %s", camera, problem)

    async def _upload_form(self, frame: bytes) -> bytes:
        return await asyncio.to_thread(
            fit_for_upload, frame, self.settings.upload_max_width, self.settings.upload_max_height
        )

    @staticmethod
    def _next(outcome: Outcome, now: float, interval: float) -> float:
        return now + (interval if outcome.ok else min(RETRY_AFTER, interval))

    def _report(self, camera: str, duty: str, outcome: Outcome) -> None:
        self.calls[duty] = self.calls.get(duty, 0) + 1
        self.on_outcome(outcome)
        # A refused token shows even while no detection is waiting to be delivered; only
        # this duty succeeding again withdraws what this duty reported.
        if outcome.kind == "auth" and outcome.status == 403 and duty in POSE_DUTIES:
            # The token works for the camera's other calls: this pose is not the camera's.
            pose_id = self.settings.cameras[camera].pose_id
            self.access.refused(POSE, camera, duty, pose_reason(camera, pose_id, outcome.detail))
        elif outcome.kind == "auth":
            self.access.refused(TOKEN, camera, duty, token_reason(camera, outcome.detail))
        elif outcome.ok:
            self.access.token_works(camera)
            if duty in POSE_DUTIES:
                self.access.accepted(camera, duty, POSE)
        failing = self.cameras[camera].failing
        if outcome.ok:
            if duty in failing:
                failing.discard(duty)
                _LOGGER.info("Camera %s: %s works again", camera, duty)
            else:
                _LOGGER.debug("Camera %s: %s done", camera, duty)
        elif duty not in failing:
            failing.add(duty)
            _LOGGER.warning(
                "Camera %s: %s failed (%s); retrying every %.0f s at most",
                camera,
                duty,
                outcome.detail,
                RETRY_AFTER,
            )
        else:
            _LOGGER.debug("Camera %s: %s failed again: %s", camera, duty, outcome.detail)
