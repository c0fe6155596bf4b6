"""`smokewatch eval`: how soon a fire is detected and how many false alarms, on labelled sequences.

Each sequence runs once through the live pipeline (decode → model → post-process → masks) on a
fresh camera; the boxes after the masks are kept per frame. Every grid point (vote threshold,
vote window) then replays only the temporal vote over those boxes, so a grid of nine settings
costs one model pass. Definitions (EVALUATION.md):

- the fire frame is the first frame at or after the labelled fire start;
- a fire sequence is detected at its first frame, from the fire frame on, where an alert is open;
  time to detect = that frame's time − the fire frame's time (and the frames between them);
- a false alarm is an alert that starts before the fire frame (or anywhere in a fire-free
  sequence); fire-free time = the frames before the fire frame (all of a fire-free sequence),
  each counting one frame period;
- sequence level: TP = fire sequence detected, FN = missed, FP = fire-free sequence with an
  alert, TN = fire-free sequence without; precision, recall and F1 follow.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import math
import multiprocessing
import os
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from detector.assembly import build_pipeline, load_model
from detector.config import CameraConfig, Config
from detector.errors import FrameError, SmokeWatchError
from detector.eval_dataset import Sequence, describe_label
from detector.model import ModelBackend
from detector.pipeline import ScoringSettings, ScoringState

Boxes = NDArray[np.float32]

GRID_KEYS = {"threshold": float, "nb_frames": int}
_BUDGET_UNITS = {"day": 1.0, "week": 7.0, "month": 30.0, "year": 365.0}
DAY = 86400.0


@dataclass(frozen=True)
class VoteSetting:
    """One grid point: the vote settings replayed over the cached boxes."""

    threshold: float
    nb_frames: int

    @property
    def key(self) -> str:
        """A short name, e.g. 'threshold=0.2 nb_frames=6'."""
        return f"threshold={self.threshold:g} nb_frames={self.nb_frames}"


@dataclass
class ScoredFrame:
    """What the model pass kept of one frame: its time, raw and masked boxes, or its error."""

    name: str
    time: float
    raw_boxes: Boxes
    boxes: Boxes
    error: str | None = None
    paused: bool = False


@dataclass
class ScoredSequence:
    """A sequence after the model pass (independent of the vote settings)."""

    name: str
    has_fire: bool
    fire_time: float | None
    frame_seconds: float
    frames: list[ScoredFrame]
    label: dict[str, Any]
    pipeline_scores: list[float] = field(default_factory=list)

    @property
    def fire_index(self) -> int | None:
        """Index of the first frame at or after the labelled fire start (None: fire-free)."""
        if self.fire_time is None:
            return None
        for index, frame in enumerate(self.frames):
            if frame.time >= self.fire_time - 1e-9:
                return index
        return None


@dataclass
class Span:
    """One alert: the frames where it starts and ends (end None: still open at the end)."""

    start: int
    end: int | None
    start_s: float
    end_s: float | None
    false_alarm: bool

    def to_json(self) -> dict[str, Any]:
        """The span as JSON (seconds from the sequence's first frame)."""
        return dataclasses.asdict(self)


@dataclass
class SequenceOutcome:
    """One sequence under one vote setting."""

    name: str
    has_fire: bool
    fire_index: int | None
    scores: list[float]
    ongoing: list[bool]
    spans: list[Span]
    detected_index: int | None
    ttd_seconds: float | None
    ttd_frames: int | None
    false_alarms: int
    fire_free_seconds: float

    def to_json(self) -> dict[str, Any]:
        """The outcome as JSON (per-frame vote scores included, for the timelines)."""
        return {
            "name": self.name,
            "fire": self.has_fire,
            "fire_frame": self.fire_index,
            "detected": self.detected_index is not None,
            "detected_frame": self.detected_index,
            "time_to_detect_s": self.ttd_seconds,
            "time_to_detect_frames": self.ttd_frames,
            "false_alarms": self.false_alarms,
            "fire_free_s": self.fire_free_seconds,
            "alerts": [span.to_json() for span in self.spans],
        }


@dataclass
class SettingReport:
    """Every figure of one grid point over the whole dataset."""

    setting: VoteSetting
    outcomes: list[SequenceOutcome]
    fire_sequences: int
    detected: int
    median_ttd_s: float | None
    worst_ttd_s: float | None
    median_ttd_frames: float | None
    worst_ttd_frames: int | None
    false_alarms: int
    fire_free_days: float
    false_alarms_per_day: float | None
    precision: float | None
    recall: float | None
    f1: float | None

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "threshold": self.setting.threshold,
            "nb_frames": self.setting.nb_frames,
            "fire_sequences": self.fire_sequences,
            "detected": self.detected,
            "median_time_to_detect_s": self.median_ttd_s,
            "worst_time_to_detect_s": self.worst_ttd_s,
            "median_time_to_detect_frames": self.median_ttd_frames,
            "worst_time_to_detect_frames": self.worst_ttd_frames,
            "false_alarms": self.false_alarms,
            "fire_free_camera_days": round(self.fire_free_days, 6),
            "false_alarms_per_camera_day": _round(self.false_alarms_per_day),
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "f1": _round(self.f1),
            "sequences": [outcome.to_json() for outcome in self.outcomes],
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


# --- the model pass -------------------------------------------------------------------------


def score_sequence(
    sequence: Sequence,
    config: Config,
    model: ModelBackend,
    camera: str,
    on_frame: Callable[[], None] | None = None,
) -> ScoredSequence:
    """Run a sequence through the live pipeline on a fresh camera; keep each frame's boxes.

    The pipeline's own vote runs too, at the camera's configured settings: its scores are kept
    so that the vote replay can be checked against the live path.
    """
    # A pipeline per sequence: a fresh camera state (vote history, alert window), as replay has.
    pipeline = build_pipeline(config, model, [camera])
    frames: list[ScoredFrame] = []
    pipeline_scores: list[float] = []
    empty = np.zeros((0, 5), dtype=np.float32)
    for frame in sequence.read():
        try:
            result = pipeline.process(camera, frame.data, frame.offset)
        except FrameError as err:
            frames.append(ScoredFrame(frame.label, frame.offset, empty, empty, err.reason))
        else:
            # A night frame the camera pauses on never reaches the vote, as live.
            frames.append(
                ScoredFrame(
                    frame.label,
                    frame.offset,
                    result.raw_boxes,
                    result.boxes,
                    paused=result.paused,
                )
            )
            pipeline_scores.append(result.score)
        if on_frame is not None:
            on_frame()
    if not frames:
        raise SmokeWatchError(f"{sequence.path}: no frame could be read")
    frame_seconds = sequence.frame_seconds
    if frame_seconds <= 0:
        steps = [b.time - a.time for a, b in itertools.pairwise(frames)]
        frame_seconds = statistics.median(steps) if steps else 0.0
    if sequence.fire_time is not None and sequence.fire_time > frames[-1].time:
        raise SmokeWatchError(
            f"{sequence.path}: fire_start {sequence.fire_time:g} s is after the last frame "
            f"({frames[-1].time:g} s)"
        )
    return ScoredSequence(
        name=sequence.name,
        has_fire=sequence.has_fire,
        fire_time=sequence.fire_time,
        frame_seconds=frame_seconds,
        frames=frames,
        label=describe_label(sequence),
        pipeline_scores=pipeline_scores,
    )


# Worker-process state: the model is loaded once per worker, not once per sequence.
_WORKER: dict[str, Any] = {}


def _worker_init(config: Config, model_override: str | None, camera: str) -> None:
    _WORKER["config"] = config
    _WORKER["camera"] = camera
    _WORKER["model"] = load_model(config.model, override=model_override, progress=False)


def _worker_score(sequence: Sequence) -> ScoredSequence:
    return score_sequence(sequence, _WORKER["config"], _WORKER["model"], _WORKER["camera"])


def score_dataset(
    sequences: list[Sequence],
    config: Config,
    camera: str,
    *,
    model_override: str | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> tuple[list[ScoredSequence], str]:
    """The model pass over every sequence (in `jobs` processes); also the model's name."""
    total = sum(len(s.frames) for s in sequences) or None
    has_video = any(s.video is not None for s in sequences)
    bar = tqdm(total=None if has_video else total, unit="frame", desc="eval", disable=not progress)
    try:
        if jobs <= 1 or len(sequences) == 1:
            model = load_model(config.model, override=model_override, progress=progress)
            scored = [
                score_sequence(s, config, model, camera, on_frame=lambda: bar.update(1))
                for s in sequences
            ]
            return scored, model.name
        # Spawned workers: a forked onnxruntime session is not safe to reuse.
        context = multiprocessing.get_context("spawn")
        results: dict[int, ScoredSequence] = {}
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_worker_init,
            initargs=(config, model_override, camera),
        ) as pool:
            futures = {pool.submit(_worker_score, s): i for i, s in enumerate(sequences)}
            for future in concurrent.futures.as_completed(futures):
                result = future.result()
                results[futures[future]] = result
                bar.update(len(result.frames))
        name = load_model(config.model, override=model_override, progress=False).name
        return [results[i] for i in range(len(sequences))], name
    finally:
        bar.close()


# --- the vote replay and the figures ---------------------------------------------------------


def replay_vote(sequence: ScoredSequence, setting: VoteSetting) -> SequenceOutcome:
    """Replay the temporal vote at `setting` over the cached boxes of a sequence."""
    # The camera state the live pipeline uses, so the vote replayed here is the live vote.
    state = ScoringState(
        ScoringSettings(name="eval", threshold=setting.threshold, nb_frames=setting.nb_frames)
    )
    fire_index = sequence.fire_index
    scores: list[float] = []
    ongoing: list[bool] = []
    spans: list[Span] = []
    origin = sequence.frames[0].time
    for index, frame in enumerate(sequence.frames):
        if frame.error is not None or frame.paused:
            # An unreadable or paused frame never reaches the vote (as live): the alert state
            # carries on.
            scores.append(0.0)
            ongoing.append(bool(spans) and spans[-1].end is None)
            continue
        vote = state.vote.update(frame.boxes)
        scores.append(vote.score)
        ongoing.append(vote.ongoing)
        if vote.event == "start":
            false = fire_index is None or index < fire_index
            spans.append(Span(index, None, frame.time - origin, None, false))
        elif vote.event == "end" and spans:
            spans[-1].end, spans[-1].end_s = index, frame.time - origin
    detected = None
    if fire_index is not None:
        detected = next(
            (
                i
                for i in range(fire_index, len(sequence.frames))
                if ongoing[i] and sequence.frames[i].error is None
            ),
            None,
        )
    fire_free_frames = len(sequence.frames) if fire_index is None else fire_index
    return SequenceOutcome(
        name=sequence.name,
        has_fire=sequence.has_fire,
        fire_index=fire_index,
        scores=scores,
        ongoing=ongoing,
        spans=spans,
        detected_index=detected,
        ttd_seconds=None
        if detected is None or fire_index is None
        else sequence.frames[detected].time - sequence.frames[fire_index].time,
        ttd_frames=None if detected is None or fire_index is None else detected - fire_index,
        false_alarms=sum(span.false_alarm for span in spans),
        fire_free_seconds=fire_free_frames * sequence.frame_seconds,
    )


def evaluate_setting(sequences: list[ScoredSequence], setting: VoteSetting) -> SettingReport:
    """Every figure of one grid point over the dataset."""
    outcomes = [replay_vote(sequence, setting) for sequence in sequences]
    fire = [o for o in outcomes if o.has_fire]
    detected = [o for o in fire if o.detected_index is not None]
    times = [o.ttd_seconds for o in detected if o.ttd_seconds is not None]
    frames = [o.ttd_frames for o in detected if o.ttd_frames is not None]
    false_alarms = sum(o.false_alarms for o in outcomes)
    fire_free_days = sum(o.fire_free_seconds for o in outcomes) / DAY
    true_pos = len(detected)
    false_pos = sum(1 for o in outcomes if not o.has_fire and o.spans)
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else None
    recall = true_pos / len(fire) if fire else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else (0.0 if precision is not None and recall is not None else None)
    )
    return SettingReport(
        setting=setting,
        outcomes=outcomes,
        fire_sequences=len(fire),
        detected=len(detected),
        median_ttd_s=statistics.median(times) if times else None,
        worst_ttd_s=max(times) if times else None,
        median_ttd_frames=statistics.median(frames) if frames else None,
        worst_ttd_frames=max(frames) if frames else None,
        false_alarms=false_alarms,
        fire_free_days=fire_free_days,
        false_alarms_per_day=false_alarms / fire_free_days if fire_free_days > 0 else None,
        precision=precision,
        recall=recall,
        f1=f1,
    )


def parse_grid(items: Iterable[str], base: VoteSetting) -> list[VoteSetting]:
    """`threshold=0.15,0.2 nb_frames=4,6` → the product of the values; unset keys keep `base`."""
    values: dict[str, list[Any]] = {
        "threshold": [base.threshold],
        "nb_frames": [base.nb_frames],
    }
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in GRID_KEYS:
            raise SmokeWatchError(
                f"--grid {item!r}: expected KEY=V1,V2,... with KEY one of {', '.join(GRID_KEYS)}"
            )
        try:
            parsed = [GRID_KEYS[key](v) for v in text.split(",") if v.strip()]
        except ValueError as err:
            raise SmokeWatchError(f"--grid {item!r}: {err}") from err
        if not parsed:
            raise SmokeWatchError(f"--grid {item!r}: no value")
        if key == "threshold" and not all(0 <= v <= 1 for v in parsed):
            raise SmokeWatchError(f"--grid {item!r}: thresholds are between 0 and 1")
        if key == "nb_frames" and not all(1 <= v <= 50 for v in parsed):
            raise SmokeWatchError(f"--grid {item!r}: nb_frames is between 1 and 50")
        values[key] = sorted(set(parsed))
    return [
        VoteSetting(float(t), int(n))
        for n, t in itertools.product(values["nb_frames"], values["threshold"])
    ]


def parse_budget(text: str) -> float:
    """'1/week', '2/day', '0.5/month' → false alarms per camera-day."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*/\s*(day|week|month|year)s?\s*", text)
    if not match:
        raise SmokeWatchError(
            f"--budget {text!r}: expected N/day, N/week, N/month or N/year (e.g. '1/week')"
        )
    return float(match.group(1)) / _BUDGET_UNITS[match.group(2)]


def _sensitivity(report: SettingReport) -> tuple[float, float, float, float, float]:
    """Sort key, most sensitive first: recall, then fast median and worst times, then fewer FA."""
    inf = math.inf
    return (
        -(report.recall or 0.0),
        report.median_ttd_s if report.median_ttd_s is not None else inf,
        report.worst_ttd_s if report.worst_ttd_s is not None else inf,
        report.false_alarms_per_day or 0.0,
        report.setting.threshold,
    )


def choose_within_budget(reports: list[SettingReport], per_day: float) -> SettingReport | None:
    """The most sensitive grid point whose false alarms per camera-day stay within `per_day`."""
    fitting = [r for r in reports if (r.false_alarms_per_day or 0.0) <= per_day + 1e-12]
    return min(fitting, key=_sensitivity) if fitting else None


# --- output -----------------------------------------------------------------------------------


def _fmt_time(seconds: float | None, frames: float | None) -> str:
    if seconds is None:
        return "–"
    text = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    return f"{text} ({frames:g} fr)" if frames is not None else text


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "–" if value is None else pattern.format(value)


def markdown_table(reports: list[SettingReport]) -> str:
    """The grid as a Markdown table, one row per setting."""
    lines = [
        "| threshold | nb_frames | detected | median TTD | worst TTD | false alarms | FA / "
        "camera-day | precision | recall | F1 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        lines.append(
            f"| {r.setting.threshold:g} | {r.setting.nb_frames} | {r.detected}/{r.fire_sequences}"
            f" | {_fmt_time(r.median_ttd_s, r.median_ttd_frames)}"
            f" | {_fmt_time(r.worst_ttd_s, r.worst_ttd_frames)} | {r.false_alarms}"
            f" | {_fmt(r.false_alarms_per_day)} | {_fmt(r.precision)} | {_fmt(r.recall)}"
            f" | {_fmt(r.f1)} |"
        )
    return "\n".join(lines)


def sequence_table(report: SettingReport) -> str:
    """Per sequence, at one setting: label, detection, time to detect and the alert spans."""
    lines = [
        "| sequence | fire frame | detected at | time to detect | false alarms | alert spans "
        "(frames) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for o in report.outcomes:
        spans = (
            ", ".join(
                f"{s.start}–{'end' if s.end is None else s.end}{' FA' if s.false_alarm else ''}"
                for s in o.spans
            )
            or "none"
        )
        lines.append(
            f"| {o.name} | {'–' if o.fire_index is None else o.fire_index}"
            f" | {'–' if o.detected_index is None else o.detected_index}"
            f" | {_fmt_time(o.ttd_seconds, o.ttd_frames) if o.has_fire else '–'}"
            f"{' (missed)' if o.has_fire and o.detected_index is None else ''}"
            f" | {o.false_alarms} | {spans} |"
        )
    return "\n".join(lines)


def config_lines(setting: VoteSetting, camera: str | None) -> str:
    """The YAML to paste into the configuration for `setting`."""
    if camera is None:
        return f"detection:\n  threshold: {setting.threshold:g}\n  nb_frames: {setting.nb_frames}\n"
    return (
        f"cameras:\n  {camera}:\n    threshold: {setting.threshold:g}\n"
        f"    nb_frames: {setting.nb_frames}\n"
    )


def default_jobs(sequences: int) -> int:
    """Worker processes: one per two cores (onnxruntime uses two threads each), at most one per
    sequence, one on a small box."""
    return max(1, min(sequences, (os.cpu_count() or 1) // 2))


def with_threads(config: Config, jobs: int) -> Config:
    """Split the cores among workers unless the config pins onnxruntime's threads."""
    if jobs <= 1 or config.model.intra_op_threads:
        return config
    threads = max(1, (os.cpu_count() or 1) // jobs)
    return dataclasses.replace(
        config, model=dataclasses.replace(config.model, intra_op_threads=threads)
    )


def build_report(
    scored: list[ScoredSequence],
    reports: list[SettingReport],
    *,
    model: str,
    dataset: Path,
    config: Config,
    camera: str,
    budget: str | None,
    chosen: SettingReport | None,
) -> dict[str, Any]:
    """The whole evaluation as one JSON object."""
    return {
        "dataset": str(dataset),
        "model": model,
        "camera": camera,
        "scene": config.cameras[camera].scene,
        "max_bbox_width": config.cameras[camera].width_cap,
        "conf_thresh": config.model.conf_thresh,
        "sequences": [
            {
                "name": s.name,
                "fire": s.has_fire,
                "frames": len(s.frames),
                "unreadable": sum(1 for f in s.frames if f.error is not None),
                "paused": sum(1 for f in s.frames if f.paused),
                "frame_seconds": s.frame_seconds,
                "fire_frame": s.fire_index,
                "label": s.label,
            }
            for s in scored
        ],
        "budget": budget,
        "chosen": None
        if chosen is None
        else {k: v for k, v in chosen.to_json().items() if k != "sequences"},
        "grid": [r.to_json() for r in reports],
    }


def summary_markdown(
    scored: list[ScoredSequence],
    reports: list[SettingReport],
    *,
    model: str,
    camera: CameraConfig,
    shown: SettingReport,
    budget: str | None,
    per_day: float | None,
    chosen: SettingReport | None,
    config_camera: str | None,
) -> str:
    """The evaluation in words (eval.md): the grid, the sequences at `shown`, and the setting
    chosen within the budget (`config_camera`: the camera its YAML is for, None for the
    `detection` section)."""
    fire_free_days = reports[0].fire_free_days
    text = [
        f"Model {model}, {len(scored)} sequences "
        f"({sum(s.has_fire for s in scored)} with fire), "
        f"{sum(len(s.frames) for s in scored)} frames, fire-free time "
        f"{fire_free_days * 24:.2f} camera-hours, scene {camera.scene}, "
        f"max_bbox_width {camera.width_cap if camera.width_cap is not None else 'none'}",
        "",
        markdown_table(reports),
        "",
        f"Per sequence at {shown.setting.key}:",
        "",
        sequence_table(shown),
    ]
    if per_day is not None:
        text.append("")
        if fire_free_days > 0:
            text.append(
                f"One false alarm on this dataset is {1 / fire_free_days:.1f} per camera-day: "
                f"a budget of {budget} ({per_day:.3g}/day) is only checked to that resolution."
            )
        if chosen is None:
            text.append(f"No grid setting stays within {budget} on this dataset.")
        else:
            text.append(
                f"Most sensitive setting within {budget}: {chosen.setting.key} "
                f"(detected {chosen.detected}/{chosen.fire_sequences}, median time to detect "
                f"{_fmt_time(chosen.median_ttd_s, chosen.median_ttd_frames)}, "
                f"{chosen.false_alarms} false alarms). Paste into the configuration:"
            )
            text.append("")
            text.append(config_lines(chosen.setting, config_camera).rstrip())
    return "\n".join(text)


def write_plots(
    scored: list[ScoredSequence],
    reports: list[SettingReport],
    shown: SettingReport,
    budget: float | None,
    out: Path,
) -> Path:
    """The PNG timelines (one per sequence, at `shown`) and the grid plot; the timelines'
    folder. ImportError when matplotlib (the 'eval' extra) is missing."""
    from detector import eval_plots

    folder = out / "timelines"
    folder.mkdir(exist_ok=True)
    for sequence, outcome in zip(scored, shown.outcomes, strict=True):
        eval_plots.timeline(sequence, outcome, shown.setting, folder / f"{sequence.name}.png")
    eval_plots.grid(reports, shown, budget, out / "grid.png")
    return folder
