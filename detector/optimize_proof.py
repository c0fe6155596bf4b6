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

from detector.config import Config
from detector.contract import Boxes
from detector.eval_dataset import Sequence as EvalSequence
from detector.eval_scoring import score_sequence
from detector.evaluate import VoteSetting, replay_vote
from detector.frames import letterbox_into, restamped
from detector.geometry import iou_matrix
from detector.model import ModelBackend
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
    sequence_alerts_gained: list[str] = field(default_factory=list)
    alerts_later: list[str] = field(default_factory=list)
    sequences: list[dict[str, Any]] = field(default_factory=list)
    labelled_boxes: int = 0
    labelled_found_fp32: int = 0
    labelled_found_int8: int = 0
    fp32_ms: float = 0.0
    int8_ms: float = 0.0

    @property
    def differences(self) -> list[str]:
        """Every alert one model raises and the other does not (lost, added), and every fire
        int8 alerts on later than fp32."""
        lost = self.alerts_lost + self.sequence_alerts_lost
        gained = self.alerts_gained + self.sequence_alerts_gained
        return (
            [f"lost: {name}" for name in lost]
            + [f"added: {name}" for name in gained]
            + [f"later: {name}" for name in self.alerts_later]
        )

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
    result.sequence_alerts_gained = [
        f"sequence {frames[first].label}..{frames[last].label}"
        for first, last in _episodes(on_b)
        if not any(on_a[first : last + 1])
    ]
    if frames and speed_runs > 0 and result.frames:
        result.fp32_ms, result.int8_ms = time_models(
            fp32, int8, frames[0].data, speed_runs, progress=progress
        )
    return result


def compare_sequences(
    result: Agreement,
    config: Config,
    models: tuple[ModelBackend, ModelBackend],
    camera: str,
    sequences: Sequence[EvalSequence],
    *,
    progress: bool = True,
) -> None:
    """Held-back labelled sequences (eval's layout) scored by both models, added to `result`.

    Each sequence goes through `smokewatch eval`'s model pass (the live pipeline on a fresh
    camera, with its scene, masks and guard) with each model, and eval's replay of the
    camera's vote over both: alerts lost (an fp32 alert with no int8 alert while it lasts),
    alerts added (the other way round), time to alert on a fire sequence (a later int8 alert is
    a difference too), false alarms on a fire-free one. Frames read by both also add their
    boxes to the box comparison.
    """
    cam = config.cameras[camera]
    setting = VoteSetting(cam.threshold, cam.nb_frames)
    for sequence in tqdm(sequences, desc="sequences", unit="seq", disable=not progress):
        scored = [score_sequence(sequence, config, model, camera) for model in models]
        for one, two in zip(scored[0].frames, scored[1].frames, strict=True):
            if one.error is not None or two.error is not None:
                continue
            matched, lost, gained, diffs = _match(one.raw_boxes, two.raw_boxes, cam.threshold)
            result.frames += 1
            result.fp32_boxes += int((one.raw_boxes[:, 4] > cam.threshold).sum())
            result.int8_boxes += int((two.raw_boxes[:, 4] > cam.threshold).sum())
            result.matched += matched
            result.lost += [f"{sequence.name}/{one.name}"] * lost
            result.gained += [f"{sequence.name}/{one.name}"] * gained
            result.score_diffs += diffs
        fp32, int8 = (replay_vote(one, setting) for one in scored)
        names = [frame.name for frame in scored[0].frames]
        for first, second, differences in (
            (fp32, int8, result.sequence_alerts_lost),
            (int8, fp32, result.sequence_alerts_gained),
        ):
            differences += [
                f"{sequence.name} {names[start]}..{names[end]}"
                for start, end in _episodes(first.ongoing)
                if not any(second.ongoing[start : end + 1])
            ]
        if fp32.ttd_seconds is not None and int8.ttd_seconds is not None:
            delay = int8.ttd_seconds - fp32.ttd_seconds
            if delay > 0:
                result.alerts_later.append(f"{sequence.name} by {delay:g} s")
        result.sequence_alerts_fp32 += len(fp32.spans)
        result.sequence_alerts_int8 += len(int8.spans)
        result.sequences.append(
            {
                "name": sequence.name,
                "fire": sequence.has_fire,
                "frames": len(names),
                "alerts": [len(fp32.spans), len(int8.spans)],
                "time_to_alert_s": [fp32.ttd_seconds, int8.ttd_seconds],
                "false_alarms": [fp32.false_alarms, int8.false_alarms],
            }
        )


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
        f"  alerts on the frames in order (one camera) and on held-back sequences: fp32 "
        f"{agreement.sequence_alerts_fp32}, int8 {agreement.sequence_alerts_int8}, lost "
        f"{len(agreement.sequence_alerts_lost)}, added {len(agreement.sequence_alerts_gained)}"
    )
    for seq in agreement.sequences:
        kind = "fire" if seq["fire"] else "no fire"
        ttd = ", ".join("-" if t is None else f"{t:g} s" for t in seq["time_to_alert_s"])
        lines.append(
            f"    {seq['name']} ({kind}, {seq['frames']} frames): alerts fp32/int8 "
            f"{seq['alerts'][0]}/{seq['alerts'][1]}, false alarms {seq['false_alarms'][0]}/"
            f"{seq['false_alarms'][1]}" + (f", time to alert {ttd}" if seq["fire"] else "")
        )
    if agreement.labelled_boxes:
        lines.append(
            f"  labelled smoke boxes found (IoU > {LABEL_IOU:g}, above {agreement.threshold:g}): "
            f"fp32 {agreement.labelled_found_fp32}/{agreement.labelled_boxes}, int8 "
            f"{agreement.labelled_found_int8}/{agreement.labelled_boxes}"
        )
    if agreement.differences:
        lines.append(f"  alerts that differ: {'; '.join(agreement.differences)}")
    if agreement.fp32_ms:
        lines.append(
            f"  model time (median, same run): fp32 {agreement.fp32_ms:.1f} ms, int8 "
            f"{agreement.int8_ms:.1f} ms, speed-up {agreement.speedup:.2f}x"
        )
    return "\n".join(lines)
