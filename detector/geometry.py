"""Box geometry on numpy arrays of [x1, y1, x2, y2, ...] rows."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]


def iou_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """IoU of every box of `a` with every box of `b`, shape (len(a), len(b))."""
    a64 = np.asarray(a, dtype=np.float64)[:, :4]
    b64 = np.asarray(b, dtype=np.float64)[:, :4]
    if len(a64) == 0 or len(b64) == 0:
        return np.zeros((len(a64), len(b64)), dtype=np.float64)
    inter_w = np.minimum(a64[:, None, 2], b64[None, :, 2]) - np.maximum(
        a64[:, None, 0], b64[None, :, 0]
    )
    inter_h = np.minimum(a64[:, None, 3], b64[None, :, 3]) - np.maximum(
        a64[:, None, 1], b64[None, :, 1]
    )
    inter = np.clip(inter_w, 0, None) * np.clip(inter_h, 0, None)
    area_a = (a64[:, 2] - a64[:, 0]) * (a64[:, 3] - a64[:, 1])
    area_b = (b64[:, 2] - b64[:, 0]) * (b64[:, 3] - b64[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.asarray(iou, dtype=np.float64)


def nms_iou0(boxes: NDArray[np.floating]) -> NDArray[np.floating]:
    """Non-maximum suppression with IoU threshold 0.

    Boxes are taken by decreasing score (column 4); a box is dropped when it overlaps
    (IoU > 0) any box already kept. Touching edges do not overlap.
    """
    if len(boxes) == 0:
        return boxes
    order = np.argsort(-boxes[:, 4], kind="stable")
    ordered = boxes[order]
    overlaps = iou_matrix(ordered, ordered) > 0
    keep: list[int] = []
    for index in range(len(ordered)):
        if not any(overlaps[index, kept] for kept in keep):
            keep.append(index)
    return ordered[keep]
