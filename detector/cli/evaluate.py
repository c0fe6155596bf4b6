"""`smokewatch eval` (the evaluation itself: detector/eval_scoring.py, the model pass;
detector/evaluate.py, the figures; detector/eval_report.py, the outputs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from detector.cli.offline import add_camera_options, camera_config


def register(subparsers: Any) -> None:
    """Add `eval` to the command line."""
    ev = subparsers.add_parser(
        "eval",
        help="measure time to detect and false alarms per day on labelled sequences",
        description="Run every labelled sequence of DATASET through the live pipeline, then "
        "replay the temporal vote for each grid setting; report sequences detected, time to "
        "detect, false alarms per camera-day, precision, recall and F1 (JSON, a Markdown table, "
        "PNG timelines with the 'eval' extra).",
    )
    ev.add_argument("dataset", type=Path, help="folder of sequences, each with a label.yaml")
    add_camera_options(ev)
    ev.add_argument(
        "--grid",
        nargs="+",
        default=[],
        metavar="KEY=V1,V2",
        help="vote settings to try, e.g. threshold=0.15,0.2,0.25 nb_frames=4,6,8 "
        "(default: the camera's settings)",
    )
    ev.add_argument(
        "--budget", help="false alarms allowed, e.g. '1/week': pick the most sensitive setting"
    )
    ev.add_argument(
        "-o", "--output", type=Path, default=Path("eval-out"), help="output folder (eval-out)"
    )
    ev.add_argument("-j", "--jobs", type=int, help="worker processes (default: cores / 2)")
    ev.add_argument("--no-plots", action="store_true", help="skip the PNG pictures")
    ev.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ev.set_defaults(func=eval_main)


def eval_main(args: argparse.Namespace) -> int:
    """`smokewatch eval`: 0, or 1 when no grid setting fits the budget."""
    from detector.eval_dataset import load_dataset
    from detector.eval_report import build_report, summary_markdown, write_plots
    from detector.eval_scoring import default_jobs, score_dataset, with_threads
    from detector.evaluate import (
        VoteSetting,
        choose_within_budget,
        evaluate_setting,
        parse_budget,
        parse_grid,
    )

    config, camera, from_file = camera_config(args, "eval")
    budget = None if args.budget is None else parse_budget(args.budget)
    cam = config.cameras[camera]
    grid = parse_grid(args.grid, VoteSetting(cam.threshold, cam.nb_frames))
    sequences = load_dataset(args.dataset)  # every label is checked before the model loads
    jobs = args.jobs if args.jobs is not None else default_jobs(len(sequences))
    scored, model_name = score_dataset(
        sequences,
        with_threads(config, jobs),
        camera,
        model_override=args.model,
        jobs=jobs,
        progress=not args.no_progress,
    )
    reports = [evaluate_setting(scored, setting) for setting in grid]
    chosen = None if budget is None else choose_within_budget(reports, budget)
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(
        scored,
        reports,
        model=model_name,
        dataset=args.dataset,
        config=config,
        camera=camera,
        budget=args.budget,
        chosen=chosen,
    )
    (out / "eval.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    shown = chosen or next(
        (r for r in reports if r.setting == VoteSetting(cam.threshold, cam.nb_frames)), reports[0]
    )
    markdown = summary_markdown(
        scored,
        reports,
        model=model_name,
        camera=cam,
        shown=shown,
        budget=args.budget,
        per_day=budget,
        chosen=chosen,
        config_camera=camera if from_file else None,
    )
    (out / "eval.md").write_text(markdown + "\n", encoding="utf-8")
    print(markdown)
    if not args.no_plots:
        try:
            folder = write_plots(scored, reports, shown, budget, out, cam)
        except ImportError:
            print(
                "No PNG: matplotlib is missing; install it with pip install 'smokewatch[eval]'",
                file=sys.stderr,
            )
        else:
            print(f"Pictures: {folder}/*.png, {out / 'grid.png'}", file=sys.stderr)
    print(f"\nReport: {out / 'eval.json'}, {out / 'eval.md'}", file=sys.stderr)
    return 1 if budget is not None and chosen is None else 0
