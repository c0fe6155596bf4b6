"""`smokewatch bench`: per-stage costs on the user's model and frame, and cameras per box.

Every figure is a median over interleaved runs in one process, so the ratio of the whole
per-frame path to a bare `session.run` on the same ready tensor is measured under the same
machine load. The stages are the pipeline's own timings of each `process` call, so the
breakdown is the path that was timed as a whole, never a second run of it.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from detector.contract import DetectionMessage
from detector.errors import SmokeWatchError
from detector.frames import letterbox_into, restamped
from detector.pipeline import FrameResult, Pipeline
from detector.service.alerts import CameraAlert

# The stages `Pipeline.process` times (FrameResult.timings) of a scored frame, in order, then
# the serialising of its result for MQTT and the bridge (timed here: it is the service's).
PIPELINE_STAGES = ("decode", "view", "preprocess", "model", "postprocess", "masks", "vote")
# The nearby scene's guard (detector/guard.py) runs between the masks and the vote, on cameras
# that have it: timed when present.
GUARD_STAGE = "guard"
STAGES = (*PIPELINE_STAGES[:6], GUARD_STAGE, PIPELINE_STAGES[6], "publish")


# What a live box does between two frames of a camera, seconds apart: other processes fill the
# caches, and onnxruntime's threads stop spinning and sleep. A cold run (`bench --cold`) is
# preceded by writing a buffer twice the last-level cache and a pause longer than the spin.
COLD_PAUSE_S = 0.1
DEFAULT_CACHE_BYTES = 32 << 20
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}  # sysfs cache sizes, e.g. "32768K"


def last_level_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """The largest CPU cache's size as Linux reports it (32 MiB when it says nothing)."""
    sizes = []
    for entry in Path(root).glob("index*/size"):
        try:
            text = entry.read_text().strip().upper()
        except OSError:
            continue
        scale = _UNITS.get(text[-1:], 1)
        digits = text[:-1] if text[-1:] in _UNITS else text
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=DEFAULT_CACHE_BYTES)


class Chill:
    """Before each timed run of a cold measurement: evict the caches, let the threads sleep.

    Does nothing when `cold` is false (a warm measurement: runs back to back).
    """

    def __init__(self, cold: bool) -> None:
        self.cold = cold
        self._buffer = np.zeros(2 * last_level_cache_bytes() if cold else 0, np.uint8)

    def __call__(self) -> None:
        if not self.cold:
            return
        self._buffer += 1  # every cache line written: the model's weights are out
        time.sleep(COLD_PAUSE_S)


def generated_frame(width: int, height: int) -> bytes:
    """A camera-like JPEG: sky gradient, textured hills, noise (so JPEG size is realistic)."""
    rng = np.random.default_rng(7)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(
        np.array([200, 170, 120], np.float32) * (1 - 0.4 * ys), (height, width, 3)
    )
    # Mild sensor noise and a repeating texture: compressed sizes like a real camera's
    # (about 0.25 MB at 1280x720, 1 MB at 3840x2160, quality 90).
    image = image + rng.normal(0, 4, (height, width, 3)).astype(np.float32)
    image = image + 10 * np.sin(np.arange(width, dtype=np.float32) / 7)[None, :, None]
    horizon = (0.55 + 0.05 * np.sin(np.linspace(0, 9, width))) * height
    mask = np.arange(height)[:, None] > horizon[None, :]
    image = np.where(mask[..., None], image * 0.35, image)
    ok, encoded = cv2.imencode(
        ".jpg", image.clip(0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    assert ok
    return bytes(encoded.tobytes())


def measure(
    pipeline: Pipeline,
    camera: str,
    data: bytes,
    runs: int,
    warmup: int,
    progress: bool,
    *,
    cold: bool = False,
) -> dict[str, Any]:
    """The whole path (`pipeline.process`), its stages as the pipeline timed them, the
    publishing of its result, and a bare model run on a ready tensor: interleaved, run by run.

    Raises SmokeWatchError when the pipeline did not score the frame (a grey frame on a camera
    whose night mode pauses): there is then no model stage to time. Each run sends the frame
    in new bytes (`restamped`, same pixels), as a live camera does: the same bytes again would
    be a frozen camera's repeat, which the pipeline does not score. With `cold`, each of the
    two runs starts as a live frame does, caches evicted and threads asleep (`Chill`).
    """
    model = pipeline.model
    ready = model.new_input()
    letterbox_into(pipeline.decode(data)[0], ready, bgr=True)
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    whole: list[float] = []
    bare: list[float] = []
    chill = Chill(cold)
    for index in tqdm(range(warmup + runs), desc="bench", unit="run", disable=not progress):
        bare_ms, whole_ms, result = time_one(pipeline, ready, camera, data, index, chill)
        missing = [name for name in PIPELINE_STAGES if name not in result.timings]
        if missing:
            raise SmokeWatchError(
                f"the pipeline did not time {', '.join(missing)}: the frame was not scored "
                f"({'; '.join(drop.detail for drop in result.dropped) or 'no reason given'})"
            )
        publish_ms = _publish_ms(result, data)
        if index < warmup:
            continue
        bare.append(bare_ms)
        whole.append(whole_ms)
        for name in (*PIPELINE_STAGES, GUARD_STAGE):
            if name in result.timings:
                stages[name].append(result.timings[name])
        stages["publish"].append(publish_ms)
    return {
        "stages_ms": {name: statistics.median(v) for name, v in stages.items() if v},
        "stage_ranges_ms": {name: (min(v), max(v)) for name, v in stages.items() if v},
        "whole_ms": statistics.median(whole),
        "whole_range_ms": (min(whole), max(whole)),
        "bare_ms": statistics.median(bare),
        "bare_range_ms": (min(bare), max(bare)),
        "ratio": statistics.median(w / b for w, b in zip(whole, bare, strict=True)),
    }


def time_one(
    pipeline: Pipeline,
    ready: NDArray[np.float32],
    camera: str,
    data: bytes,
    index: int,
    chill: Chill,
) -> tuple[float, float, FrameResult]:
    """One bare model run on the `ready` tensor, then the whole path on the frame in new bytes
    (`restamped` with `index`, as a live camera's next capture), each after `chill()`: their
    milliseconds and the path's result."""
    chill()
    start = time.perf_counter()
    pipeline.model.run(ready)
    bare_ms = (time.perf_counter() - start) * 1000
    frame = restamped(data, index)
    chill()
    start = time.perf_counter()
    result = pipeline.process(camera, frame, time.time())
    return bare_ms, (time.perf_counter() - start) * 1000, result


def _publish_ms(result: FrameResult, data: bytes) -> float:
    """Milliseconds to serialise what the service sends for a scored alert frame: the smoke
    attributes and the detection message (base64 JPEG) for the bridge. After the whole path,
    not part of it."""
    start = time.perf_counter()
    # The service's own attributes builder (the alert state machine), on a fresh camera.
    change = CameraAlert("bench").scored(result)
    detection = DetectionMessage("bench", result.camera, result.frame_time, result.vote.boxes, data)
    json.dumps(change.attributes)
    json.dumps(detection.to_json())
    return (time.perf_counter() - start) * 1000


def capacity(per_frame_ms: float, interval: float, headroom: float) -> int:
    """Cameras one worker can score every `interval` seconds, keeping `headroom` free."""
    return max(0, math.floor(interval * 1000 * (1 - headroom) / per_frame_ms))
