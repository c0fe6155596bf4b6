"""Serve ONNX detectors from a real Triton Inference Server (PyPI's nvidia-pytriton) for tests.

Run with the Python of the Triton venv (scripts/test.sh builds it): pytriton pins its own
numpy and protobuf, so it stays out of the detector's venv. Each model runs through onnxruntime
inside pytriton's Python backend, batched by Triton's dynamic batcher, and its config carries
the class names as the `names` parameter, as a Triton ONNX deployment's config.pbtxt would.

    python triton_server.py --http-port P --grpc-port Q NAME=model.onnx [NAME=model.onnx ...]

Prints "READY" once the server answers. Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.models.model import Model
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

MAX_BATCH = 8


def _serve_function(session: ort.InferenceSession) -> Any:
    """A batched inference callable: one onnxruntime run per frame of Triton's batch."""
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    @batch  # type: ignore[misc]
    def infer(images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = [
            session.run([output_name], {input_name: frame[np.newaxis]})[0][0] for frame in images
        ]
        return {"output0": np.stack(outputs).astype(np.float32)}

    return infer


_CLASS_NAMES: dict[str, str] = {}


def _add_class_names() -> None:
    """Put each model's class names in its generated config.pbtxt (`parameters`)."""
    original = Model._get_triton_model_config

    def with_names(self: Model) -> Any:
        config = original(self)
        if self.model_name in _CLASS_NAMES:
            config.backend_parameters["names"] = _CLASS_NAMES[self.model_name]
        return config

    Model._get_triton_model_config = with_names  # type: ignore[method-assign]


def main() -> int:
    """Bind every NAME=model.onnx and serve until stopped."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, default=0)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    config = TritonConfig(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        allow_metrics=args.metrics_port > 0,
        metrics_port=args.metrics_port or None,
        log_verbose=0,
        # A stop waits this long for open connections (the detector's HTTP client keeps one
        # alive): tritonserver's default, 30 s, is all a test stopping the server would wait.
        exit_timeout_secs=1,
    )
    _add_class_names()
    # pytriton restricts the repository index by default; a plain tritonserver serves it,
    # and the detector lists the served models when a model name is wrong.
    security = TritonSecurityConfig(
        restricted_endpoints=["shared-memory", "statistics", "trace", "logging"]
    )
    triton = Triton(config=config, security_config=security)
    triton.__enter__()
    for spec in args.models:
        name, _, path = spec.partition("=")
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        shape = session.get_inputs()[0].shape
        out_shape = session.get_outputs()[0].shape
        names = session.get_modelmeta().custom_metadata_map.get("names", "")
        if names:
            _CLASS_NAMES[name] = names
        triton.bind(
            model_name=name,
            infer_func=_serve_function(session),
            inputs=[Tensor(name="images", dtype=np.float32, shape=tuple(shape[1:]))],
            outputs=[Tensor(name="output0", dtype=np.float32, shape=tuple(out_shape[1:]))],
            config=ModelConfig(max_batch_size=MAX_BATCH, batcher=DynamicBatcher()),
            strict=True,
        )
        print(f"bound {name} from {Path(path).name}", flush=True)

    def stop(*_: Any) -> None:
        triton.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    triton.run()
    print("READY", flush=True)
    signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
