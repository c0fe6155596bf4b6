"""Per-camera mailboxes: the latest frame wins, cameras are served in turn at their interval.

Backpressure is a counter, never a queue: a camera holds at most one unscored frame, so
memory and latency stay bounded whatever the input rate; every overwritten frame is counted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Slot:
    """One camera's mailbox and counters."""

    interval: float
    payload: bytes | None = None
    received_at: float = 0.0
    received_wall: float = 0.0
    last_frame_at: float | None = None
    last_scored_at: float | None = None
    frames_in: int = 0
    dropped: int = 0
    taken: int = 0  # frames handed to the worker (scored, checked or refused there)
    check_only: bool = False  # the pending frame is only to be checked (camera disabled)


@dataclass(frozen=True)
class Job:
    """A frame handed to the inference worker (monotonic and wall-clock arrival times)."""

    camera: str
    payload: bytes
    received_at: float
    received_wall: float
    check_only: bool = False  # decode it to know the camera works, do not score it


@dataclass
class Scheduler:
    """Hands the worker the next camera that is due, fairly (round-robin)."""

    slots: dict[str, Slot] = field(default_factory=dict)
    _order: list[str] = field(default_factory=list)
    _next: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    def add(self, camera: str, interval: float) -> None:
        """Register a camera (or change its interval)."""
        with self._cond:
            if camera in self.slots:
                self.slots[camera].interval = interval
            else:
                self.slots[camera] = Slot(interval)
                self._order.append(camera)
            self._cond.notify_all()

    def put(self, camera: str, payload: bytes, *, check_only: bool = False) -> None:
        """Store a camera's newest frame, dropping (and counting) an unscored older one.

        `check_only`: the camera is disabled; its frame is only checked (decoded) at its
        interval, so its status still says whether it sends usable frames.
        """
        now, wall = time.monotonic(), time.time()
        with self._cond:
            slot = self.slots[camera]
            slot.frames_in += 1
            slot.last_frame_at = now
            if slot.payload is not None and not slot.check_only:
                slot.dropped += 1
            slot.payload, slot.received_at, slot.received_wall = payload, now, wall
            slot.check_only = check_only
            self._cond.notify_all()

    def discard(self, camera: str) -> None:
        """Drop a camera's pending frame (e.g. while it is disabled), counting it."""
        with self._cond:
            slot = self.slots[camera]
            if slot.payload is not None:
                if not slot.check_only:
                    slot.dropped += 1
                slot.payload = None

    def close(self) -> None:
        """Wake the worker for good."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _due(self, now: float) -> tuple[Job | None, float | None]:
        """The next due job, or how long until one may be due."""
        wait: float | None = None
        count = len(self._order)
        for step in range(count):
            camera = self._order[(self._next + step) % count]
            slot = self.slots[camera]
            if slot.payload is None:
                continue
            ready_at = 0.0 if slot.last_scored_at is None else slot.last_scored_at + slot.interval
            if ready_at <= now:
                self._next = (self._next + step + 1) % count
                job = Job(
                    camera, slot.payload, slot.received_at, slot.received_wall, slot.check_only
                )
                slot.payload = None
                slot.last_scored_at = now
                slot.taken += 1
                return job, None
            wait = ready_at - now if wait is None else min(wait, ready_at - now)
        return None, wait

    def next_job(self, timeout: float | None = None) -> Job | None:
        """Block until a camera is due (or timeout/close) and hand over its frame."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                job, wait = self._due(now)
                if job is not None:
                    return job
                if deadline is not None:
                    remaining = deadline - now
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._cond.wait(wait)
            return None
