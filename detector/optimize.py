"""`smokewatch optimize`: a static int8 copy of the model, proven against the float model.

Static quantisation (QDQ: per-channel signed int8 weights, unsigned int8 activations) with
calibration ranges read from the user's own frames, letterboxed exactly as the pipeline does.
The output head stays in float: YOLO exports end by concatenating box coordinates (up to the
input size, e.g. 1024) with class scores (0–1), and one uint8 scale over both rounds every
score to zero. The head is found from the graph (every node between the output and the last
weighted layer), never from the node names of one export.

Calibration reads one frame at a time (optimize_calibrate.py), so memory does not grow with
the number of frames. Before the int8 model is written where the user asked, it is compared
with the float model on frames and sequences held back from calibration (optimize_split.py,
optimize_proof.py): boxes matched by IoU, score differences, boxes lost or gained at the
camera's threshold, alerts lost or added, time to alert, and the speed-up measured in the same
run. An alert that differs refuses the result (exit 1) unless `--force`; a check with nothing
to compare (no float box above the threshold) refuses it unless `--accept-unproven`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from detector.errors import SmokeWatchError
from detector.frames import letterbox_into
from detector.model import ModelBackend, ModelRuntime
from detector.optimize_calibrate import calibrate
from detector.pipeline import Pipeline
from detector.replay import ReplayFrame

_LOGGER = logging.getLogger(__name__)

# Layers whose arithmetic int8 speeds up; the walk back from the output stops at them.
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# "head": every node after the last weighted layers stays float; "output": only the node
# that produces the output (the minimal fix of the plain recipe).
FLOAT_SCOPES = ("head", "output")
MATCH_IOU = 0.5
# Smoke has no crisp edge: a labelled plume counts as found at a looser overlap.
LABEL_IOU = 0.3
QUANTIZATION_KEY = "smokewatch_quantization"


class OptimizeError(SmokeWatchError):
    """Quantisation cannot run, or its result cannot be trusted (alerts differ, nothing proven)."""


def local_model(model: ModelBackend) -> ModelRuntime:
    """The model as a local onnxruntime session: quantisation rewrites a local ONNX file."""
    if not isinstance(model, ModelRuntime):
        raise OptimizeError(
            f"{model.name} is served by an inference server: optimize needs a local ONNX file "
            "(--model FILE, or model.backend: onnxruntime)"
        )
    return model


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as err:  # onnx is an optional extra: the service does not need it
        raise OptimizeError(
            "smokewatch optimize needs the onnx package: pip install 'smokewatch[optimize]'"
        ) from err
    return onnx


def name_nodes(model: Any) -> None:
    """Give every unnamed node a unique name (quantisation excludes nodes by name)."""
    taken = {node.name for node in model.graph.node if node.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def float_nodes(model: Any, scope: str = "head") -> list[str]:
    """Names of the nodes that stay in float, found from the graph.

    scope "none": nothing (onnxruntime's plain recipe, which loses every detection of a YOLO
    export; kept to measure that). scope "output": the nodes that produce the graph outputs.
    scope "head": those and every node reached walking back from them, stopping at weighted
    layers (Conv, MatMul, Gemm), which are quantised: the decoding of boxes (distribution,
    anchors, strides) and the scores' sigmoid then run in float. Nodes must be named (see
    `name_nodes`).
    """
    if scope == "none":
        return []
    if scope not in FLOAT_SCOPES:
        raise ValueError(f"scope must be one of {FLOAT_SCOPES} or 'none', not {scope!r}")
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    start = [producers[out.name] for out in graph.output if out.name in producers]
    if scope == "output":
        return [node.name for node in start]
    found: dict[str, Any] = {}
    queue = deque(start)
    while queue:
        node = queue.popleft()
        if node.name in found or node.op_type in WEIGHTED_OPS:
            continue
        found[node.name] = node
        queue.extend(producers[name] for name in node.input if name in producers)
    return list(found)


def _letterboxed(
    model: ModelRuntime, frames: Sequence[ReplayFrame], progress: bool
) -> Iterator[dict[str, NDArray[np.float32]]]:
    """Calibration inputs, decoded and letterboxed by the pipeline's own code, one at a time."""
    pipeline = Pipeline(model)
    tensor = model.new_input()
    for frame in tqdm(frames, desc="calibrate", unit="frame", disable=not progress):
        image, _size = pipeline.decode(frame.data)
        letterbox_into(image, tensor, bgr=True)
        yield {model.input_name: tensor}


def quantize(
    model: ModelRuntime,
    frames: Sequence[ReplayFrame],
    output: Path,
    *,
    method: str = "percentile",
    scope: str = "head",
    progress: bool = True,
    per_channel: bool = True,
    quant_format: str = "QDQ",
) -> dict[str, Any]:
    """Write a static int8 (QDQ) copy of `model` to `output`, calibrated on `frames`.

    `per_channel` (one weight scale per output channel, else per tensor) and `quant_format`
    ("QDQ" or onnxruntime's older "QOperator") are the recipe's other choices, measured in
    BENCHMARKS.md ("int8 recipes"). Frames are calibrated one at a time
    (detector/optimize_calibrate.py), so memory does not grow with their number. The model's
    metadata (class names, input size, ...) is copied, and a `smokewatch_quantization` entry
    records how it was made. Returns that record.
    """
    if method not in CALIBRATION_METHODS:
        raise OptimizeError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}")
    if not frames:
        raise OptimizeError("no calibration frame: give a folder of your camera's frames")
    onnx = _onnx()
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    source = onnx.load(str(model.path))
    name_nodes(source)
    keep_float = float_nodes(source, scope)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smokewatch-optimize-") as tmp:
        named = Path(tmp) / "named.onnx"
        onnx.save(source, str(named))
        try:
            ranges = calibrate(named, _letterboxed(model, frames, progress), method, Path(tmp))
            _LOGGER.info("Calibration: %s", ranges.describe())
            cache = Path(tmp) / "ranges.json"
            save_tensors_data(ranges.data, cache)
            quantize_static(
                str(named),
                str(output),
                None,
                quant_format=QuantFormat.from_string(quant_format),
                per_channel=per_channel,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                calibrate_method=ranges.data.calibration_method,
                nodes_to_exclude=keep_float,
                calibration_cache_path=cache,
            )
        except Exception as err:  # onnxruntime's quantiser raises many unrelated types
            raise OptimizeError(f"quantisation of {model.path} failed: {err}") from err
    record = {
        "method": method,
        "recipe": ranges.describe(),
        "minmax_tensors": len(ranges.minmax_tensors),
        "calibrated_tensors": ranges.tensors,
        "float_scope": scope,
        "float_nodes": len(keep_float),
        "format": quant_format,
        "per_channel": per_channel,
        "calibration_frames": len(frames),
        "source": model.path.name,
    }
    quantized = onnx.load(str(output))
    metadata = {entry.key: entry.value for entry in source.metadata_props}
    metadata.update({entry.key: entry.value for entry in quantized.metadata_props})
    metadata[QUANTIZATION_KEY] = json.dumps(record)
    del quantized.metadata_props[:]
    for key, value in metadata.items():
        entry = quantized.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(quantized, str(output))
    return record
