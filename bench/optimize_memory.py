"""Peak memory and time of `smokewatch optimize` per calibration method: BENCHMARKS.md ("int8").

    python bench/optimize_memory.py --model M --calibration FRAMES [--check MORE]
        [--methods minmax percentile entropy] [--holdout 3]

Each method runs `smokewatch optimize` in a fresh process under a parent of its own, so the
peak (ru_maxrss of the children) is that run's alone; prints the peak, the wall time and the
proof's figures from its JSON report. The int8 models go to a temporary folder.
`--quantize-only` measures the quantisation alone (calibration on every frame given, no
proof): what the command needs before it loads both models to compare them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def quantize_only(model: str, frames: str, method: str, output: str) -> int:
    """The quantisation alone, in this process (the child of --quantize-only)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from detector.model import ModelRuntime
    from detector.optimize import quantize
    from detector.replay import iter_frames

    calibration = list(iter_frames(Path(frames), 0.0)[1])
    record = quantize(ModelRuntime(Path(model)), calibration, Path(output), method=method)
    print(json.dumps(record))
    return 0


def run_quantize_only(args: argparse.Namespace, method: str, folder: Path) -> str:
    """One method's quantisation alone: its table row."""
    command = [sys.executable, __file__, "--model", args.model, "--calibration",
               args.calibration, "--one", method, str(folder / f"{method}.onnx")]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *command], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    code, peak_kib = (int(value) for value in done.stdout.split()[-2:])
    return (
        f"| {method} (quantisation only) | {peak_kib / 1024:.0f} MiB | {seconds:.0f} s | "
        f"exit {code} | | |"
    )


def run(args: argparse.Namespace, method: str, folder: Path) -> str:
    """One method: its table row."""
    if args.quantize_only:
        return run_quantize_only(args, method, folder)
    report = folder / f"{method}.json"
    command = [sys.executable, "-m", "detector", "optimize", "--model", args.model,
               "--calibration", args.calibration, "--holdout", str(args.holdout),
               "--method", method, "--runs", str(args.runs), "--no-progress", "--force",
               "--accept-unproven", "-o", str(folder / f"{method}.onnx"),
               "--json", str(report)]  # fmt: skip
    if args.check:
        command += ["--check", args.check]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *command], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    code, peak_kib = (int(value) for value in done.stdout.split()[-2:])
    if code != 0:
        return f"| {method} | failed (exit {code}) | | | | |"
    data = json.loads(report.read_text())
    record = data["quantization"]
    lost = len(data["alerts_lost"]) + len(data["sequence_alerts_lost"])
    added = len(data["alerts_gained"]) + len(data["sequence_alerts_gained"])
    return (
        f"| {method} | {peak_kib / 1024:.0f} MiB | {seconds:.0f} s | "
        f"{record['minmax_tensors']} / {record['calibrated_tensors']} | "
        f"{data['median_score_diff']:.3f} / {data['max_score_diff']:.3f} | {lost} / {added} |"
    )


def main() -> int:
    """Every method in turn, one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--calibration", required=True)
    parser.add_argument("--check")
    parser.add_argument("--holdout", type=int, default=3)
    parser.add_argument("--runs", type=int, default=0, help="timed runs in the proof (0: none)")
    parser.add_argument("--methods", nargs="+", default=["minmax", "percentile", "entropy"])
    parser.add_argument("--quantize-only", action="store_true")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return quantize_only(args.model, args.calibration, *args.one)
    print(
        "| method | peak RSS | wall time | tensors on min/max / calibrated | "
        "score diff median / max | alerts lost / added |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="smokewatch-optimize-memory-") as tmp:
        for method in args.methods:
            print(run(args, method, Path(tmp)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
