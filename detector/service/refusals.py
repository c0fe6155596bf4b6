"""The refusal log: every input the service refuses is counted, and logged once per camera and
reason, then summarised at most every REJECT_LOG_EVERY seconds.

A flood of one bad message (a camera sending garbage every second, a made-up topic per message)
must neither fill the log nor grow memory, nor hide a configured camera's own problem: the
bookkeeping keeps one entry per configured camera and reason, and one per reason for every
camera that is not configured (their names are in the log line, not in the bookkeeping), so its
size depends on the config alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable

from detector.redact import redact_text

_LOGGER = logging.getLogger(__name__)

# A refused input is logged at once, then summarised at most this often per (camera, reason).
REJECT_LOG_EVERY = 300.0
# Where refusals of cameras that are not configured are kept, all together.
NOT_CONFIGURED = "(cameras not configured)"


class RefusalLog:
    """Counts refused inputs in total and per known camera; rate-limits their warnings."""

    def __init__(self, cameras: Iterable[str], *, every: float = REJECT_LOG_EVERY) -> None:
        self.every = every
        self.totals: Counter[str] = Counter()
        # Only configured cameras get their own counters (shown in their stats).
        self.by_camera: dict[str, Counter[str]] = {camera: Counter() for camera in cameras}
        # (camera, reason[:detail]) → [monotonic time of the last warning, refusals since then]
        self._last: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()  # refusals come from paho's, the worker's, the pollers'

    def refuse(self, camera: str, reason: str, message: str, *, detail: str = "") -> None:
        """Count a refused input and log it (at once the first time, then rate-limited).

        `detail` refines what counts as the same reason in the log (each command topic is
        logged on its own) without splitting the counters; it must come from a fixed set (a
        command name the table knows), never from the input itself.
        """
        now = time.monotonic()
        # Messages may quote a source URL or a server's answer: never its credentials.
        message = redact_text(message)
        with self._lock:
            self.totals[reason] += 1
            counts = self.by_camera.get(camera)
            if counts is not None:
                counts[reason] += 1
            who = camera if counts is not None else NOT_CONFIGURED
            key = (who, f"{reason}:{detail}" if detail else reason)
            entry = self._last.get(key)
            if entry is None:
                self._last[key] = [now, 0]
                _LOGGER.warning("Refused input for %s (%s): %s", camera, reason, message)
                return
            if now - entry[0] < self.every:
                entry[1] += 1
                _LOGGER.debug("Refused input for %s (%s): %s", camera, reason, message)
                return
            _LOGGER.warning(
                "Refused input for %s (%s) again, %d time(s) in the last %.0f s; latest (%s): %s",
                who,
                reason,
                entry[1] + 1,
                now - entry[0],
                camera,
                message,
            )
            entry[0], entry[1] = now, 0

    def camera_counts(self, camera: str) -> dict[str, int]:
        """A copy of one camera's counters, by reason."""
        with self._lock:
            return dict(self.by_camera.get(camera, {}))

    def total_counts(self) -> dict[str, int]:
        """A copy of the counters of every refusal, by reason."""
        with self._lock:
            return dict(self.totals)
