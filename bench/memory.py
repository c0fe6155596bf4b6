"""Resident memory and speed of the model under onnxruntime's memory options.

    python bench/memory.py --model M [--runs 6]

Each setting runs in a fresh process (memory is not given back to the system), with a random
input tensor; prints RSS after the runs, the process's peak RSS and the median run time.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

SETTINGS = ((True, True), (True, False), (False, True), (False, False))


def measure(model: str, arena: bool, pattern: bool, runs: int) -> str:
    """One setting, in this process."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = arena
    options.enable_mem_pattern = pattern
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    shape = [1, 3, *session.get_inputs()[0].shape[2:]]
    tensor = np.random.default_rng(0).random(shape, dtype=np.float32)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {session.get_inputs()[0].name: tensor})
        times.append((time.perf_counter() - start) * 1000)
    with open("/proc/self/status", encoding="ascii") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (
        f"{'on' if arena else 'off':>5} {'on' if pattern else 'off':>7} {rss / 1024:9.0f} "
        f"{peak / 1024:9.0f} {statistics.median(times):9.0f}"
    )


def main() -> int:
    """Run every setting in its own process and print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(measure(args.model, args.one[0] == "1", args.one[1] == "1", args.runs))
        return 0
    print("arena pattern  RSS MiB  peak MiB  median ms")
    for arena, pattern in SETTINGS:
        flags = ["1" if arena else "0", "1" if pattern else "0"]
        command = [
            sys.executable,
            __file__,
            "--model",
            args.model,
            "--runs",
            str(args.runs),
            "--one",
            *flags,
        ]
        print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
