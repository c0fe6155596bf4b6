"""A tiny ONNX detector whose score follows the image, so tests choose smoke or no smoke.

Input `images` [1, 3, S, S]; output `output0` [1, 5, 1]: one box centred in the input
(cx = cy = S/2, w = h = S/4, letterbox pixels) whose score is the mean of all three channels
over that centre square. A uniform grey frame of level g scores g/255; a square frame's box
normalises to (0.375, 0.375, 0.625, 0.625).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper

from detector.frames import restamped

OPSET = 17
IR_VERSION = 8  # the IR of opset 17, readable by every onnxruntime the project supports


def make_tiny_model(path: Path, size: int = 64) -> Path:
    """Write the tiny model (input size×size, size a multiple of 8) to `path`; return it."""
    if size % 8:
        raise ValueError("size must be a multiple of 8 so the centre square is exact")
    lo, hi = size // 2 - size // 8, size // 2 + size // 8
    consts = [
        helper.make_tensor("starts", TensorProto.INT64, [2], [lo, lo]),
        helper.make_tensor("ends", TensorProto.INT64, [2], [hi, hi]),
        helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]),
        helper.make_tensor(
            "box", TensorProto.FLOAT, [1, 4, 1], [size / 2, size / 2, size / 4, size / 4]
        ),
        helper.make_tensor("squeeze_axes", TensorProto.INT64, [1], [3]),
    ]
    nodes = [
        helper.make_node("Slice", ["images", "starts", "ends", "axes"], ["centre"]),
        # Opset 17 takes the axes as an attribute; [1, 1, 1, 1] is squeezed to [1, 1, 1] next.
        helper.make_node("ReduceMean", ["centre"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Squeeze", ["mean", "squeeze_axes"], ["score"]),
        helper.make_node("Concat", ["box", "score"], ["output0"], axis=1),
    ]
    return save_smoke_model(nodes, consts, "tiny_smoke", size, path)


def save_smoke_model(
    nodes: list[onnx.NodeProto],
    consts: list[onnx.TensorProto],
    name: str,
    size: int,
    path: Path,
) -> Path:
    """Save a one-class graph from `images` [1,3,size,size] to `output0` [1,5,1], with the
    metadata SmokeWatch reads (class names, input size), after onnx's full check."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, 1])],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    for key, value in (("names", "{0: 'smoke'}"), ("imgsz", f"[{size}, {size}]")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def smoke_jpeg(level: int, size: int = 256) -> bytes:
    """A uniform square grey JPEG (quality 95): the tiny model scores it level/255."""
    image = np.full((size, size, 3), level, dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise RuntimeError("OpenCV cannot encode JPEG")
    return bytes(encoded.tobytes())


_CAPTURES = itertools.count(1)
# What makes a test's "smoke" change like smoke from one capture to the next, deterministically:
# the frame cut into BLOCKS vertical bands (taken in pairs) and STRIPS horizontal strips. In each
# cell of a pair and a strip the pair's two bands get +STRIPE and -STRIPE grey levels, one way
# round or the other: a pair's mean is 0, so the tiny model's centre square (whole pairs) keeps
# its score. Which way round is the parity of the capture number's bits under the cell's mask,
# and the masks are the columns of the extended Hamming code [8, 4, 4] (8 to 15), laid so that
# every aligned block of 2 pairs by 4 strips holds all eight: between any two captures whose
# numbers differ modulo 16, at least half of such a block flips, which the nearby guard sees as
# change (a cell stays 5 by 5 pixels or more in its 160-pixel thumbnail).
STRIPE, BLOCKS, STRIPS = 12, 32, 16


def _cell_masks() -> NDArray[np.int64]:
    """[STRIPS, BLOCKS // 2] masks: 8 + (pair mod 2) + 2 * (strip mod 4)."""
    pairs, strips = np.arange(BLOCKS // 2), np.arange(STRIPS)
    return 8 + (pairs[None, :] % 2) + 2 * (strips[:, None] % 4)


def live(data: bytes) -> bytes:
    """`data` as a live camera's next capture of moving smoke: the cell pattern above for this
    capture's number (the same on every channel, so a grey frame stays grey), re-encoded (JPEG
    quality 95) with a comment holding the capture number. The same bytes sent again would be a
    frozen camera's repeat, which the pipeline does not vote on."""
    number = next(_CAPTURES)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return restamped(data, number)
    height, width = image.shape[:2]
    band = (np.arange(width) * BLOCKS) // width
    strip = (np.arange(height) * STRIPS) // height
    parity = np.array([bin(number & int(mask)).count("1") % 2 for mask in _cell_masks().flat])
    signs = np.where(parity.reshape(STRIPS, BLOCKS // 2) == 1, -STRIPE, STRIPE)
    cells = signs[strip[:, None], band[None, :] // 2]
    values = np.where(band[None, :] % 2 == 0, cells, -cells).astype(np.int16)
    moved = np.clip(image.astype(np.int16) + values[:, :, None], 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", moved, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise RuntimeError("OpenCV cannot encode JPEG")
    return restamped(bytes(encoded.tobytes()), number)
