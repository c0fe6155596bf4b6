"""The `bboxes` form field of the Pyronear API, always in a shape the server accepts.

The server checks each number against `(0?\\.[0-9]{1,3}|0|1)`, at most 5 boxes, x1 < x2 and
y1 < y2, and answers 422 otherwise: one bad box would make the whole detection fail for good.
So boxes are corrected here instead: values clipped to [0, 0.999] and rounded to 3 decimals
(0.9996 would print as `1.000` and fail; the bound stays below 1 so no number ever prints as
`1.000`), boxes left with no area after rounding dropped, the 5 most confident kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

MAX_BOXES = 5
HIGHEST = 0.999

Box = tuple[float, float, float, float, float]


def _number(value: float) -> str:
    """0 as `0`, everything else with 3 decimals (the values are already rounded)."""
    return "0" if value == 0 else f"{value:.3f}"


def correct_box(box: Sequence[float]) -> Box | None:
    """The box clipped and rounded as the server accepts it, or None when nothing is left."""
    if len(box) != 5:
        return None
    values = [float(v) for v in box]
    if not all(math.isfinite(v) for v in values):
        return None
    x1, y1, x2, y2, conf = (round(min(HIGHEST, max(0.0, v)), 3) for v in values)
    if not (x1 < x2 and y1 < y2):
        return None
    return x1, y1, x2, y2, conf


def correct_boxes(boxes: Iterable[Sequence[float]]) -> list[Box]:
    """At most 5 corrected boxes, most confident first (ties keep their order)."""
    ranked = sorted(
        ((float(box[4]) if len(box) == 5 else 0.0, index, box) for index, box in enumerate(boxes)),
        key=lambda entry: (-entry[0] if math.isfinite(entry[0]) else math.inf, entry[1]),
    )
    kept: list[Box] = []
    for _conf, _index, box in ranked:
        corrected = correct_box(box)
        if corrected is not None:
            kept.append(corrected)
            if len(kept) == MAX_BOXES:
                break
    return kept


def format_bboxes(boxes: Iterable[Sequence[float]]) -> str:
    """`[(x1,y1,x2,y2,conf),...]` of the corrected boxes; `[]` when none is left."""
    return (
        "["
        + ",".join("(" + ",".join(_number(v) for v in box) + ")" for box in correct_boxes(boxes))
        + "]"
    )
