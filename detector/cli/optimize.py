"""`smokewatch optimize` (the quantisation and the comparison: detector/optimize.py)."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The library's choices: this module is imported only for `smokewatch optimize` and --help,
# never for `smokewatch bridge` (detector.optimize loads onnxruntime).
from detector.optimize import CALIBRATION_METHODS, FLOAT_SCOPES

if TYPE_CHECKING:
    from detector.config import Config
    from detector.eval_dataset import Sequence as EvalSequence
    from detector.replay import ReplayFrame


def register(subparsers: Any) -> None:
    """Add `optimize` to the command line."""
    parser = subparsers.add_parser(
        "optimize",
        help="make an int8 copy of the model and prove it sees the same smoke",
        description="Quantise the model to int8 with calibration on your own frames "
        "(letterboxed as the pipeline does, one at a time), keep the output head in float, "
        "and compare int8 with fp32 on frames or sequences held back from calibration. "
        "Refuses (exit 1) when int8 loses or adds an alert, unless --force, and when the "
        "float model finds nothing on the held-back frames, unless --accept-unproven.",
    )
    parser.add_argument("-c", "--config", type=Path, help="use this configuration's model")
    parser.add_argument("--model", help="model file or repo id (default: the configured one)")
    parser.add_argument(
        "--camera", help="camera whose threshold, vote and width cap judge the result"
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        help="your cameras' frames: a folder of frames, a video, or a folder of labelled "
        "sequences as `smokewatch eval` reads them (default with -c: the false_alarms "
        "folder, the frames the detector kept of dismissed alerts)",
    )
    parser.add_argument(
        "--check",
        type=Path,
        help="more frames or labelled sequences to compare on, never used to calibrate "
        "(a frame that is also a calibration frame is left out of the check)",
    )
    parser.add_argument(
        "--holdout",
        type=int,
        default=3,
        help="hold back every Nth sequence (folder of sequences) or frame for the comparison "
        "(default 3; 0: none)",
    )
    parser.add_argument(
        "--max-calibration",
        type=int,
        default=64,
        help="calibrate on at most this many frames, spread evenly (default 64; 0: all)",
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
        "--force", action="store_true", help="write the int8 model even if it loses or adds alerts"
    )
    parser.add_argument(
        "--accept-unproven",
        action="store_true",
        help="write the int8 model even when the check compared nothing (the float model "
        "finds no box above the threshold on any held-back frame: random weights, or no "
        "smoke in the frames)",
    )
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=optimize_main)


def _inputs(
    args: argparse.Namespace, config: Config
) -> tuple[list[ReplayFrame], list[ReplayFrame], list[EvalSequence], list[str]]:
    """(calibration frames, held-back frames, held-back sequences, what was left out and why)."""
    from detector.eval_dataset import load_dataset
    from detector.optimize import OptimizeError
    from detector.optimize_split import (
        evenly,
        held_back_only,
        is_sequences,
        sequences_held_back,
        split_frames,
        split_sequences,
    )
    from detector.replay import iter_frames

    source = args.calibration
    if source is None:
        if args.config is None:
            raise OptimizeError("--calibration FRAMES is needed (or -c CONFIG: its false_alarms)")
        source = Path(config.false_alarms.dir)
    notes: list[str] = []
    sequences: list[EvalSequence] = []
    if is_sequences(source):
        calibrating, sequences = split_sequences(load_dataset(source), args.holdout)
        frames = [frame for sequence in calibrating for frame in sequence.read()]
        held: list[ReplayFrame] = []
    else:
        frames, held = split_frames(iter_frames(source, 0.0)[1], args.holdout)
    calibration = evenly(frames, args.max_calibration)
    if len(calibration) < len(frames):
        notes.append(f"{len(calibration)} of {len(frames)} frames calibrate (--max-calibration)")
    if args.check is not None and is_sequences(args.check):
        sequences += load_dataset(args.check)
    elif args.check is not None:
        held += list(iter_frames(args.check, 0.0)[1])
    # Every frame left out of calibration by --max-calibration is still not a held-back one:
    # the check is on what the calibration never saw, judged by the bytes.
    held, calibrated, repeats = held_back_only(held, frames)
    if calibrated:
        notes.append(f"{calibrated} frame(s) to check on are calibration frames: not checked")
    if repeats:
        notes.append(f"{repeats} frame(s) to check on are repeats of another: checked once")
    sequences, overlapping = sequences_held_back(sequences, frames)
    if overlapping:
        notes.append(f"{overlapping} sequence(s) share frames with calibration: not checked")
    if not held and not sequences:
        raise OptimizeError(
            "no frame left to check the result on: use --holdout N or --check FRAMES"
        )
    return calibration, held, sequences, notes


def optimize_main(args: argparse.Namespace) -> int:
    """`smokewatch optimize`: 0, or an OptimizeError when int8 loses or adds an alert (unless
    --force) or when the check compared nothing (unless --accept-unproven)."""
    from detector.assembly import build_pipeline, camera_settings, load_model
    from detector.config import load_config, validate
    from detector.optimize import OptimizeError, local_model, quantize
    from detector.optimize_proof import (
        compare,
        compare_sequences,
        format_report,
        read_labels,
        time_models,
    )

    if args.config is not None:
        config = load_config(args.config, offline=True)
    else:
        config = validate({"cameras": {"optimize": {}}})
    camera_id = args.camera or next(iter(config.cameras))
    if camera_id not in config.cameras:
        raise OptimizeError(f"--camera {camera_id}: no such camera in the configuration")
    progress = not args.no_progress
    calibration, held, sequences, notes = _inputs(args, config)
    fp32_model = local_model(load_model(config.model, override=args.model, progress=progress))
    output = args.output or fp32_model.path.with_name(f"{fp32_model.path.stem}-int8.onnx")
    if output.resolve() == fp32_model.path.resolve():
        raise OptimizeError("--output must differ from the model itself")
    print(
        f"Quantising {fp32_model.name}: {len(calibration)} calibration frame(s); held back, "
        f"never calibrated on: {len(held)} frame(s), {len(sequences)} sequence(s)"
    )
    for note in notes:
        print(f"  {note}")
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
        folders = [p for p in (args.calibration, args.check) if p is not None]
        agreement = compare(
            fp32,
            int8,
            settings,
            held,
            labels=read_labels(folders, held),
            speed_runs=args.runs,
            progress=progress,
        )
        compare_sequences(
            agreement, config, (fp32_model, int8_model), camera_id, sequences, progress=progress
        )
        if not agreement.fp32_ms and sequences and args.runs > 0:
            first = next(sequences[0].read())
            agreement.fp32_ms, agreement.int8_ms = time_models(
                fp32, int8, first.data, args.runs, progress=progress
            )
        proven = agreement.fp32_boxes > 0
        record["held_back_frames"] = len(held)
        record["held_back_sequences"] = len(sequences)
        print(format_report(agreement, record))
        if args.json is not None:
            report = {"quantization": record, "proven": proven, **agreement.to_json()}
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        if not proven and not args.accept_unproven:
            raise OptimizeError(
                f"the check compared nothing: the float model finds no box above "
                f"{settings.threshold:g} on any of the {agreement.frames} held-back frame(s) "
                "(random weights, or frames without smoke), so nothing shows that int8 keeps "
                "its alerts; nothing written. Check on frames with smoke (--check), or write "
                "it anyway with --accept-unproven"
            )
        differences = agreement.differences
        if differences and not args.force:
            raise OptimizeError(
                f"int8 and fp32 differ on {len(differences)} alert(s) "
                f"({'; '.join(differences)}); nothing written. Calibrate on more "
                "frames like these (or try --method), or write it anyway with --force"
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(candidate, output)
    if not proven:
        print("Unproven: the check compared nothing (--accept-unproven)")
    print(f"Wrote {output}. Use it with model: path: {output} (set the old path back to undo)")
    return 0
