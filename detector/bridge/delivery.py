"""Delivery of the outbox to `POST detections/`: in order per camera, with backoff.

One asyncio task per camera takes the oldest pending item of its camera, so cameras do not
wait for each other and each camera's detections reach the API in the order they were taken
(the server sequences them by arrival). Outcomes:
- success (201 with an id, or 204): the item is delivered;
- auth (401, 403, 406), or a final refusal (any other 4xx) while the camera's pose is not among
  its active poses (`GET poses/`: deactivated, deleted, another camera's): the camera's token or
  pose is refused, not the item. Nothing is marked failed; the camera's line pauses, shows the
  fault (`token of <cam>` / `pose of <cam>`, see access.py) and records the pause in the outbox
  (`bridge status` says it). While paused it asks `GET poses/` (a small read, not the frame
  again) at most every PAUSED_RETRY_MAX s whatever backoff_max is, and at once when a duty
  finds the token accepted again; it resumes by itself;
- final (any other 4xx, the pose being fine): the item is failed with the status and the body,
  and the next one goes;
- temporary with an HTTP answer (5xx, 408, 425, 429, a 2xx without an id): this camera backs off;
- no answer (network error, timeout): every camera backs off, the link is down. A request that
  went out and was never answered may still be worked on by the server, which stores it when it
  gets to it: before the next upload, of any camera, the server must answer `GET poses/`, so
  that retries never stack up on a server that cannot answer (each would be one more copy).
Backoff is exponential with full jitter, capped: the delay is uniform in [0, min(cap, initial *
2^n)] after the n-th failure in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from detector.bridge.access import (
    DETECTIONS,
    POSE,
    TOKEN,
    ApiAccess,
    pose_reason,
    token_reason,
)
from detector.bridge.api import Outcome, PyronearClient, crops, fit_for_upload
from detector.bridge.bboxes import correct_boxes, format_bboxes
from detector.bridge.outbox import Item, Outbox
from detector.bridge.spacing import UploadSpacing
from detector.config import BridgeConfig
from detector.supervise import Health, supervise

_LOGGER = logging.getLogger(__name__)

# A paused camera asks again at least this often (s), however long backoff_max is: a token or
# pose fixed on the server is noticed within this time even while no frame flows.
PAUSED_RETRY_MAX = 30.0
# What `GET poses/` says about a camera: go on and send, paused (token or pose refused), or
# wait (no answer: the link backs off).
Verdict = Literal["send", "paused", "wait"]


class Backoff:
    """Exponential backoff with full jitter and a cap."""

    def __init__(self, initial: float, cap: float, rng: random.Random) -> None:
        self.initial = initial
        self.cap = cap
        self.rng = rng
        self.failures = 0
        self.until = 0.0

    def failed(self, cap: float | None = None) -> float:
        """One more failure in a row: wait a random delay (returned) before the next try."""
        cap = self.cap if cap is None else min(cap, self.cap)
        ceiling = min(cap, self.initial * 2 ** min(self.failures, 60))
        self.failures += 1
        delay = self.rng.uniform(0, ceiling)
        self.until = time.monotonic() + delay
        return delay

    def reset(self) -> None:
        """A success: the next failure starts again from the initial delay."""
        self.failures = 0
        self.until = 0.0

    def remaining(self) -> float:
        """Seconds left to wait (0 when free to go)."""
        return max(0.0, self.until - time.monotonic())


@dataclass
class Line:
    """One camera's delivery line."""

    backoff: Backoff
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # something was added
    resume: asyncio.Event = field(default_factory=asyncio.Event)  # its token works again
    paused: str | None = None  # why it is paused, as recorded in the outbox


class Delivery:
    """The per-camera delivery tasks."""

    def __init__(
        self,
        settings: BridgeConfig,
        outbox: Outbox,
        api: PyronearClient,
        *,
        on_outcome: Callable[[Outcome], None],
        on_change: Callable[[], None],
        rng: random.Random | None = None,
        health: Health | None = None,
        spacing: UploadSpacing | None = None,
        access: ApiAccess | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.api = api
        self.on_outcome = on_outcome
        self.on_change = on_change
        self.health = health or Health("bridge")
        self.spacing = spacing or UploadSpacing()
        self.access = access or ApiAccess(self.health)
        self.access.on_token_back(self._token_back)
        self._rng = rng or random.Random()
        self.link = Backoff(settings.backoff_initial, settings.backoff_max, self._rng)
        # A request went out and no answer came: the server must answer before the next upload.
        self.unanswered = False
        self._lines: dict[str, Line] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Something was added to the outbox (any thread)."""
        if self._loop is not None and not self._loop.is_closed():
            # RuntimeError: the loop closed in between, while stopping.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for line in self._lines.values():
            line.wake.set()

    def _token_back(self, camera: str) -> None:
        line = self._lines.get(camera)
        if line is not None and line.paused is not None:
            line.resume.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set."""
        self._loop = asyncio.get_running_loop()
        self._lines = {
            camera: Line(
                Backoff(self.settings.backoff_initial, self.settings.backoff_max, self._rng)
            )
            for camera in self.settings.cameras
        }
        # A pause recorded by an earlier run is for this run's first attempt to find again.
        await asyncio.to_thread(self.outbox.clear_paused)
        await asyncio.gather(
            *(
                supervise(
                    delivery_part(camera),
                    lambda camera=camera: self._camera_loop(camera, stop),  # type: ignore[misc]
                    self.health,
                    stop,
                    initial=self.settings.backoff_initial,
                    cap=min(60.0, self.settings.backoff_max),
                )
                for camera in self.settings.cameras
            )
        )

    async def _pause(self, stop: asyncio.Event, event: asyncio.Event, delay: float) -> None:
        """Wait for `delay` s, or for new work when `event` is given a chance, or for stop."""
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(event.wait())}
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _camera_loop(self, camera: str, stop: asyncio.Event) -> None:
        line = self._lines[camera]
        while not stop.is_set():
            waiting = max(line.backoff.remaining(), self.link.remaining())
            if waiting > 0:
                # New items do not cut a backoff short; a token working again does.
                await self._pause(stop, line.resume, waiting)
                if line.resume.is_set():
                    line.resume.clear()
                    line.backoff.reset()
                continue
            line.wake.clear()
            item = await asyncio.to_thread(self.outbox.next_pending, camera)
            if item is None and self.access.refusal(camera, DETECTIONS) is None:
                self.health.ok(delivery_part(camera))
                # The wake-up is a hint; the periodic look also covers rows added by others.
                await self._pause(stop, line.wake, 5.0)
                continue
            # A paused camera asks again even with nothing waiting: its fault must not outlive
            # its cause.
            try:
                if await self._may_send(camera) and item is not None:
                    await self._deliver(item)
            except Exception as err:  # one item must never stop its camera's line
                # Logged once per reason (a full disk fails every attempt the same way).
                self.health.failed(delivery_part(camera), err)
                line.backoff.failed()
                # If the outbox cannot even record this (disk full), the exception ends this
                # run of the loop and its supervisor starts it again with backoff.
                if item is not None:
                    await asyncio.to_thread(
                        self.outbox.retry_later, item.seq, "internal error", answered=False
                    )
            else:
                self.health.ok(delivery_part(camera))

    async def _may_send(self, camera: str) -> bool:
        """False while the line must not upload: the server has not answered since a request
        it never answered, or the camera's token or pose is refused (both asked again here)."""
        if not self.unanswered and self.access.refusal(camera, DETECTIONS) is None:
            return True
        return await self._ask_poses(camera, None) == "send"

    async def _ask_poses(self, camera: str, refusal: Outcome | None) -> Verdict:
        """Ask `GET poses/` whether the server answers and what it thinks of the camera's token
        and pose; `refusal` is the detection's answer that made us ask, if any."""
        identity = self.settings.cameras[camera]
        outcome = await self.api.poses(str(identity.token))
        self.on_outcome(outcome)
        line = self._lines[camera]
        if outcome.status is None:
            self.unanswered = self.unanswered or outcome.sent
            self.link.failed()
            return "wait"
        self.unanswered = False
        self.link.reset()
        verdict: Verdict = "send"
        if outcome.kind == "auth":
            detail = outcome.detail if refusal is None else refusal.detail
            self.access.refused(TOKEN, camera, DETECTIONS, token_reason(camera, detail))
            verdict = "paused"
        elif outcome.ok and isinstance(outcome.body, list):
            self.access.accepted(camera, DETECTIONS, TOKEN)
            if _lists_pose(outcome.body, identity.pose_id):
                self.access.pose_works(camera)
            else:
                detail = "GET poses/ does not list it" if refusal is None else refusal.detail
                reason = pose_reason(camera, identity.pose_id, detail)
                self.access.refused(POSE, camera, DETECTIONS, reason)
                verdict = "paused"
        # Any other answer (an older server without the list, a 5xx) tells nothing: the
        # detection itself will.
        if verdict == "paused":
            delay = line.backoff.failed(PAUSED_RETRY_MAX)
            _LOGGER.debug("Camera %s: delivery paused, next look in %.1f s", camera, delay)
        await self._record_pause(camera)
        return verdict

    async def _record_pause(self, camera: str) -> None:
        """Keep the outbox's record of the pause in step (`bridge status` reads it)."""
        line = self._lines[camera]
        reason = self.access.refusal(camera, DETECTIONS)
        if reason != line.paused:
            await asyncio.to_thread(self.outbox.set_paused, camera, reason)
            line.paused = reason
            self.on_change()

    async def _deliver(self, item: Item) -> None:
        identity = self.settings.cameras[item.camera]
        jpeg = item.jpeg
        if not item.prepared:
            jpeg = await asyncio.to_thread(
                fit_for_upload,
                item.jpeg,
                self.settings.upload_max_width,
                self.settings.upload_max_height,
            )
            await asyncio.to_thread(
                self.outbox.prepared, item.seq, None if jpeg is item.jpeg else jpeg
            )
        boxes = correct_boxes(item.bboxes)
        crop_images: list[bytes] = []
        if self.settings.send_crops and boxes:
            crop_images = await asyncio.to_thread(crops, jpeg, boxes)
        async with self.spacing.upload(item.camera, "detection", jpeg):
            await asyncio.to_thread(self.outbox.attempt, item.seq)
            outcome = await self.api.post_detection(
                str(identity.token),
                identity.pose_id,
                format_bboxes(boxes),
                item.recorded_at,
                jpeg,
                crop_images,
            )
        await self._record(item, outcome)

    async def _record(self, item: Item, outcome: Outcome) -> None:
        backoff = self._lines[item.camera].backoff
        self.on_outcome(outcome)
        if outcome.status is not None:
            self.unanswered = False
        if outcome.kind in ("auth", "fail"):
            await self._refused(item, outcome)
        elif outcome.kind == "ok":
            api_id = outcome.body.get("id") if isinstance(outcome.body, dict) else None
            await asyncio.to_thread(
                self.outbox.delivered,
                item.seq,
                None if api_id is None else str(api_id),
                outcome.status or 0,
            )
            backoff.reset()
            self.link.reset()
            self.access.accepted(item.camera, DETECTIONS, TOKEN)
            self.access.pose_works(item.camera)
            await self._record_pause(item.camera)
            _LOGGER.info(
                "Delivered detection %s of %s (HTTP %s, API id %s)",
                item.id,
                item.camera,
                outcome.status,
                api_id,
            )
        else:
            await asyncio.to_thread(
                self.outbox.retry_later,
                item.seq,
                outcome.detail,
                answered=outcome.status is not None or not outcome.sent,
            )
            streak = self.link if outcome.network else backoff
            first = streak.failures == 0
            if outcome.network:
                self.unanswered = self.unanswered or outcome.sent
                delay = self.link.failed()
            else:
                self.link.reset()
                delay = backoff.failed()
            # The first failure of a streak is a warning; the retries behind it are debug noise.
            _LOGGER.log(
                logging.WARNING if first else logging.DEBUG,
                "Delivery of detection %s of %s failed (%s); next try in %.1f s",
                item.id,
                item.camera,
                outcome.detail,
                delay,
            )
        self.on_change()

    async def _refused(self, item: Item, outcome: Outcome) -> None:
        """A 4xx: the token's, the pose's or the item's? `GET poses/` tells; only the item's
        is final."""
        backoff = self._lines[item.camera].backoff
        self.link.reset()
        verdict = await self._ask_poses(item.camera, outcome)
        if verdict == "send" and outcome.kind == "auth":
            # The token and the pose look fine, yet detections are refused: still not the
            # item's fault (a scope the server gives detections only?). Paused all the same.
            reason = token_reason(item.camera, outcome.detail)
            self.access.refused(TOKEN, item.camera, DETECTIONS, reason)
            backoff.failed(PAUSED_RETRY_MAX)
            await self._record_pause(item.camera)
            verdict = "paused"
        if verdict != "send":
            # Not the item's fault (or not known yet): it stays first in line, not failed.
            await asyncio.to_thread(
                self.outbox.retry_later, item.seq, outcome.detail, answered=True
            )
            return
        await asyncio.to_thread(self.outbox.failed, item.seq, outcome.status, outcome.detail)
        backoff.reset()
        _LOGGER.error(
            "The API refused detection %s of %s for good (not retried): %s",
            item.id,
            item.camera,
            outcome.detail,
        )


def delivery_part(camera: str) -> str:
    """The name of a camera's delivery line in the bridge's health."""
    return f"delivery of {camera}"


def _lists_pose(poses: list[object], pose_id: int) -> bool:
    """True when the API's list of the camera's poses holds `pose_id`, active."""
    return any(
        isinstance(pose, dict) and pose.get("id") == pose_id and pose.get("active") is not False
        for pose in poses
    )
