"""`smokewatch optimize` (the quantisation and the comparison: detector/optimize.py)."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

# The library's choices: this module is imported only for `smokewatch optimize` and --help,
# never for `smokewatch bridge` (detector.optimize loads onnxruntime).
from detector.optimize import CALIBRATION_METHODS, FLOAT_SCOPES


def register(subparsers: Any) -> None:
    """Add `optimize` to the command line."""
    parser = subparsers.add_parser(
        "optimize",
        help="make an int8 copy of the model and prove it sees the same smoke",
        description="Quantise the model to int8 with calibration on your own frames "
        "(letterboxed as the pipeline does), keep the output head in float, and compare "
        "int8 with fp32 on frames held back from calibration. Refuses (exit 1) when int8 "
        "loses an alert that fp32 raises, unless --force.",
    )
    parser.add_argument("-c", "--config", type=Path, help="use this configuration's model")
    parser.add_argument("--model", help="model file or repo id (default: the configured one)")
    parser.add_argument(
        "--camera", help="camera whose threshold, vote and width cap judge the result"
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        required=True,
        help="folder of frames (or a video) from your cameras",
    )
    parser.add_argument(
        "--check", type=Path, help="more frames to compare on, never used to calibrate"
    )
    parser.add_argument(
        "--holdout",
        type=int,
        default=3,
        help="hold back every Nth calibration frame for the comparison (default 3; 0: none)",
    )
    parser.add_argument(
        "--method",
        choices=CALIBRATION_METHODS,
        default="percentile",
        help="calibration method (default percentile: the closest to fp32 measured, at the "
        "same speed; see BENCHMARKS.md)",
    )
    parser.add_argument(
        "--float",
        dest="float_scope",
        choices=FLOAT_SCOPES,
        default="head",
        help="what stays in float: the whole output head after the last convolutions "
        "(default) or only the output node",
    )
    parser.add_argument("-o", "--output", type=Path, help="int8 model (default <model>-int8.onnx)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per model (default 10)")
    parser.add_argument(
        "--force", action="store_true", help="write the int8 model even if it loses alerts"
    )
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=optimize_main)


def optimize_main(args: argparse.Namespace) -> int:
    """`smokewatch optimize`: 0, or an OptimizeError when int8 loses an alert (unless --force)."""
    from detector.assembly import build_pipeline, camera_settings, load_model
    from detector.config import load_config, validate
    from detector.optimize import OptimizeError, local_model, quantize
    from detector.optimize_proof import compare, format_report, read_labels, split_frames
    from detector.replay import iter_frames

    if args.config is not None:
        config = load_config(args.config, offline=True)
    else:
        config = validate({"cameras": {"optimize": {}}})
    camera_id = args.camera or next(iter(config.cameras))
    if camera_id not in config.cameras:
        raise OptimizeError(f"--camera {camera_id}: no such camera in the configuration")
    progress = not args.no_progress
    _count, frames = iter_frames(args.calibration, 0.0)
    calibration, held = split_frames(frames, args.holdout)
    if args.check is not None:
        held += list(iter_frames(args.check, 0.0)[1])
    if not held:
        raise OptimizeError(
            "no frame left to check the result on: use --holdout N or --check FRAMES"
        )
    fp32_model = local_model(load_model(config.model, override=args.model, progress=progress))
    output = args.output or fp32_model.path.with_name(f"{fp32_model.path.stem}-int8.onnx")
    if output.resolve() == fp32_model.path.resolve():
        raise OptimizeError("--output must differ from the model itself")
    print(
        f"Quantising {fp32_model.name}: {len(calibration)} calibration frame(s), "
        f"{len(held)} held back"
    )
    with tempfile.TemporaryDirectory(prefix="smokewatch-int8-") as tmp:
        candidate = Path(tmp) / output.name
        record = quantize(
            fp32_model,
            calibration,
            candidate,
            method=args.method,
            scope=args.float_scope,
            progress=progress,
        )
        int8_model = load_model(config.model, override=str(candidate), progress=False)
        fp32 = build_pipeline(config, fp32_model, [camera_id])
        int8 = build_pipeline(config, int8_model, [camera_id])
        settings = camera_settings(config.cameras[camera_id])
        folders = [args.calibration] + ([args.check] if args.check is not None else [])
        agreement = compare(
            fp32,
            int8,
            settings,
            held,
            labels=read_labels(folders, held),
            speed_runs=args.runs,
            progress=progress,
        )
        print(format_report(agreement, record))
        if args.json is not None:
            args.json.write_text(
                json.dumps({"quantization": record, **agreement.to_json()}, indent=2) + "\n"
            )
        lost = agreement.alerts_lost + agreement.sequence_alerts_lost
        if lost and not args.force:
            raise OptimizeError(
                f"int8 loses {len(lost)} alert(s) that fp32 raises "
                f"({', '.join(lost)}); nothing written. Calibrate on more "
                "frames like these (or try --method), or write it anyway with --force"
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(candidate, output)
    print(f"Wrote {output}. Use it with model: path: {output} (set the old path back to undo)")
    return 0
