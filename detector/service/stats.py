"""The detector's stats (`<prefix>/stats`, not retained): health and counters, per camera too.

Home Assistant's detector device reads them (inference time, frames dropped, Problem with its
faults); an integrator reads the rest in MQTT Explorer.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from typing import Any

from detector.contract import iso_utc
from detector.pipeline import Pipeline
from detector.service.cameras import CameraWatch
from detector.service.publisher import Publisher
from detector.service.refusals import RefusalLog
from detector.service.scheduler import Scheduler
from detector.supervise import Health

# The model time of this many latest frames gives the published median.
TIMINGS_KEPT = 20


class DetectorStats:
    """Builds the stats payload from the parts that own each figure."""

    def __init__(
        self,
        cameras: dict[str, CameraWatch],
        scheduler: Scheduler,
        refusals: RefusalLog,
        publish: Publisher,
        pipeline: Pipeline,
        health: Health,
    ) -> None:
        self.cameras = cameras
        self.scheduler = scheduler
        self.refusals = refusals
        self.publish = publish
        self.pipeline = pipeline
        self.health = health
        self.started = time.monotonic()
        self._inference_ms: deque[float] = deque(maxlen=TIMINGS_KEPT)
        self._lock = threading.Lock()
        # Other parts' figures (the bridge hosted in this process): name → a callable giving
        # a JSON-able value.
        self.extra: dict[str, Any] = {}

    def inferred(self, model_ms: float) -> None:
        """A frame's model time (the inference worker)."""
        with self._lock:
            self._inference_ms.append(model_ms)

    def snapshot(self) -> dict[str, Any]:
        """The stats payload."""
        cameras = {}
        for camera, watch in self.cameras.items():
            slot = self.scheduler.slots[camera]
            scored_at = watch.alert.scored_at
            cameras[camera] = {
                "frames_in": slot.frames_in,
                "scored": watch.scored,
                "dropped": slot.dropped,
                "errors": self.refusals.camera_counts(camera),
                "last_score": watch.alert.score,
                "last_scored_at": None if scored_at is None else iso_utc(scored_at),
                "status": watch.status,
            }
        with self._lock:
            timings = list(self._inference_ms)
        data = {
            "uptime": round(time.monotonic() - self.started, 1),
            "inference_ms": round(statistics.median(timings), 1) if timings else None,
            "frames_dropped": sum(slot.dropped for slot in self.scheduler.slots.values()),
            "cameras": cameras,
            "rejected": self.refusals.total_counts(),
            "detections_waiting": self.publish.detections_waiting,
            "detections_dropped": self.publish.detections_dropped,
            "model": self.pipeline.model.health(),
        }
        for name, figure in self.extra.items():
            data[name] = figure()
        data.update(self.health.snapshot())
        return data
