"""Box geometry on numpy arrays of [x1, y1, x2, y2, ...] rows."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# Rows of the overlap matrix built at once by `nms_iou0`: bounds its memory to a few
# _NMS_CHUNK x n arrays when a frame yields thousands of candidates (measured fastest).
_NMS_CHUNK = 128


def iou_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """IoU of every box of `a` with every box of `b`, shape (len(a), len(b)).

    Only the first four columns are read; a pair whose union has no area has IoU 0.
    """
    a64 = np.asarray(a, dtype=np.float64)[:, :4]
    b64 = np.asarray(b, dtype=np.float64)[:, :4]
    low = np.maximum(a64[:, None, :2], b64[None, :, :2])
    high = np.minimum(a64[:, None, 2:4], b64[None, :, 2:4])
    inter = (high - low).clip(0, None).prod(axis=2)
    area_a = (a64[:, 2] - a64[:, 0]) * (a64[:, 3] - a64[:, 1])
    area_b = (b64[:, 2] - b64[:, 0]) * (b64[:, 3] - b64[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.zeros(inter.shape, dtype=np.float64)
    np.divide(inter, union, out=iou, where=union > 0)
    return iou


def overlap_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Whether each box of `a` overlaps each box of `b` (IoU > 0), shape (len(a), len(b)).

    IoU > 0 exactly when the intersection has a positive width and height, so no division is
    needed; boxes that only touch along an edge or a corner do not overlap.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    # Two 2-D comparisons: cheaper than building the (n, m, 2) sides when n and m are large.
    wide = np.minimum(a[:, None, 2], b[None, :, 2]) > np.maximum(a[:, None, 0], b[None, :, 0])
    tall = np.minimum(a[:, None, 3], b[None, :, 3]) > np.maximum(a[:, None, 1], b[None, :, 1])
    return np.asarray(wide & tall)


def rank_by_score(boxes: NDArray[np.floating]) -> NDArray[np.intp]:
    """Row indices by decreasing score (column 4); on equal scores the later row comes first.

    This is Pyronear's order: a stable ascending sort, read from the end.
    """
    return np.argsort(np.asarray(boxes)[:, 4], kind="stable")[::-1]


def nms_iou0_indices(boxes: NDArray[np.floating]) -> NDArray[np.intp]:
    """Indices of the boxes NMS at IoU 0 keeps, ranked as `rank_by_score` ranks them.

    A box is dropped when it overlaps (IoU > 0) any box ranked above it, as in Pyronear's
    engine, which walks from the lowest score while every higher box is still in the list.
    A box overlapped only by a box that is itself dropped is therefore dropped too: a chain
    A > B > C where only A-B and B-C overlap keeps A alone. On equal scores the later row
    ranks higher, so of two overlapping tied boxes the later one survives (Pyronear's rule).
    """
    order = rank_by_score(boxes)
    ranked = np.asarray(boxes)[order, :4]
    dropped = np.zeros(len(ranked), dtype=bool)
    for start in range(0, len(ranked), _NMS_CHUNK):
        stop = min(start + _NMS_CHUNK, len(ranked))
        overlaps = overlap_matrix(ranked[start:stop], ranked[:stop])
        # Only boxes ranked higher (earlier columns) can suppress a row.
        higher = np.arange(stop)[None, :] < np.arange(start, stop)[:, None]
        dropped[start:stop] = (overlaps & higher).any(axis=1)
    return np.asarray(order[~dropped], dtype=np.intp)


def nms_iou0(boxes: NDArray[np.floating]) -> NDArray[np.floating]:
    """The rows of `boxes` (n, >=5) that NMS at IoU 0 keeps, by decreasing score.

    See `nms_iou0_indices` for the rule and the order of ties.
    """
    return boxes[nms_iou0_indices(boxes)]
