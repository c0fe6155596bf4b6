"""`smokewatch optimize`: a static int8 copy of the model, proven against the float model.

Static quantisation (QDQ: per-channel signed int8 weights, unsigned int8 activations) with
calibration ranges read from the user's own frames, letterboxed exactly as the pipeline does.
The output head stays in float: YOLO exports end by concatenating box coordinates (up to the
input size, e.g. 1024) with class scores (0–1), and one uint8 scale over both rounds every
score to zero. The head is found from the graph (every node between the output and the last
weighted layer), never from the node names of one export.

Before the int8 model is written where the user asked, it is compared with the float model
on frames held back from calibration: boxes matched by IoU, score differences, boxes lost or
gained at the camera's threshold, alerts lost on sequences, and the speed-up measured in the
same run. An alert the float model raises and the int8 model misses refuses the result
(exit 1) unless `--force`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from detector.contract import Boxes
from detector.errors import SmokeWatchError
from detector.frames import letterbox_into, restamped
from detector.geometry import iou_matrix
from detector.model import ModelBackend, ModelRuntime
from detector.pipeline import Pipeline, ScoringSettings
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
    """Quantisation cannot run, or its result loses alerts the float model raises."""


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


class _LetterboxReader:
    """Calibration frames letterboxed by the pipeline's own decode and letterbox."""

    def __init__(self, pipeline: Pipeline, frames: Sequence[ReplayFrame], progress: bool) -> None:
        self._pipeline = pipeline
        self._frames = iter(frames)
        self._bar = tqdm(total=len(frames), desc="calibrate", unit="frame", disable=not progress)

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        frame = next(self._frames, None)
        if frame is None:
            self._bar.close()
            return None
        model = local_model(self._pipeline.model)
        tensor = model.new_input()
        image, _size = self._pipeline.decode(frame.data)
        letterbox_into(image, tensor, bgr=True)
        self._bar.update()
        return {model.input_name: tensor}


def quantize(
    model: ModelRuntime,
    frames: Sequence[ReplayFrame],
    output: Path,
    *,
    method: str = "percentile",
    scope: str = "head",
    progress: bool = True,
) -> dict[str, Any]:
    """Write a static int8 (QDQ) copy of `model` to `output`, calibrated on `frames`.

    The model's metadata (class names, input size, ...) is copied, and a
    `smokewatch_quantization` entry records how it was made. Returns that record.
    """
    if method not in CALIBRATION_METHODS:
        raise OptimizeError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}")
    if not frames:
        raise OptimizeError("no calibration frame: give a folder of your camera's frames")
    onnx = _onnx()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.inner = _LetterboxReader(Pipeline(model), frames, progress)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            return self.inner.get_next()

    source = onnx.load(str(model.path))
    name_nodes(source)
    keep_float = float_nodes(source, scope)
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    # MinMax keeps only each tensor's min and max per frame (ReduceMin/ReduceMax outputs), so
    # its memory is small. Not CalibMaxIntermediateOutputs: onnxruntime 1.32 discards the
    # batches it clears instead of merging their ranges.
    extra: dict[str, Any] = {"CalibPercentile": 99.999}
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smokewatch-optimize-") as tmp:
        named = Path(tmp) / "named.onnx"
        onnx.save(source, str(named))
        used = method
        for attempt in (method, "minmax"):
            used = attempt
            try:
                quantize_static(
                    str(named),
                    str(output),
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8,
                    calibrate_method=methods[attempt],
                    nodes_to_exclude=keep_float,
                    extra_options=extra,
                )
                break
            except ValueError as err:
                # The histogram methods (entropy, percentile) fail on a tensor whose values
                # span less than float32 can split into onnxruntime's 2048 bins (seen on
                # yolo11s with random weights); min/max ranges have no such limit.
                if attempt == "minmax" or "bins" not in str(err):
                    raise OptimizeError(f"quantisation of {model.path} failed: {err}") from err
                _LOGGER.warning(
                    "%s calibration failed (%s); calibrating with minmax instead", attempt, err
                )
            except Exception as err:  # onnxruntime's quantiser raises many unrelated types
                raise OptimizeError(f"quantisation of {model.path} failed: {err}") from err
    record = {
        "method": used,
        "float_scope": scope,
        "float_nodes": len(keep_float),
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


@dataclass
class Agreement:
    """How the int8 model's decisions compare with the float model's on held-back frames."""

    frames: int = 0
    threshold: float = 0.25
    fp32_boxes: int = 0
    int8_boxes: int = 0
    matched: int = 0
    lost: list[str] = field(default_factory=list)
    gained: list[str] = field(default_factory=list)
    score_diffs: list[float] = field(default_factory=list)
    fp32_alerts: int = 0
    int8_alerts: int = 0
    alerts_lost: list[str] = field(default_factory=list)
    alerts_gained: list[str] = field(default_factory=list)
    sequence_alerts_fp32: int = 0
    sequence_alerts_int8: int = 0
    sequence_alerts_lost: list[str] = field(default_factory=list)
    labelled_boxes: int = 0
    labelled_found_fp32: int = 0
    labelled_found_int8: int = 0
    fp32_ms: float = 0.0
    int8_ms: float = 0.0

    @property
    def speedup(self) -> float:
        """fp32 time ÷ int8 time (medians of interleaved runs)."""
        return self.fp32_ms / self.int8_ms if self.int8_ms else 0.0

    def to_json(self) -> dict[str, Any]:
        """The comparison as a JSON object."""
        data = asdict(self)
        diffs = self.score_diffs
        data["max_score_diff"] = max(diffs, default=0.0)
        data["median_score_diff"] = statistics.median(diffs) if diffs else 0.0
        data["speedup"] = self.speedup
        return data


def _match(
    fp32: NDArray[np.float32], int8: NDArray[np.float32], threshold: float
) -> tuple[int, int, int, list[float]]:
    """(matched, lost, gained, score differences) of two frames' boxes at `threshold`.

    A float box above the threshold is matched by the int8 box of highest IoU (> 0.5) whatever
    its score; the difference of their scores is recorded; it is lost when that int8 box is
    missing or not above the threshold. Gained boxes are int8 boxes above the threshold with
    no float box above the threshold at IoU > 0.5.
    """
    strong_a = fp32[fp32[:, 4] > threshold]
    strong_b = int8[int8[:, 4] > threshold]
    matched = lost = 0
    diffs: list[float] = []
    if len(strong_a) and len(int8):
        ious = iou_matrix(strong_a[:, :4], int8[:, :4])
    else:
        ious = np.zeros((len(strong_a), len(int8)), dtype=np.float32)
    for row, box in enumerate(strong_a):
        best = int(np.argmax(ious[row])) if ious.shape[1] else -1
        if best < 0 or ious[row, best] <= MATCH_IOU:
            lost += 1
            continue
        diffs.append(abs(float(box[4]) - float(int8[best, 4])))
        if int8[best, 4] > threshold:
            matched += 1
        else:
            lost += 1
    gained = 0
    if len(strong_b):
        back = (
            iou_matrix(strong_b[:, :4], strong_a[:, :4])
            if len(strong_a)
            else np.zeros((len(strong_b), 0), dtype=np.float32)
        )
        gained = int(sum(1 for row in back if not (row > MATCH_IOU).any()))
    return matched, lost, gained, diffs


def read_labels(folders: Iterable[Path], frames: Iterable[ReplayFrame]) -> dict[str, Boxes]:
    """Labelled boxes of the frames that have a YOLO label file, by frame label.

    A frame `x.jpg` of a folder is labelled by `x.txt` beside it, in `labels/`, or in the
    `labels/` folder next to an `images/` folder (the YOLO layout, e.g. D-Fire's). Each line is
    `class cx cy w h` normalised to the frame; the class ids are the model's. Returns
    (n, 5) arrays [x1, y1, x2, y2, class]; an empty file (a negative frame) gives no row.
    """
    wanted = {frame.label for frame in frames}
    labels: dict[str, Boxes] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for directory in (folder, folder / "labels", folder.parent / "labels"):
            for label in sorted(wanted - set(labels)):
                path = directory / f"{Path(label).stem}.txt"
                if not path.is_file():
                    continue
                rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
                try:
                    values = np.array(rows, dtype=np.float32).reshape(-1, 5)
                except ValueError:
                    _LOGGER.warning("%s is not a YOLO label file; ignored", path)
                    continue
                cls, cx, cy, w, h = values.T
                labels[label] = np.stack(
                    [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, cls], axis=1
                ).astype(np.float32)
    return labels


def _found(truth: Boxes, boxes: Boxes, threshold: float) -> int:
    """How many labelled boxes a box above `threshold` overlaps at IoU > LABEL_IOU."""
    strong = boxes[boxes[:, 4] > threshold]
    if not len(truth) or not len(strong):
        return 0
    return int((iou_matrix(truth[:, :4], strong[:, :4]) > LABEL_IOU).any(axis=1).sum())


def _alert_on(pipeline: Pipeline, settings: ScoringSettings, data: bytes) -> bool:
    """Whether a camera sending this frame at every interval raises an alert (a fresh vote).

    Each copy is a new capture of the same pixels (`restamped`): the very same bytes again
    would be a frozen camera's repeat, which the pipeline does not vote on. The nearby guard is
    left out (`_models_only`): it reads the pixels, not the model, and drops a still frame's
    boxes whichever model gave them.
    """
    pipeline.add_camera(_models_only(settings))
    return any(
        pipeline.process(settings.name, restamped(data, copy), float(copy)).vote.ongoing
        for copy in range(settings.nb_frames)
    )


def _models_only(settings: ScoringSettings) -> ScoringSettings:
    """The camera's settings without the guard: the comparison is of the two models' boxes."""
    return dataclasses.replace(settings, guard=None)


def _episodes(ongoing: Sequence[bool]) -> list[tuple[int, int]]:
    """(first, last) frame index of each run of consecutive alerting frames."""
    episodes: list[tuple[int, int]] = []
    for index, on in enumerate(ongoing):
        if on and (not episodes or episodes[-1][1] != index - 1):
            episodes.append((index, index))
        elif on:
            episodes[-1] = (episodes[-1][0], index)
    return episodes


def _sequence(
    pipeline: Pipeline, settings: ScoringSettings, frames: Sequence[ReplayFrame]
) -> list[bool]:
    """Whether the alert is on at each frame when the frames arrive in order on one camera."""
    pipeline.add_camera(_models_only(settings))
    return [
        pipeline.process(settings.name, frame.data, float(index)).vote.ongoing
        for index, frame in enumerate(frames)
    ]


def compare(
    fp32: Pipeline,
    int8: Pipeline,
    settings: ScoringSettings,
    frames: Sequence[ReplayFrame],
    *,
    labels: dict[str, Boxes] | None = None,
    speed_runs: int = 10,
    progress: bool = True,
) -> Agreement:
    """Both models on the same held-back frames, and their speed in the same run.

    Boxes are the model's own (after NMS, before the camera's width cap and masks); an alert is
    the temporal vote firing when a camera sends the frame `nb_frames` times (the fresh vote
    of each frame is independent of the others), and the alerts of the frames in their order on
    one camera (a recorded sequence). Labelled frames (`labels`, see `read_labels`) also count
    the labelled smoke boxes each model finds above the threshold. Speed: medians of
    interleaved bare `session.run` calls on one ready tensor.
    """
    result = Agreement(threshold=settings.threshold)
    for frame in tqdm(frames, desc="compare", unit="frame", disable=not progress):
        boxes_a, _size, _t = fp32.detect(frame.data)
        boxes_b, _size, _t = int8.detect(frame.data)
        matched, lost, gained, diffs = _match(boxes_a, boxes_b, settings.threshold)
        result.frames += 1
        result.fp32_boxes += int((boxes_a[:, 4] > settings.threshold).sum())
        result.int8_boxes += int((boxes_b[:, 4] > settings.threshold).sum())
        result.matched += matched
        result.lost += [frame.label] * lost
        result.gained += [frame.label] * gained
        result.score_diffs += diffs
        truth = (labels or {}).get(frame.label)
        if truth is not None:
            smoke = [int(i) for i in fp32.model.smoke_class_ids]
            truth = truth[np.isin(truth[:, 4].astype(int), smoke)]
            result.labelled_boxes += len(truth)
            result.labelled_found_fp32 += _found(truth, boxes_a, settings.threshold)
            result.labelled_found_int8 += _found(truth, boxes_b, settings.threshold)
        alert_a = _alert_on(fp32, settings, frame.data)
        alert_b = _alert_on(int8, settings, frame.data)
        result.fp32_alerts += alert_a
        result.int8_alerts += alert_b
        if alert_a and not alert_b:
            result.alerts_lost.append(frame.label)
        if alert_b and not alert_a:
            result.alerts_gained.append(frame.label)
    # The held-back frames in their order, as one camera's sequence: an fp32 alert is lost when
    # int8 is never on while it lasts (a start a frame later or earlier is not a loss).
    on_a = _sequence(fp32, settings, frames)
    on_b = _sequence(int8, settings, frames)
    fp32_episodes = _episodes(on_a)
    result.sequence_alerts_fp32 = len(fp32_episodes)
    result.sequence_alerts_int8 = len(_episodes(on_b))
    result.sequence_alerts_lost = [
        f"sequence {frames[first].label}..{frames[last].label}"
        for first, last in fp32_episodes
        if not any(on_b[first : last + 1])
    ]
    if frames and speed_runs > 0:
        result.fp32_ms, result.int8_ms = time_models(
            fp32, int8, frames[0].data, speed_runs, progress=progress
        )
    return result


def time_models(
    first: Pipeline, second: Pipeline, data: bytes, runs: int, *, progress: bool = True
) -> tuple[float, float]:
    """Median ms of a bare session.run of each model on the same frame, interleaved."""
    feeds = []
    for pipeline in (first, second):
        model = local_model(pipeline.model)
        tensor = model.new_input()
        letterbox_into(pipeline.decode(data)[0], tensor, bgr=True)
        model.run(tensor)  # the first run allocates
        feeds.append((model, tensor))
    times: list[list[float]] = [[], []]
    for run in tqdm(range(runs), desc="speed", unit="run", disable=not progress):
        # Alternate which model goes first: the second starts with colder caches.
        for index in (0, 1) if run % 2 == 0 else (1, 0):
            model, tensor = feeds[index]
            start = time.perf_counter()
            model.session.run([model.output_name], {model.input_name: tensor})
            times[index].append((time.perf_counter() - start) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def split_frames(
    frames: Iterable[ReplayFrame], holdout_every: int
) -> tuple[list[ReplayFrame], list[ReplayFrame]]:
    """(calibration, held back): every `holdout_every`-th frame is held back (0: none)."""
    calibration: list[ReplayFrame] = []
    held: list[ReplayFrame] = []
    for index, frame in enumerate(frames):
        if holdout_every > 0 and index % holdout_every == holdout_every - 1:
            held.append(frame)
        else:
            calibration.append(frame)
    return calibration, held


def format_report(agreement: Agreement, record: dict[str, Any]) -> str:
    """The comparison in words, as printed by the command."""
    data = agreement.to_json()
    lines = [
        f"int8 ({record['method']} calibration on {record['calibration_frames']} frame(s), "
        f"{record['float_nodes']} node(s) kept in float) vs fp32 on {agreement.frames} "
        "held-back frame(s):",
        f"  boxes above {agreement.threshold:g}: fp32 {agreement.fp32_boxes}, int8 "
        f"{agreement.int8_boxes}; matched at IoU > {MATCH_IOU:g}: {agreement.matched}, "
        f"lost {len(agreement.lost)}, gained {len(agreement.gained)}",
        f"  score difference of matched boxes: median {data['median_score_diff']:.3f}, "
        f"max {data['max_score_diff']:.3f}",
        f"  alerts (each frame sent nb_frames times): fp32 {agreement.fp32_alerts}, int8 "
        f"{agreement.int8_alerts}, lost {len(agreement.alerts_lost)}, gained "
        f"{len(agreement.alerts_gained)}",
    ]
    lines.append(
        f"  alerts on the frames in order (one camera): fp32 {agreement.sequence_alerts_fp32}, "
        f"int8 {agreement.sequence_alerts_int8}, lost {len(agreement.sequence_alerts_lost)}"
    )
    if agreement.labelled_boxes:
        lines.append(
            f"  labelled smoke boxes found (IoU > {LABEL_IOU:g}, above {agreement.threshold:g}): "
            f"fp32 {agreement.labelled_found_fp32}/{agreement.labelled_boxes}, int8 "
            f"{agreement.labelled_found_int8}/{agreement.labelled_boxes}"
        )
    if agreement.alerts_lost or agreement.sequence_alerts_lost:
        lost = agreement.alerts_lost + agreement.sequence_alerts_lost
        lines.append(f"  alerts lost on: {', '.join(lost)}")
    if agreement.fp32_ms:
        lines.append(
            f"  model time (median, same run): fp32 {agreement.fp32_ms:.1f} ms, int8 "
            f"{agreement.int8_ms:.1f} ms, speed-up {agreement.speedup:.2f}x"
        )
    return "\n".join(lines)
