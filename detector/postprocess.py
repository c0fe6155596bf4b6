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
    max_bbox_width: float = 0.4,
) -> NDArray[np.float32]:
    """Turn a YOLO output [4+nc, N] into (n, 5) [x1, y1, x2, y2, conf] boxes.

    Scores above `conf_thresh` are kept (the best of the chosen classes), boxes go through NMS at
    IoU 0, are un-padded and normalised to the decoded frame, clipped to [0, 1], and boxes wider
    than `max_bbox_width` are dropped. Sorted by decreasing confidence.
    """
    rows = [4 + int(i) for i in class_ids]
    scores = output[rows].max(axis=0) if len(rows) > 1 else output[rows[0]]
    candidates = np.flatnonzero(scores > conf_thresh)
    if candidates.size == 0:
        return np.zeros((0, 5), dtype=np.float32)
    cx, cy, w, h = output[:4, candidates].astype(np.float32)
    boxes = np.stack(
        [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, scores[candidates].astype(np.float32)],
        axis=1,
    )
    boxes = nms_iou0(boxes)
    scale = letterbox.scale
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - letterbox.pad_x) / (scale * letterbox.width)
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - letterbox.pad_y) / (scale * letterbox.height)
    np.clip(boxes[:, :4], 0.0, 1.0, out=boxes[:, :4])
    boxes = boxes[(boxes[:, 2] - boxes[:, 0]) <= max_bbox_width]
    return np.ascontiguousarray(boxes, dtype=np.float32)
