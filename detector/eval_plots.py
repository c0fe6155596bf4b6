"""Pictures of an evaluation (needs matplotlib: pip install 'smokewatch[eval]')."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.transforms import offset_copy

from detector.vote import HYSTERESIS

if TYPE_CHECKING:
    from detector.eval_scoring import ScoredSequence
    from detector.evaluate import SequenceOutcome, SettingReport, VoteSetting


# How far apart, on the screen, settings with the same false-alarm rate are drawn.
_SIDE_BY_SIDE_POINTS = 9.0


def _minutes(seconds: float) -> float:
    return seconds / 60.0


def timeline(
    sequence: ScoredSequence,
    outcome: SequenceOutcome,
    setting: VoteSetting,
    path: Path,
    *,
    context: str,
) -> None:
    """One sequence: raw box scores, vote score, threshold, alert spans and the fire start.

    `context` names what the boxes went through before the vote (scene, width cap): the same
    footage gives other boxes under another scene, so a timeline without it cannot be read.
    """
    origin = sequence.frames[0].time
    times = [_minutes(frame.time - origin) for frame in sequence.frames]
    fig, ax = plt.subplots(figsize=(12, 3.6), dpi=100)
    raw_x = [
        t for t, f in zip(times, sequence.frames, strict=True) for _ in range(len(f.raw_boxes))
    ]
    raw_y = [float(box[4]) for f in sequence.frames for box in f.raw_boxes]
    ax.scatter(
        raw_x, raw_y, s=10, color="0.55", label="model boxes (after the width cap)", zorder=2
    )
    kept_x = [t for t, f in zip(times, sequence.frames, strict=True) for _ in range(len(f.boxes))]
    kept_y = [float(box[4]) for f in sequence.frames for box in f.boxes]
    ax.scatter(
        kept_x,
        kept_y,
        s=14,
        facecolors="none",
        edgecolors="tab:blue",
        label="boxes kept after the masks",
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
            else f"detected after {outcome.ttd_seconds:.0f} s ({outcome.ttd_frames} frames"
            f"{', on its last frame' if outcome.detected_on_last_frame else ''})"
        )
    else:
        verdict = "fire-free"
    ax.set_title(
        f"{sequence.name}: {verdict}, {outcome.false_alarms} false alarm(s)\n"
        f"{setting.key}, {context}",
        fontsize=10,
    )
    ax.set_xlabel("minutes from the first frame")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    # Outside the axes, so that it never hides a score.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.85)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def grid(
    reports: list[SettingReport], chosen: SettingReport, budget: float | None, path: Path
) -> None:
    """Median time to detect (bar up to the worst) against false alarms per camera-day.

    One colour per vote window; each point is labelled with its threshold and sequences
    detected. Every point stands at its own rate: settings with equal rates are drawn side by
    side by a few points on the screen (not in data units, which would show a rate nobody
    measured, below zero), and the title says so.
    """
    fig, ax = plt.subplots(figsize=(10.5, 5.5), dpi=100)
    drawn = [r for r in reports if r.median_ttd_s is not None]
    xs = [r.false_alarms_per_day or 0.0 for r in drawn]
    windows = sorted({r.setting.nb_frames for r in reports})
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(windows), 1)))
    same_x: dict[float, int] = {}
    for x in xs:
        same_x[x] = same_x.get(x, 0) + 1
    seen: dict[float, int] = {}
    for report, x in zip(drawn, xs, strict=True):
        seen[x] = seen.get(x, -1) + 1
        sideways = (seen[x] - (same_x[x] - 1) / 2) * _SIDE_BY_SIDE_POINTS
        shifted = offset_copy(ax.transData, fig=fig, x=sideways, y=0.0, units="points")
        median = _minutes(report.median_ttd_s or 0.0)
        worst = _minutes(report.worst_ttd_s or 0.0)
        colour = colours[windows.index(report.setting.nb_frames)]
        ax.vlines([x], [median], [worst], colors=[colour], lw=1, transform=shifted)
        ax.plot(
            [x],
            [median],
            "o",
            color=colour,
            ms=6,
            transform=shifted,
            label=f"nb_frames {report.setting.nb_frames}",
        )
        if report.setting == chosen.setting:
            ax.plot(
                [x],
                [median],
                "o",
                ms=13,
                mfc="none",
                mec="tab:red",
                mew=2,
                transform=shifted,
                label="shown setting",
            )
        ax.annotate(
            f"{report.setting.threshold:g} ({report.detected}/{report.fire_sequences})",
            (x, median),
            textcoords="offset points",
            xytext=(4 + sideways, -10),
            fontsize=6.5,
            rotation=-35,
        )
    if budget is not None:
        ax.axvline(budget, color="tab:orange", ls="--", label=f"budget {budget:.3g}/day")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(
        unique.values(), unique.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    missed = [r for r in reports if r.median_ttd_s is None]
    note = f"; {len(missed)} setting(s) detect nothing, not drawn" if missed else ""
    stacked = any(count > 1 for count in same_x.values())
    side = "; settings at the same rate are drawn side by side around it" if stacked else ""
    ax.set_title(
        "Time to detect vs false alarms per setting: dot = median, bar up to the worst;\n"
        f"label = threshold (fire sequences detected){note}{side}",
        fontsize=9,
    )
    # No rate is negative: room on the left for the points drawn beside 0, no negative tick.
    right = max([*xs, budget or 0.0, 0.0])
    ax.set_xlim(-0.06 * (right or 1.0), right * 1.08 or 1.0)
    ax.set_xticks([tick for tick in ax.get_xticks() if 0 <= tick <= ax.get_xlim()[1]])
    ax.set_xlabel("false alarms per camera-day (fire-free time)")
    ax.set_ylabel("minutes from the labelled fire start")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
