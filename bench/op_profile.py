"""Where a model's time goes, op type by op type (onnxruntime's own profiler).

    python bench/op_profile.py ../shared/data/models/yolo11s-untrained-1024.onnx \\
        /tmp/y11s-int8.onnx [--runs 12]

Each model runs `--runs` times on one random input in a session like SmokeWatch's (all graph
optimisations, memory pattern off) with profiling on; the kernel times are summed per op type
and divided by the number of runs. Prints the run's median and the ops, largest first. The
profiler adds a little time of its own: compare models within one invocation, not with `bench`.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort


def profile(path: Path, runs: int, workdir: Path) -> tuple[float, list[tuple[str, float, int]]]:
    """The median run (ms) and (op type, ms per run, nodes) of `path`, largest first."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_mem_pattern = False
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / path.stem)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in meta.shape]
    feed = {meta.name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    spent: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    whole = []
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            spent[event["args"]["op_name"]] += event["dur"]
            count[event["args"]["op_name"]] += 1
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            whole.append(event["dur"] / 1000)
    ops = [(op, total / runs / 1000, count[op] // runs) for op, total in spent.most_common()]
    return statistics.median(whole), ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smokewatch-profile-") as scratch:
        for path in args.models:
            run_ms, ops = profile(path, args.runs, Path(scratch))
            print(f"{path.name}: run median {run_ms:.1f} ms")
            for op, ms, nodes in ops:
                print(f"  {op:<28} {ms:8.2f} ms  {nodes:4d} node(s)")


if __name__ == "__main__":
    main()
