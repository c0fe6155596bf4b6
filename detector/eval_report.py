"""`smokewatch eval`, the outputs: Markdown tables, the JSON report, the summary in words, and
the pictures (detector/eval_plots.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector.assembly import scene_guard
from detector.config import CameraConfig, Config
from detector.eval_scoring import ScoredSequence
from detector.evaluate import SettingReport, VoteSetting


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
            f"{' (last frame)' if o.has_fire and o.detected_on_last_frame else ''}"
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
                "repeats": sum(1 for f in s.frames if f.repeat),
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


def camera_context(camera: CameraConfig) -> str:
    """What the camera's boxes went through before the vote: its scene, width cap and guard."""
    cap = "none" if camera.width_cap is None else f"{camera.width_cap:g}"
    guard = scene_guard(camera.scene)
    still = (
        "no guard"
        if guard is None
        else f"guard: boxes >= {guard.min_width:g} wide change >= {guard.min_change:g} levels"
    )
    return f"scene {camera.scene}, max_bbox_width {cap}, {still}"


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
        f"{fire_free_days * 24:.2f} camera-hours, {camera_context(camera)}",
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
                f"{_fmt_time(chosen.median_ttd_s, chosen.median_ttd_frames)}, worst "
                f"{_fmt_time(chosen.worst_ttd_s, chosen.worst_ttd_frames)}, "
                f"{chosen.false_alarms} false alarms)."
            )
            text += late_detection_notes(chosen)
            text.append("Paste into the configuration:")
            text.append("")
            text.append(config_lines(chosen.setting, config_camera).rstrip())
    return "\n".join(text)


def late_detection_notes(report: SettingReport) -> list[str]:
    """A warning per fire sequence that `report`'s setting detects only on its last frame: the
    footage ends there, so the detection is as late as the footage is long and one frame less
    would have missed it; a budget pick resting on it is no evidence of a working setting."""
    notes = []
    for outcome in report.outcomes:
        if outcome.has_fire and outcome.detected_on_last_frame:
            notes.append(
                f"Caution: {outcome.name} is detected only on its last frame, "
                f"{_fmt_time(outcome.ttd_seconds, outcome.ttd_frames)} after the labelled fire "
                "start: the footage ends there, so one frame less would have missed it. Do not "
                "count it as detected before checking longer footage."
            )
    return notes


def write_plots(
    scored: list[ScoredSequence],
    reports: list[SettingReport],
    shown: SettingReport,
    budget: float | None,
    out: Path,
    camera: CameraConfig,
) -> Path:
    """The PNG timelines (one per sequence, at `shown`, naming the camera's scene and width
    cap) and the grid plot; the timelines' folder. ImportError when matplotlib (the 'eval'
    extra) is missing."""
    from detector import eval_plots

    folder = out / "timelines"
    folder.mkdir(exist_ok=True)
    context = camera_context(camera)
    for sequence, outcome in zip(scored, shown.outcomes, strict=True):
        eval_plots.timeline(
            sequence, outcome, shown.setting, folder / f"{sequence.name}.png", context=context
        )
    eval_plots.grid(reports, shown, budget, out / "grid.png")
    return folder
