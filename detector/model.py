"""The model backends: any YOLOv8/YOLO11-style detector with output [1, 4+nc, N].

`ModelRuntime` runs the ONNX file in this process with onnxruntime (execution providers in the
configured order, CPU last); `TritonModel` (model_triton.py) sends the letterboxed tensor to an
inference server. Everything around the model (decode, letterbox, post-processing, masks, vote)
stays in the pipeline, identical for both: `ModelBackend` is what the pipeline sees.
"""

from __future__ import annotations

import ast
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from detector.errors import ModelError

_LOGGER = logging.getLogger(__name__)

SMOKE = "smoke"
CPU_PROVIDER = "CPUExecutionProvider"
_CACHE_SEPARATOR = "__"  # model_fetch keeps "owner/repo" in "<cache>/owner__repo/best.onnx"
_MAX_NAMES_LENGTH = 100_000  # literal_eval of a huge metadata string could exhaust the stack


def parse_class_names(text: str | None, count: int) -> list[str]:
    """Class names from the ONNX `names` metadata ("{0: 'smoke', 1: 'fire'}"), else class_<i>.

    The metadata is parsed as a Python literal (never evaluated as code); a dict keyed by
    index (int or digit string) or a list is accepted, anything else falls back to class_<i>.
    """
    names = [f"class_{index}" for index in range(count)]
    if not text:
        return names
    try:
        if len(text) > _MAX_NAMES_LENGTH:
            raise ValueError("too long")
        parsed = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        _LOGGER.warning("Model metadata 'names' is unreadable: %s", text[:200])
        return names
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            index = int(key) if isinstance(key, str) and key.isdigit() else key
            if isinstance(index, int) and 0 <= index < count:
                names[index] = str(value)
    elif isinstance(parsed, list | tuple):
        for index, value in enumerate(parsed[:count]):
            names[index] = str(value)
    else:
        _LOGGER.warning("Model metadata 'names' is neither a dict nor a list: %s", text[:200])
    return names


def model_name(path: Path) -> str:
    """A readable name: the file's stem, or the repo id of a downloaded `best.onnx`."""
    if path.stem != "best":
        return path.stem
    return path.parent.name.replace(_CACHE_SEPARATOR, "/", 1)


class ModelBackend:
    """What the pipeline needs of a model, whichever runs it.

    Subclasses set `name`, `input_h`, `input_w`, `class_names` and `smoke_class_ids` and
    implement `_infer`. Not thread-safe by design: the pipeline calls `run` from one worker.
    """

    backend = "base"
    name: str
    input_h: int
    input_w: int
    class_names: list[str]
    smoke_class_ids: list[int]
    last_run_ms: float = 0.0

    def _choose_classes(self, smoke_classes: Sequence[str] | None) -> list[int]:
        """Indices of the classes that count as smoke."""
        available = ", ".join(self.class_names)
        if not smoke_classes:
            if SMOKE in self.class_names:
                return [self.class_names.index(SMOKE)]
            if len(self.class_names) == 1:
                return [0]
            raise ModelError(
                f"{self.name} has classes {available} and none is named '{SMOKE}': "
                "list the ones that mean smoke in model: smoke_classes: in the config"
            )
        unknown = [name for name in smoke_classes if name not in self.class_names]
        if unknown:
            if len(self.class_names) == 1 and list(smoke_classes) == [SMOKE]:
                # A single-class export may name its class "0" (Pyronear's do): it is smoke.
                return [0]
            raise ModelError(
                f"smoke class(es) {', '.join(unknown)} not in the model; it has {available}"
            )
        return sorted({self.class_names.index(name) for name in smoke_classes})

    def new_input(self) -> NDArray[np.float32]:
        """A zeroed input tensor [1, 3, H, W] to letterbox frames into."""
        return np.zeros((1, 3, self.input_h, self.input_w), dtype=np.float32)

    def _infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        raise NotImplementedError

    def run(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Run the model on [1, 3, H, W]; returns the output without its batch axis, [4+nc, N].

        `last_run_ms` holds the time the call took. A remote backend raises InferenceError
        when the server cannot answer.
        """
        start = time.perf_counter()
        output = self._infer(tensor)
        self.last_run_ms = (time.perf_counter() - start) * 1000
        return output

    def warmup(self, runs: int = 1) -> float:
        """Run `runs` blank frames (the first run allocates); returns the last run's ms."""
        tensor = self.new_input()
        for _ in range(max(1, runs)):
            self.run(tensor)
        return self.last_run_ms

    def describe(self) -> dict[str, Any]:
        """What runs the model, for `<prefix>/info` and `bench`."""
        return {"backend": self.backend}

    def health(self) -> dict[str, Any]:
        """The backend's health, for `<prefix>/stats`."""
        return {"backend": self.backend, "healthy": True}

    def close(self) -> None:
        """Release connections (nothing to do for a local model)."""


class ModelRuntime(ModelBackend):
    """An onnxruntime session with the input size and class names read from the model.

    `providers` are onnxruntime execution providers in order of preference (e.g.
    CUDAExecutionProvider, OpenVINOExecutionProvider); those this onnxruntime build lacks are
    skipped with a warning, and the CPU provider always comes last as the fallback.
    """

    backend = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        *,
        smoke_classes: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        memory_pattern: bool = False,
        memory_arena: bool = True,
        providers: Sequence[str] = (CPU_PROVIDER,),
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads > 0:
            options.intra_op_num_threads = intra_op_threads
        if inter_op_threads > 0:
            options.inter_op_num_threads = inter_op_threads
        options.enable_mem_pattern = memory_pattern
        options.enable_cpu_mem_arena = memory_arena
        self.requested_providers = list(providers)
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=choose_providers(providers)
            )
        except Exception as err:  # onnxruntime raises several unrelated types
            raise ModelError(f"onnxruntime cannot load {self.path}: {err}") from err
        # onnxruntime silently drops a provider that fails to initialise (no GPU, no driver).
        self.providers = [str(p) for p in self.session.get_providers()]
        for provider in self.requested_providers:
            if provider not in self.providers and provider in ort.get_available_providers():
                _LOGGER.warning(
                    "onnxruntime could not start %s (see its log above); running on %s",
                    provider,
                    ", ".join(self.providers),
                )

        self.name = model_name(self.path)
        self.input_name, self.input_h, self.input_w = self._check_input()
        self.output_name, classes = self._check_output()
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.class_names = parse_class_names(metadata.get("names"), classes)
        self.smoke_class_ids = self._choose_classes(smoke_classes)
        self.last_run_ms = 0.0

    def _check_input(self) -> tuple[str, int, int]:
        """The input's name, H and W; it must be one float [1, 3, H, W] with a fixed H and W."""
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"{self.path.name} is not a detector: it has {len(inputs)} inputs, expected one"
            )
        shape = inputs[0].shape
        # A symbolic batch axis ("batch") is fine: frames are always fed one at a time.
        if (
            len(shape) != 4
            or (isinstance(shape[0], int) and shape[0] != 1)
            or shape[1] != 3
            or not all(isinstance(v, int) and v > 0 for v in shape[2:])
        ):
            raise ModelError(
                f"{self.path.name}: input {inputs[0].name} has shape {shape}; "
                "expected [1, 3, H, W] with a fixed H and W (export with dynamic=False)"
            )
        if inputs[0].type != "tensor(float)":
            raise ModelError(
                f"{self.path.name}: input {inputs[0].name} is {inputs[0].type}; expected "
                "tensor(float) (export without half=True)"
            )
        return str(inputs[0].name), int(shape[2]), int(shape[3])

    def _check_output(self) -> tuple[str, int]:
        """The first output's name and class count; it must be [1, 4+nc, N] with N > 4+nc."""
        outputs = self.session.get_outputs()
        if not outputs:
            raise ModelError(f"{self.path.name} is not a detector: it has no output")
        shape = outputs[0].shape
        rows = shape[1] if len(shape) == 3 else None
        boxes = shape[2] if len(shape) == 3 else None
        if (
            not isinstance(rows, int)
            or rows < 5
            # [1, N, 6] (end-to-end/NMS exports) or [1, N, 4+nc]: boxes along the wrong axis
            or (isinstance(boxes, int) and 6 <= boxes < rows)
            or outputs[0].type != "tensor(float)"
        ):
            raise ModelError(
                f"{self.path.name}: output {outputs[0].name} is {outputs[0].type} {shape}; "
                "expected float [1, 4+classes, N] as YOLOv8/YOLO11 detectors exported with "
                "nms=False give"
            )
        return str(outputs[0].name), rows - 4

    def _infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        # A view of onnxruntime's output (no copy).
        output = self.session.run([self.output_name], {self.input_name: tensor})[0]
        return np.asarray(output[0], dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """The backend and the execution providers actually in use, in order."""
        return {"backend": self.backend, "providers": self.providers}

    def health(self) -> dict[str, Any]:
        """A local model is healthy once loaded."""
        return {"backend": self.backend, "healthy": True, "providers": self.providers}


def choose_providers(requested: Sequence[str]) -> list[str]:
    """The requested execution providers this onnxruntime build has, in order, CPU last."""
    available = ort.get_available_providers()
    chosen: list[str] = []
    for provider in requested:
        if provider == CPU_PROVIDER or provider in chosen:
            continue
        if provider in available:
            chosen.append(provider)
        else:
            _LOGGER.warning(
                "onnxruntime execution provider %s is not in this build (it has %s): skipped; "
                "install the onnxruntime package that provides it (e.g. onnxruntime-gpu)",
                provider,
                ", ".join(available),
            )
    return [*chosen, CPU_PROVIDER]
