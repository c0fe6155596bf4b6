"""Calibration ranges for `smokewatch optimize`, one frame at a time.

onnxruntime's `quantize_static` runs every calibration frame before it reduces anything: with a
histogram method (percentile, entropy) it keeps every intermediate tensor of every frame in
memory, 7.6 GiB for 7 frames of a 1024 model. Here each frame runs alone through the
calibrator's augmented model, its tensors are folded into running histograms (or min/max) and
dropped before the next frame is decoded: the peak is one frame's activations, whatever the
number of frames. The ranges then go to `quantize_static` as a calibration cache, so the graph
rewriting (QDQ placement, per-channel weights) stays onnxruntime's own.

A tensor whose values span fewer float32 steps than the histogram has bins (numpy's "Too many
bins for data range": a near-constant tensor, common with random weights) cannot have a
histogram; it takes its min/max range and every other tensor keeps the requested method. The
result counts those tensors, so the record says how much of the model fell back.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

_LOGGER = logging.getLogger(__name__)

# onnxruntime's own defaults for each histogram method.
HISTOGRAM_BINS = {"percentile": 2048, "entropy": 128}
PERCENTILE = 99.999

Feed = dict[str, NDArray[np.float32]]


@dataclass
class Ranges:
    """The calibration result: onnxruntime's TensorsData and how it was reached."""

    method: str
    data: Any
    frames: int = 0
    tensors: int = 0
    minmax_tensors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the log and the command's report."""
        if self.method == "minmax":
            return f"minmax ranges of {self.tensors} tensor(s) over {self.frames} frame(s)"
        text = f"{self.method} ranges of {self.tensors} tensor(s) over {self.frames} frame(s)"
        if self.minmax_tensors:
            text += (
                f"; {len(self.minmax_tensors)} near-constant tensor(s) had no {self.method} "
                "histogram and took their min/max range"
            )
        return text


class _OneFeed:
    """A calibration reader holding a single input (onnxruntime's reader interface)."""

    def __init__(self, feed: Feed) -> None:
        self._feed: Feed | None = feed

    def get_next(self) -> Feed | None:
        feed, self._feed = self._feed, None
        return feed


def _lean_session(path: str) -> Any:
    """A session on the augmented model that gives its buffers back between frames."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    # The augmented model outputs every intermediate tensor: an arena and a memory pattern
    # sized for that would stay allocated for the whole calibration.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def calibrate(model_path: Path, feeds: Iterable[Feed], method: str, workdir: Path) -> Ranges:
    """Calibration ranges of every tensor of `model_path`, reading `feeds` one at a time.

    `method` is "minmax", "percentile" or "entropy"; `workdir` receives the augmented model.
    """
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    calibrator = create_calibrator(
        model_path,
        None,
        augmented_model_path=str(workdir / "augmented.onnx"),
        calibrate_method=methods[method],
        use_external_data_format=True,
    )
    calibrator.infer_session = None
    calibrator.infer_session = _lean_session(calibrator.augmented_model_path)
    if method == "minmax":
        frames = 0
        for feed in feeds:
            # One frame per call: onnxruntime merges each call's ranges into the running ones.
            calibrator.collect_data(_OneFeed(feed))
            frames += 1
        if not frames:
            raise ValueError("no calibration frame")
        data = calibrator.compute_data()
        return Ranges(method, data, frames, len(data.data))
    return _histograms(calibrator, feeds, method, methods[method])


def _histograms(calibrator: Any, feeds: Iterable[Feed], method: str, kind: Any) -> Ranges:
    """Running histograms per tensor; min/max for the tensors no histogram can hold."""
    from onnxruntime.quantization.calibrate import HistogramCollector, TensorData, TensorsData

    collector = HistogramCollector(
        method=method,
        symmetric=method == "percentile",
        num_bins=HISTOGRAM_BINS[method],
        num_quantized_bins=128,
        percentile=PERCENTILE,
        scenario="same",
    )
    session = calibrator.infer_session
    names = [output.name for output in session.get_outputs()]
    wanted = set(calibrator.tensors_to_calibrate)
    extremes: dict[str, tuple[np.float32, np.float32]] = {}
    flat: list[str] = []
    frames = 0
    for feed in feeds:
        outputs = session.run(None, feed)
        frames += 1
        for name, value in zip(names, outputs, strict=True):
            if name not in wanted:
                continue
            low, high = np.float32(np.nanmin(value)), np.float32(np.nanmax(value))
            if name in extremes:
                low, high = min(low, extremes[name][0]), max(high, extremes[name][1])
            extremes[name] = (low, high)
            if name in flat:
                continue
            try:
                if method == "entropy":
                    collector.collect_value({name: value})
                else:
                    collector.collect_absolute_value({name: value})
            except ValueError as err:
                if "bins" not in str(err):
                    raise
                flat.append(name)
                collector.histogram_dict.pop(name, None)
        del outputs
    if not frames:
        raise ValueError("no calibration frame")
    result: dict[str, Any] = {}
    if collector.histogram_dict:
        # onnxruntime prints its progress here; the command prints its own report.
        with contextlib.redirect_stdout(io.StringIO()):
            result = collector.compute_collection_result()
    for name in flat:
        low, high = extremes[name]
        result[name] = TensorData(lowest=low, highest=high)
    if flat:
        _LOGGER.info(
            "%d tensor(s) too flat for a %d-bin histogram take their min/max range: %s",
            len(flat),
            HISTOGRAM_BINS[method],
            ", ".join(flat[:5]) + (" ..." if len(flat) > 5 else ""),
        )
    return Ranges(method, TensorsData(kind, result), frames, len(result), flat)
