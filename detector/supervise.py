"""Supervision of long-lived work: nothing dies silently.

Every loop that must run for the life of the process (the inference worker, the bridge's
delivery lines, its duties, its stats) runs under `run_supervised` (a thread) or `supervise`
(an asyncio task). When it raises, the failure is logged once with its reason (then only
counted while the same reason repeats), recorded in `Health`, and the loop is started again
after a backoff that doubles up to a cap. Health is what the stats topics publish (`healthy`,
`faults`, `failures`) and what Home Assistant shows as a problem; a part reports that it works
again with `ok`, which clears its fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from detector.redact import redact_text

_LOGGER = logging.getLogger(__name__)

REASON_LIMIT = 300
RESTART_INITIAL = 1.0
RESTART_CAP = 60.0


@dataclass
class Fault:
    """Why a part does not work, since when (epoch seconds)."""

    reason: str
    since: float


class Health:
    """The faults of the long-lived parts of one process (thread-safe)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.faults: dict[str, Fault] = {}
        self.failures: Counter[str] = Counter()

    def failed(self, part: str, err: BaseException) -> None:
        """`part` raised `err`: count it; log it (with the traceback) when the reason is new."""
        self.fault(part, f"{type(err).__name__}: {err}", exc=err)

    def fault(self, part: str, reason: str, *, exc: BaseException | None = None) -> None:
        """`part` does not work for `reason`: counted; logged once per distinct reason."""
        reason = redact_text(reason)[:REASON_LIMIT]
        with self._lock:
            self.failures[part] += 1
            current = self.faults.get(part)
            if current is not None and current.reason == reason:
                _LOGGER.debug("%s: %s failed again: %s", self.name, part, reason)
                return
            self.faults[part] = Fault(reason, time.time())
        _LOGGER.error(
            "%s: %s failed: %s (retrying with backoff; shown as a problem until it works)",
            self.name,
            part,
            reason,
            exc_info=exc,
        )

    def ok(self, part: str) -> None:
        """`part` works (again): clear its fault."""
        if part not in self.faults:  # the common case, without taking the lock
            return
        with self._lock:
            fault = self.faults.pop(part, None)
        if fault is not None:
            _LOGGER.warning(
                "%s: %s works again (after %.0f s)", self.name, part, time.time() - fault.since
            )

    @property
    def healthy(self) -> bool:
        """True when no part is at fault."""
        return not self.faults

    def snapshot(self) -> dict[str, Any]:
        """The stats fields: healthy, faults (part → reason), failures (part → count)."""
        with self._lock:
            return {
                "healthy": not self.faults,
                "faults": {part: fault.reason for part, fault in sorted(self.faults.items())},
                "failures": dict(sorted(self.failures.items())),
            }


class _Restarts:
    """The delay before the next restart: doubles per failure, back to the start after a
    run that lasted longer than the cap (it was working)."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial, self.cap = initial, cap
        self.delay = initial

    def after(self, ran_for: float) -> float:
        if ran_for > self.cap:
            self.delay = self.initial
        delay = self.delay
        self.delay = min(self.cap, self.delay * 2)
        return delay


def run_supervised(
    part: str,
    target: Callable[[], None],
    health: Health,
    stop: threading.Event,
    *,
    initial: float = RESTART_INITIAL,
    cap: float = RESTART_CAP,
) -> None:
    """Call `target()` until it returns or `stop` is set; restart it after any exception."""
    restarts = _Restarts(initial, cap)
    while not stop.is_set():
        started = time.monotonic()
        try:
            target()
            return
        except Exception as err:  # the point of supervision: log, count, show, restart
            health.failed(part, err)
        stop.wait(restarts.after(time.monotonic() - started))


def supervised_thread(
    part: str,
    target: Callable[[], None],
    health: Health,
    stop: threading.Event,
    **backoff: float,
) -> threading.Thread:
    """A daemon thread running `target` under `run_supervised` (not started)."""
    return threading.Thread(
        target=run_supervised,
        args=(part, target, health, stop),
        kwargs=backoff,
        name=part,
        daemon=True,
    )


async def supervise(
    part: str,
    work: Callable[[], Awaitable[None]],
    health: Health,
    stop: asyncio.Event,
    *,
    initial: float = RESTART_INITIAL,
    cap: float = RESTART_CAP,
) -> None:
    """Await `work()` until it returns or `stop` is set; start it again after any exception."""
    restarts = _Restarts(initial, cap)
    while not stop.is_set():
        started = time.monotonic()
        try:
            await work()
            return
        except Exception as err:  # the point of supervision: log, count, show, restart
            health.failed(part, err)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), restarts.after(time.monotonic() - started))
