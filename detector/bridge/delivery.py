"""Delivery of the outbox to `POST detections/`: in order per camera, with backoff.

One asyncio task per camera takes the oldest pending item of its camera, so cameras do not
wait for each other and each camera's detections reach the API in the order they were taken
(the server sequences them by arrival). Outcomes:
- success (201 with an id, or 204): the item is delivered;
- final (any other 4xx): the item is failed with the status and the body, and the next one goes;
- auth (401, 403, 406): the camera's token or pose is refused: nothing is marked failed, the
  camera's line pauses with its backoff and resumes by itself once the token works, and the
  bridge reports the fault (stats `faults`, the HA "Problem" entity);
- temporary with an HTTP answer (5xx, 408, 425, 429, a 2xx without an id): this camera backs off;
- no answer (network error, timeout): every camera backs off, the link is down.
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

from detector.bridge.api import Outcome, PyronearClient, crops, fit_for_upload
from detector.bridge.bboxes import correct_boxes, format_bboxes
from detector.bridge.outbox import Item, Outbox
from detector.bridge.spacing import UploadSpacing
from detector.config import BridgeConfig
from detector.supervise import Health, supervise

_LOGGER = logging.getLogger(__name__)


class Backoff:
    """Exponential backoff with full jitter and a cap."""

    def __init__(self, initial: float, cap: float, rng: random.Random) -> None:
        self.initial = initial
        self.cap = cap
        self.rng = rng
        self.failures = 0
        self.until = 0.0

    def failed(self) -> float:
        """One more failure in a row: wait a random delay (returned) before the next try."""
        ceiling = min(self.cap, self.initial * 2 ** min(self.failures, 60))
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
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.api = api
        self.on_outcome = on_outcome
        self.on_change = on_change
        self.health = health or Health("bridge")
        self.spacing = spacing or UploadSpacing()
        rng = rng or random.Random()
        self.link = Backoff(settings.backoff_initial, settings.backoff_max, rng)
        self.backoffs = {
            camera: Backoff(settings.backoff_initial, settings.backoff_max, rng)
            for camera in settings.cameras
        }
        self._wake: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Something was added to the outbox (any thread)."""
        if self._loop is not None and not self._loop.is_closed():
            # RuntimeError: the loop closed in between, while stopping.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set."""
        self._loop = asyncio.get_running_loop()
        self._wake = {camera: asyncio.Event() for camera in self.settings.cameras}
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
        wake = self._wake[camera]
        backoff = self.backoffs[camera]
        never = asyncio.Event()
        while not stop.is_set():
            waiting = max(backoff.remaining(), self.link.remaining())
            if waiting > 0:
                await self._pause(stop, never, waiting)
                continue
            wake.clear()
            item = await asyncio.to_thread(self.outbox.next_pending, camera)
            if item is None:
                self.health.ok(delivery_part(camera))
                # The wake-up is a hint; the periodic look also covers rows added by others.
                await self._pause(stop, wake, 5.0)
                continue
            try:
                await self._deliver(item)
            except Exception as err:  # one item must never stop its camera's line
                # Logged once per reason (a full disk fails every attempt the same way).
                self.health.failed(delivery_part(camera), err)
                backoff.failed()
                # If the outbox cannot even record this (disk full), the exception ends this
                # run of the loop and its supervisor starts it again with backoff.
                await asyncio.to_thread(
                    self.outbox.retry_later, item.seq, "internal error", answered=False
                )
            else:
                self.health.ok(delivery_part(camera))

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
        backoff = self.backoffs[item.camera]
        self.on_outcome(outcome)
        if outcome.kind == "ok":
            api_id = outcome.body.get("id") if isinstance(outcome.body, dict) else None
            await asyncio.to_thread(
                self.outbox.delivered,
                item.seq,
                None if api_id is None else str(api_id),
                outcome.status or 0,
            )
            backoff.reset()
            self.link.reset()
            self.health.ok(token_part(item.camera))
            _LOGGER.info(
                "Delivered detection %s of %s (HTTP %s, API id %s)",
                item.id,
                item.camera,
                outcome.status,
                api_id,
            )
        elif outcome.kind == "auth":
            # Not the item's fault: it stays first in line, nothing is marked failed.
            await asyncio.to_thread(
                self.outbox.retry_later, item.seq, outcome.detail, answered=True
            )
            self.link.reset()
            delay = backoff.failed()
            self.health.fault(token_part(item.camera), token_fault(outcome))
            _LOGGER.debug("Camera %s: next try with its token in %.1f s", item.camera, delay)
        elif outcome.kind == "fail":
            await asyncio.to_thread(self.outbox.failed, item.seq, outcome.status, outcome.detail)
            backoff.reset()
            self.link.reset()
            _LOGGER.error(
                "The API refused detection %s of %s for good (not retried): %s",
                item.id,
                item.camera,
                outcome.detail,
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


def delivery_part(camera: str) -> str:
    """The name of a camera's delivery line in the bridge's health."""
    return f"delivery of {camera}"


def token_fault(outcome: Outcome) -> str:
    """The fault shown for a refused token (the same from delivery and duties, so that it
    is logged once, not each time the other one meets it)."""
    return (
        f"the API refuses the camera's token or pose (HTTP {outcome.status}): delivery paused"
        " until it is accepted, nothing is lost; check bridge.cameras in the config"
    )


def token_part(camera: str) -> str:
    """The name of a camera's token in the bridge's health (delivery and duties share it)."""
    return f"token of {camera}"
