"""Pictures of an evaluation (needs matplotlib: pip install 'smokewatch[eval]')."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt

from detector.vote import HYSTERESIS

if TYPE_CHECKING:
    from detector.evaluate import ScoredSequence, SequenceOutcome, SettingReport, VoteSetting


def _minutes(seconds: float) -> float:
    return seconds / 60.0


def timeline(
    sequence: ScoredSequence, outcome: SequenceOutcome, setting: VoteSetting, path: Path
) -> None:
    """One sequence: raw box scores, vote score, threshold, alert spans and the fire start."""
    origin = sequence.frames[0].time
    times = [_minutes(frame.time - origin) for frame in sequence.frames]
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
    raw_x = [
        t for t, f in zip(times, sequence.frames, strict=True) for _ in range(len(f.raw_boxes))
    ]
    raw_y = [float(box[4]) for f in sequence.frames for box in f.raw_boxes]
    ax.scatter(raw_x, raw_y, s=10, color="0.55", label="raw box scores (model)", zorder=2)
    kept_x = [t for t, f in zip(times, sequence.frames, strict=True) for _ in range(len(f.boxes))]
    kept_y = [float(box[4]) for f in sequence.frames for box in f.boxes]
    ax.scatter(
        kept_x,
        kept_y,
        s=14,
        facecolors="none",
        edgecolors="tab:blue",
        label="boxes kept (width cap, masks)",
        zorder=3,
    )
    ax.step(
        times, outcome.scores, where="post", color="tab:red", lw=1.8, label="vote score", zorder=4
    )
    ax.axhline(
        setting.threshold, color="black", ls="--", lw=1, label=f"threshold {setting.threshold:g}"
    )
    ax.axhline(
        setting.threshold * HYSTERESIS,
        color="black",
        ls=":",
        lw=0.8,
        label="hysteresis (alert stays open)",
    )
    step = _minutes(sequence.frame_seconds)
    for number, span in enumerate(outcome.spans):
        end = times[span.end] if span.end is not None else times[-1] + step
        ax.axvspan(
            times[span.start],
            end,
            color="tab:orange" if span.false_alarm else "tab:red",
            alpha=0.18,
            label=("false alarm" if span.false_alarm else "alert")
            if number == 0 or span.false_alarm != outcome.spans[0].false_alarm
            else None,
        )
    if outcome.fire_index is not None:
        ax.axvline(times[outcome.fire_index], color="tab:green", lw=2, label="labelled fire start")
    if outcome.detected_index is not None:
        ax.plot(
            [times[outcome.detected_index]],
            [outcome.scores[outcome.detected_index]],
            "v",
            color="tab:red",
            ms=9,
            label="detected",
        )
    if outcome.has_fire:
        verdict = (
            "missed"
            if outcome.ttd_seconds is None
            else f"detected after {outcome.ttd_seconds:.0f} s ({outcome.ttd_frames} frames)"
        )
    else:
        verdict = "fire-free"
    ax.set_title(
        f"{sequence.name}: {verdict}, {outcome.false_alarms} false alarm(s) — {setting.key}",
        fontsize=10,
    )
    ax.set_xlabel("minutes from the first frame")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", ncols=2, framealpha=0.85)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def grid(
    reports: list[SettingReport], chosen: SettingReport, budget: float | None, path: Path
) -> None:
    """Median time to detect (worst as a bar) against false alarms per camera-day, per setting."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for report in reports:
        if report.median_ttd_s is None:
            continue
        x = report.false_alarms_per_day or 0.0
        median = _minutes(report.median_ttd_s)
        worst = _minutes(report.worst_ttd_s or report.median_ttd_s)
        is_chosen = report.setting == chosen.setting
        ax.errorbar(
            [x],
            [median],
            yerr=[[0.0], [worst - median]],
            fmt="o",
            color="tab:red" if is_chosen else "tab:blue",
            ms=8 if is_chosen else 6,
            capsize=3,
            lw=1,
        )
        ax.annotate(
            f"thr {report.setting.threshold:g} nb {report.setting.nb_frames}\n"
            f"{report.detected}/{report.fire_sequences} det.",
            (x, median),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=7,
        )
    if budget is not None:
        ax.axvline(budget, color="tab:orange", ls="--", label=f"budget {budget:.3g}/day")
        ax.legend(fontsize=8)
    missed = [r for r in reports if r.median_ttd_s is None]
    note = f"\n({len(missed)} setting(s) detect nothing, not drawn)" if missed else ""
    ax.set_title(
        "Time to detect vs false alarms; dot = median, bar up to the worst; "
        f"red = shown setting{note}",
        fontsize=9,
    )
    ax.set_xlabel("false alarms per camera-day (fire-free time)")
    ax.set_ylabel("minutes from the labelled fire start")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
