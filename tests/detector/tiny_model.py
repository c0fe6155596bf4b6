"""A tiny ONNX detector whose score follows the image, so tests choose smoke or no smoke.

Input `images` [1, 3, S, S]; output `output0` [1, 5, 1]: one box centred in the input
(cx = cy = S/2, w = h = S/4, letterbox pixels) whose score is the mean of all three channels
over that centre square. A uniform grey frame of level g scores g/255; a square frame's box
normalises to (0.375, 0.375, 0.625, 0.625).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper


def make_tiny_model(path: Path, size: int = 64) -> Path:
    """Write the tiny model to `path` and return it."""
    quarter = size // 4
    lo, hi = size // 2 - size // 8, size // 2 + size // 8
    consts = [
        helper.make_tensor("starts", TensorProto.INT64, [2], [lo, lo]),
        helper.make_tensor("ends", TensorProto.INT64, [2], [hi, hi]),
        helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]),
        helper.make_tensor("reduce_axes", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor(
            "box", TensorProto.FLOAT, [1, 4, 1], [size / 2, size / 2, quarter, quarter]
        ),
        helper.make_tensor("score_shape", TensorProto.INT64, [3], [1, 1, 1]),
    ]
    nodes = [
        helper.make_node("Slice", ["images", "starts", "ends", "axes"], ["centre"]),
        helper.make_node("ReduceMean", ["centre", "reduce_axes"], ["mean"], keepdims=1),
        helper.make_node("Reshape", ["mean", "score_shape"], ["score"]),
        helper.make_node("Concat", ["box", "score"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_smoke",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, 1])],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in (("names", "{0: 'smoke'}"), ("imgsz", f"[{size}, {size}]")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def smoke_jpeg(level: int, size: int = 256) -> bytes:
    """A uniform square grey JPEG: the tiny model scores it level/255."""
    image = np.full((size, size, 3), level, dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return bytes(encoded.tobytes())
