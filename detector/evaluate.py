"""`smokewatch eval`, the figures: the temporal vote replayed per grid setting over the model pass.

The model pass (detector/eval_scoring.py) kept the boxes of every frame; each grid point
(vote threshold, vote window) replays only the temporal vote over them, so a grid of nine
settings costs one model pass. Definitions (EVALUATION.md):

- the fire frame is the first frame at or after the labelled fire start;
- a fire sequence is detected at its first frame, from the fire frame on, where an alert is open;
  time to detect = that frame's time − the fire frame's time (and the frames between them);
- a false alarm is an alert that starts before the fire frame (or anywhere in a fire-free
  sequence); fire-free time = the frames before the fire frame (all of a fire-free sequence),
  each counting one frame period;
- sequence level: TP = fire sequence detected, FN = missed, FP = fire-free sequence with an
  alert, TN = fire-free sequence without; precision, recall and F1 follow.

The outputs (tables, JSON, pictures) are detector/eval_report.py's.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from detector.errors import SmokeWatchError
from detector.eval_scoring import ScoredSequence
from detector.pipeline import ScoringSettings, ScoringState

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
    frames: int = 0

    @property
    def detected_on_last_frame(self) -> bool:
        """True when the fire is detected only on the sequence's last frame: the footage ends
        there, so the detection is as late as the footage is long, not a property of the
        setting (it may not have come at all with a frame less)."""
        return self.detected_index is not None and self.detected_index == self.frames - 1

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
            "detected_on_last_frame": self.detected_on_last_frame,
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
    held = 0.0  # the last voted score: what a frame not voted on reports, as live
    for index, frame in enumerate(sequence.frames):
        if not frame.voted:
            # An unreadable, paused or repeated frame never reaches the vote (as live): the
            # alert state carries on.
            scores.append(0.0 if frame.error is not None else held)
            ongoing.append(bool(spans) and spans[-1].end is None)
            continue
        vote = state.vote.update(frame.boxes)
        held = vote.score
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
        frames=len(sequence.frames),
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
