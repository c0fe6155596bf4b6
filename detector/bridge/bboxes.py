"""The `bboxes` form field of the Pyronear API, always in a shape the server accepts.

The server checks each number against `(0?\\.[0-9]{1,3}|0|1)`, at most 5 boxes, x1 < x2 and
y1 < y2. Boxes are corrected here rather than rejected there: clipped to [0, 1], rounded to 3
decimals (0.9996 would print as 1.000 and fail), degenerate ones widened by one step or dropped,
the 5 most confident kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

MAX_BOXES = 5
STEP = 0.001


def _number(value: float) -> str:
    """0 and 1 as integers, everything else with 3 decimals."""
    if value <= 0:
        return "0"
    if value >= 1:
        return "1"
    return f"{value:.3f}"


def _clean(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return round(min(1.0, max(0.0, value)), 3)


def _widen(low: float, high: float) -> tuple[float, float] | None:
    """A zero-size side widened by one step inside [0, 1] (None if it cannot be)."""
    if low < high:
        return low, high
    if high + STEP <= 1:
        return low, round(high + STEP, 3)
    if low - STEP >= 0:
        return round(low - STEP, 3), high
    return None


def correct_box(box: Sequence[float]) -> tuple[float, float, float, float, float] | None:
    """A box the server accepts, or None when nothing of it is left."""
    if len(box) != 5:
        return None
    x1, y1, x2, y2, conf = (_clean(float(v)) for v in box)
    x1, x2 = min(x1, x2), max(x1, x2)
    y1, y2 = min(y1, y2), max(y1, y2)
    xs, ys = _widen(x1, x2), _widen(y1, y2)
    if xs is None or ys is None:
        return None
    (x1, x2), (y1, y2) = xs, ys
    return x1, y1, x2, y2, conf


def format_bboxes(boxes: Iterable[Sequence[float]]) -> str:
    """`[(x1,y1,x2,y2,conf),...]` of at most 5 corrected boxes, by confidence; `[]` if none."""
    corrected = [box for box in (correct_box(b) for b in boxes) if box is not None]
    corrected.sort(key=lambda box: box[4], reverse=True)
    parts = ["(" + ",".join(_number(v) for v in box) + ")" for box in corrected[:MAX_BOXES]]
    return "[" + ",".join(parts) + "]"
