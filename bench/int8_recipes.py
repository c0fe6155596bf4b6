"""int8 recipes and onnxruntime session options on one model, bare `session.run`, one process.

    python bench/int8_recipes.py --model ../shared/data/models/yolo11s-untrained-1024.onnx \
        [--frames ../shared/data/images/dfire/images] [--cache /tmp/smokewatch-recipes] [--runs 12]

Quantises the model (minmax calibration on up to 4 frames, the head in float: optimize's
defaults apart from the method, which does not change the speed) as QDQ per-channel (optimize's
default), QDQ per-tensor and QOperator per-channel, then times a bare `session.run` of each on
the same letterboxed frame, plus fp32, and the default int8 model under other session options
(spinning off, sequential vs parallel execution, memory arena off, IO binding). The sessions'
runs are interleaved, the order rotated every round; medians (min–max) and each one's ratio to
fp32's median. Quantised models are cached in --cache.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import onnxruntime as ort  # noqa: E402

from detector.frames import letterbox_into  # noqa: E402
from detector.model import ModelRuntime  # noqa: E402
from detector.optimize import quantize  # noqa: E402
from detector.pipeline import Pipeline  # noqa: E402
from detector.replay import iter_frames  # noqa: E402

RECIPES = {
    "qdq-per-channel": {"per_channel": True, "quant_format": "QDQ"},
    "qdq-per-tensor": {"per_channel": False, "quant_format": "QDQ"},
    "qoperator-per-channel": {"per_channel": True, "quant_format": "QOperator"},
}
OPTIONS: dict[str, dict[str, Any]] = {
    "default options": {},
    "spinning off": {"config": {"session.intra_op.allow_spinning": "0"}},
    "parallel execution": {"mode": ort.ExecutionMode.ORT_PARALLEL},
    "arena off": {"arena": False},
    "basic graph optimisation": {"level": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC},
}


def session(path: Path, options: dict[str, Any]) -> ort.InferenceSession:
    """A CPU session as SmokeWatch opens it (memory pattern off), with `options` on top."""
    so = ort.SessionOptions()
    so.graph_optimization_level = options.get("level", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    so.enable_mem_pattern = False
    so.enable_cpu_mem_arena = options.get("arena", True)
    so.execution_mode = options.get("mode", ort.ExecutionMode.ORT_SEQUENTIAL)
    for key, value in options.get("config", {}).items():
        so.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--frames", type=Path, default=Path("../shared/data/images/dfire/images"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/smokewatch-recipes"))
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    fp32 = ModelRuntime(args.model, smoke_classes=None)
    frames = list(iter_frames(args.frames, 0.0)[1])
    tensor = fp32.new_input()
    letterbox_into(Pipeline(fp32).decode(frames[0].data)[0], tensor, bgr=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    candidates: dict[str, tuple[ort.InferenceSession, Any]] = {
        "fp32": (session(args.model, {}), None)
    }
    for name, recipe in RECIPES.items():
        path = args.cache / f"{args.model.stem}-{name}.onnx"
        if not path.exists():
            start = time.perf_counter()
            quantize(fp32, frames[:4], path, method="minmax", progress=False, **recipe)
            print(f"quantised {name} in {time.perf_counter() - start:.0f} s", flush=True)
        candidates[f"int8 {name}"] = (session(path, {}), None)
    default = args.cache / f"{args.model.stem}-qdq-per-channel.onnx"
    for name, options in list(OPTIONS.items())[1:]:
        candidates[f"int8 qdq-per-channel, {name}"] = (session(default, options), None)
    binding = session(default, {})
    io = binding.io_binding()
    io.bind_cpu_input(binding.get_inputs()[0].name, tensor)
    io.bind_output(binding.get_outputs()[0].name)
    candidates["int8 qdq-per-channel, IO binding"] = (binding, io)
    feed = {fp32.input_name: tensor}
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for _warm in range(2):
        for sess, io in candidates.values():
            sess.run_with_iobinding(io) if io is not None else sess.run(None, feed)
    for round_index in range(args.runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            sess, io = candidates[name]
            start = time.perf_counter()
            if io is not None:
                sess.run_with_iobinding(io)
            else:
                sess.run(None, feed)
            times[name].append((time.perf_counter() - start) * 1000)
    base = statistics.median(times["fp32"])
    print(f"{args.model.name}, onnxruntime {ort.__version__}, {args.runs} rotated rounds")
    print("| session | bare run, median (min–max) | ÷ fp32 |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"| {name} | {median:.1f} ms ({min(values):.1f}–{max(values):.1f}) | "
            f"{median / base:.3f} |"
        )


if __name__ == "__main__":
    main()
