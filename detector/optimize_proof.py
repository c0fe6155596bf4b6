"""The proof of `smokewatch optimize`: the int8 model against the float one, on frames held
back from calibration.

Boxes matched by IoU, score differences, boxes lost or gained at the camera's threshold, the
labelled smoke boxes each model finds, alerts lost on sequences (each frame sent `nb_frames`
times, and the frames in order as one camera's sequence), and both models' speed measured in
the same run. detector/optimize.py makes the int8 model; this module only compares.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from detector.contract import Boxes
from detector.frames import letterbox_into, restamped
from detector.geometry import iou_matrix
from detector.optimize import LABEL_IOU, MATCH_IOU, local_model
from detector.pipeline import Pipeline, ScoringSettings
from detector.replay import ReplayFrame

_LOGGER = logging.getLogger(__name__)


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
        f"  calibration: {record['recipe']}",
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
