"""The ONNX model runtime: any YOLOv8/YOLO11-style detector with output [1, 4+nc, N]."""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from detector.errors import ModelError

_LOGGER = logging.getLogger(__name__)


def parse_class_names(text: str | None, count: int) -> list[str]:
    """Class names from the ONNX `names` metadata ("{0: 'smoke', 1: 'fire'}"), else class_<i>."""
    names = [f"class_{index}" for index in range(count)]
    if not text:
        return names
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        _LOGGER.warning("Model metadata 'names' is unreadable: %s", text[:200])
        return names
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            if isinstance(key, int) and 0 <= key < count:
                names[key] = str(value)
    elif isinstance(parsed, list | tuple):
        for index, value in enumerate(parsed[:count]):
            names[index] = str(value)
    return names


class ModelRuntime:
    """An onnxruntime session with the input size and class names read from the model."""

    def __init__(
        self,
        path: str | Path,
        *,
        smoke_classes: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
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
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises several unrelated types
            raise ModelError(f"onnxruntime cannot load {self.path}: {err}") from err

        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelError(
                f"{self.path.name} is not a detector: expected one input and an output"
            )
        shape = inputs[0].shape
        if (
            len(shape) != 4
            or shape[1] != 3
            or not all(isinstance(v, int) and v > 0 for v in shape[2:])
        ):
            raise ModelError(
                f"{self.path.name}: input {inputs[0].name} has shape {shape}; "
                "expected [1, 3, H, W] with a fixed H and W"
            )
        out_shape = outputs[0].shape
        if len(out_shape) != 3 or not isinstance(out_shape[1], int) or out_shape[1] < 5:
            raise ModelError(
                f"{self.path.name}: output {outputs[0].name} has shape {out_shape}; "
                "expected [1, 4+classes, N] as YOLOv8/YOLO11 detectors give"
            )
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.input_h = int(shape[2])
        self.input_w = int(shape[3])
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.class_names = parse_class_names(metadata.get("names"), int(out_shape[1]) - 4)
        self.name = self.path.stem if self.path.stem != "best" else self.path.parent.name
        self.smoke_class_ids = self._choose_classes(smoke_classes)

    def _choose_classes(self, smoke_classes: Sequence[str] | None) -> list[int]:
        """Indices of the classes that count as smoke."""
        if not smoke_classes:
            if "smoke" in self.class_names:
                return [self.class_names.index("smoke")]
            if len(self.class_names) == 1:
                return [0]
            raise ModelError(
                f"{self.path.name} has classes {self.class_names} and none is 'smoke': "
                "set model: smoke_classes: in the config"
            )
        unknown = [name for name in smoke_classes if name not in self.class_names]
        if unknown:
            if len(self.class_names) == 1 and list(smoke_classes) == ["smoke"]:
                # Single-class exports often name their class "0": it is the smoke class.
                return [0]
            raise ModelError(
                f"smoke class(es) {', '.join(unknown)} not in the model; "
                f"it has {', '.join(self.class_names)}"
            )
        return [self.class_names.index(name) for name in smoke_classes]

    def new_input(self) -> NDArray[np.float32]:
        """A zeroed input tensor [1, 3, H, W] to letterbox frames into."""
        return np.zeros((1, 3, self.input_h, self.input_w), dtype=np.float32)

    def run(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Run the model; returns the output without its batch axis, [4+nc, N]."""
        output = self.session.run([self.output_name], {self.input_name: tensor})[0]
        return np.asarray(output[0], dtype=np.float32)
