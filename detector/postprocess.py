"""Raw model output → smoke boxes normalised to the frame (DESIGN.md §5, post-processing)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from detector.frames import Letterbox
from detector.geometry import nms_iou0


def postprocess(
    output: NDArray[np.float32],
    letterbox: Letterbox,
    class_ids: Sequence[int],
    *,
    conf_thresh: float = 0.05,
    max_bbox_width: float | None = None,
) -> NDArray[np.float32]:
    """Turn a YOLO output [4+nc, N] into (n, 5) float32 [x1, y1, x2, y2, conf] boxes.

    A candidate's score is the best of the `class_ids` rows; candidates scoring more than
    `conf_thresh` go through NMS at IoU 0 in letterbox pixels, are un-padded and normalised
    to the decoded frame, clipped to [0, 1], and, when `max_bbox_width` is given, kept only
    when strictly narrower than it (height is not limited; the pipeline applies each camera's
    own cap instead). Sorted by decreasing confidence, ties in reverse candidate order.
    """
    if not class_ids:
        raise ValueError("class_ids must name at least one class")
    scores = output[[4 + int(i) for i in class_ids]].max(axis=0)
    # The model emits thousands of candidates; only the few above the threshold are converted.
    picked = np.flatnonzero(scores > conf_thresh)
    cx, cy, w, h = output[:4, picked]
    # NMS runs on the model's float32 (twice as fast as float64 on thousands of candidates);
    # the few survivors are un-padded in float64.
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, scores[picked]], axis=1)
    boxes = nms_iou0(corners).astype(np.float64)
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - letterbox.pad_x) / letterbox.scale / letterbox.width
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - letterbox.pad_y) / letterbox.scale / letterbox.height
    np.clip(boxes[:, :4], 0.0, 1.0, out=boxes[:, :4])
    if max_bbox_width is not None:
        boxes = boxes[narrower_than(boxes, max_bbox_width)]
    return np.ascontiguousarray(boxes, dtype=np.float32)


def narrower_than(boxes: NDArray[np.floating], max_width: float) -> NDArray[np.bool_]:
    """Which boxes are strictly narrower than `max_width` (Pyronear keeps `width < max`)."""
    return np.asarray(boxes[:, 2] - boxes[:, 0] < max_width)


def best_score(output: NDArray[np.float32], class_ids: Sequence[int]) -> float:
    """The best smoke score of any candidate of a raw output (0 for an empty output)."""
    if output.shape[1] == 0:
        return 0.0
    return float(output[[4 + int(i) for i in class_ids]].max())
