"""onnxruntime and OpenVINO on the same fp32 and int8 (QDQ) ONNX models, interleaved.

OpenVINO is not a SmokeWatch dependency: run this in a venv of its own,

    python3 -m venv /tmp/ov && /tmp/ov/bin/pip install openvino onnxruntime numpy
    /tmp/ov/bin/python bench/openvino_vs_ort.py FP32.onnx INT8.onnx [RUNS]

Random input of the model's size: for speed, and for how far each runtime's output drifts from
onnxruntime fp32 (OpenVINO's CPU plugin may run "fp32" models in bf16).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import onnxruntime as ort
import openvino as ov  # type: ignore[import-not-found]


def main() -> int:
    """Time every (runtime, model) pair on the same input, in rotation."""
    fp32, int8 = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    core = ov.Core()
    print("OpenVINO CPU inference precision:", core.get_property("CPU", "INFERENCE_PRECISION_HINT"))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    runners: dict[str, Callable[[], Any]] = {}
    x: np.ndarray | None = None
    for tag, path in (("fp32", fp32), ("int8", int8)):
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        shape = [1, *session.get_inputs()[0].shape[1:]]
        if x is None:
            x = np.random.default_rng(0).random(shape, dtype=np.float32)
        runners[f"ort_{tag}"] = partial(session.run, None, {session.get_inputs()[0].name: x})
        request = core.compile_model(path, "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        runners[f"ov_{tag}"] = partial(request.create_infer_request().infer, {0: x})
    # Both runtimes index their results by output position.
    outputs = {name: np.asarray(run()[0]) for name, run in runners.items()}
    reference = outputs["ort_fp32"]
    for name, out in outputs.items():
        scores = np.abs(out[0, 4:] - reference[0, 4:]).max()
        boxes = np.abs(out[0, :4] - reference[0, :4]).max()
        print(f"{name}: max |diff| vs ort_fp32: scores {scores:.5f}, boxes {boxes:.2f} px")
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(runs):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            start = time.perf_counter()
            runners[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    print({name: round(statistics.median(values), 1) for name, values in times.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
