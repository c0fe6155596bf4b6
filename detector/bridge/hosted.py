"""The bridge inside `smokewatch run`: whatever happens to it, the detector keeps detecting.

The bridge is started under supervision: an outbox that cannot be opened (corrupt, on a
read-only or full disk) is a fault shown in the detector's stats and retried with backoff,
never a reason for `smokewatch run` not to start. Detections are handed over in the process;
until the bridge is up they wait in memory (bounded, counted when the bound is hit).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from detector.bridge.bridge_service import BACKLOG_LIMIT, BridgeService
from detector.config import Config
from detector.contract import DetectionMessage
from detector.supervise import Health, supervised_thread

_LOGGER = logging.getLogger(__name__)

PART = "bridge"


class HostedBridge:
    """Starts the bridge in the background and gives it the detector's detections."""

    def __init__(self, config: Config, health: Health, stop: threading.Event) -> None:
        self.config = config
        self.health = health
        self.bridge: BridgeService | None = None
        self.dropped = 0
        self._pending: deque[DetectionMessage] = deque()
        self._lock = threading.Lock()
        self._thread = supervised_thread(PART, self._start, health, stop, cap=60.0)

    def start(self) -> None:
        """Start the bridge in the background (retried with backoff until it starts)."""
        self._thread.start()

    def _start(self) -> None:
        bridge = BridgeService(self.config, hosted=True)
        bridge.start()
        with self._lock:
            self.bridge = bridge
            while self._pending:
                bridge.accept(self._pending.popleft())
        self.health.ok(PART)

    def accept(self, detection: DetectionMessage) -> None:
        """A detection of the detector (its inference thread): to the bridge's outbox."""
        with self._lock:
            if self.bridge is None:
                self._pending.append(detection)
                if len(self._pending) > BACKLOG_LIMIT:
                    dropped = self._pending.popleft()
                    self.dropped += 1
                    _LOGGER.error(
                        "Detection %s of %s dropped: the bridge has not started for too long",
                        dropped.id,
                        dropped.camera,
                    )
                return
            bridge = self.bridge
        bridge.accept(detection)

    def stop(self) -> None:
        """Stop the bridge if it started (the supervisor stops with the detector)."""
        with self._lock:
            bridge = self.bridge
        if bridge is not None:
            bridge.stop()
