"""Occlusion masks: drop boxes that fall in zones where smoke is not to be reported.

Two rules exist because two kinds of users draw masks. Pyronear's API masks use the IoU rule:
a box is dropped when its IoU with the mask rectangle exceeds 0.1, so a small box deep inside a
big mask is kept. A Home Assistant user drawing an exclusion zone expects the "inside" rule: a
box is dropped when most of it lies inside the zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from detector.geometry import iou_matrix

Rule = Literal["iou", "inside"]
RULES: tuple[Rule, ...] = ("inside", "iou")
Point = tuple[float, float]

# Bounds on what a command may ask for: masking costs a polygon clip per box and mask on
# the scoring path, so the work a message can cause stays small.
MAX_MASKS = 50
MAX_POINTS = 100
_JSON_KEYS = frozenset({"name", "polygon", "rect", "rule", "enabled"})


@dataclass(frozen=True)
class Mask:
    """A named zone in normalised frame coordinates (0..1, origin top left)."""

    name: str
    polygon: tuple[Point, ...]
    rule: Rule = "inside"
    enabled: bool = True

    @classmethod
    def rect(
        cls, name: str, x1: float, y1: float, x2: float, y2: float, rule: Rule = "inside"
    ) -> Mask:
        """A rectangular mask."""
        return cls(name, ((x1, y1), (x2, y1), (x2, y2), (x1, y2)), rule)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """The bounding rectangle x1, y1, x2, y2 (what the IoU rule compares with)."""
        xs = [x for x, _ in self.polygon]
        ys = [y for _, y in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)

    def to_json(self) -> dict[str, Any]:
        """The mask as the JSON object of the masks command and state topics."""
        return {
            "name": self.name,
            "polygon": [[x, y] for x, y in self.polygon],
            "rule": self.rule,
            "enabled": self.enabled,
        }


def polygon_area(points: Sequence[Point]) -> float:
    """Area of a simple polygon (shoelace formula); 0 for fewer than three points."""
    if len(points) < 3:
        return 0.0
    twice = 0.0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        twice += x1 * y2 - x2 * y1
    return abs(twice) / 2


def polygon_problem(points: Sequence[Point]) -> str | None:
    """Why a polygon cannot be a zone (None when it can): no area, or edges that cross.

    A self-intersecting polygon (a bow tie) has no inside a person meant: the shoelace area
    of its two lobes cancels out, so the "inside" rule would mask a random part of it.
    """
    if polygon_area(points) <= 0:
        return "the polygon has no area (all points on a line)"
    count = len(points)
    edges = [(points[i], points[(i + 1) % count]) for i in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                continue  # neighbours share a corner
            if _segments_cross(*edges[i], *edges[j]):
                # Edges counted from 1 (edge 1 joins points 1 and 2), as the integration says.
                return (
                    f"the polygon's edges {i + 1} and {j + 1} cross "
                    "(draw its outline without crossings)"
                )
    return None


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """True when segments ab and cd intersect (touching counts)."""

    def side(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    def within(p: Point, q: Point, r: Point) -> bool:
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(
            p[1], q[1]
        )

    d1, d2, d3, d4 = side(c, d, a), side(c, d, b), side(a, b, c), side(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and within(c, d, a))
        or (d2 == 0 and within(c, d, b))
        or (d3 == 0 and within(a, b, c))
        or (d4 == 0 and within(a, b, d))
    )


def clip_to_rect(
    points: Sequence[Point], x1: float, y1: float, x2: float, y2: float
) -> list[Point]:
    """The part of a polygon inside an axis-aligned rectangle (Sutherland–Hodgman).

    The area of the result is exact for any simple polygon, concave ones included, because
    the clip region is convex; a concave polygon may come back with zero-width bridges
    along the rectangle's edges, which add no area.
    """
    poly = list(points)
    for axis, bound, keep_below in ((0, x1, False), (0, x2, True), (1, y1, False), (1, y2, True)):
        poly = _clip_half_plane(poly, axis, bound, keep_below)
    return poly


def _clip_half_plane(poly: list[Point], axis: int, bound: float, keep_below: bool) -> list[Point]:
    """Clip against the half-plane p[axis] <= bound (keep_below) or p[axis] >= bound."""

    def inside(point: Point) -> bool:
        return point[axis] <= bound if keep_below else point[axis] >= bound

    def crossing(a: Point, b: Point) -> Point:
        t = (bound - a[axis]) / (b[axis] - a[axis])
        other = a[1 - axis] + t * (b[1 - axis] - a[1 - axis])
        return (bound, other) if axis == 0 else (other, bound)

    result: list[Point] = []
    for index, current in enumerate(poly):
        previous = poly[index - 1]
        if inside(current):
            if not inside(previous):
                result.append(crossing(previous, current))
            result.append(current)
        elif inside(previous):
            result.append(crossing(previous, current))
    return result


def fraction_inside(box: Sequence[float], polygon: Sequence[Point]) -> float:
    """The fraction of the box's area (x1, y1, x2, y2) that lies inside the polygon."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    area = (x2 - x1) * (y2 - y1)
    if area <= 0:
        return 0.0
    return polygon_area(clip_to_rect(polygon, x1, y1, x2, y2)) / area


def masking(
    boxes: NDArray[np.float32],
    masks: Sequence[Mask],
    *,
    iou_thresh: float = 0.1,
    inside_fraction: float = 0.5,
) -> list[str | None]:
    """For each box (n, 5), the name of the first enabled mask that removes it, else None.

    An "iou" mask removes a box whose IoU with the mask's bounding rectangle exceeds
    `iou_thresh`; an "inside" mask removes a box of which more than `inside_fraction` of the
    area lies inside the polygon. Masks are tried in their order.
    """
    hits: list[str | None] = [None] * len(boxes)
    active = [mask for mask in masks if mask.enabled]
    if len(boxes) == 0 or not active:
        return hits
    rects = [mask for mask in active if mask.rule == "iou"]
    ious = (
        iou_matrix(boxes, np.array([mask.bounds for mask in rects], dtype=np.float64))
        if rects
        else np.zeros((len(boxes), 0))
    )
    for index in range(len(boxes)):
        column = 0
        for mask in active:
            if mask.rule == "iou":
                removed = bool(ious[index, column] > iou_thresh)
                column += 1
            else:
                removed = fraction_inside(boxes[index], mask.polygon) > inside_fraction
            if removed:
                hits[index] = mask.name
                break
    return hits


def masks_from_json(obj: Any) -> list[Mask]:
    """The masks of a masks command: a JSON list of mask objects with unique names.

    Each object has `name` (non-empty), `polygon` ([[x, y], ...], at least 3 points in 0..1)
    or `rect` ([x1, y1, x2, y2]), optional `rule` ("inside" by default, or "iou") and
    `enabled` (true by default). Raises ValueError naming the offending index and key.
    """
    if not isinstance(obj, list):
        raise ValueError("masks must be a JSON list (use [] to clear)")
    if len(obj) > MAX_MASKS:
        raise ValueError(f"{len(obj)} masks, more than {MAX_MASKS}")
    masks = [mask_from_json(item, f"masks[{index}]") for index, item in enumerate(obj)]
    seen: dict[str, int] = {}
    for index, mask in enumerate(masks):
        if mask.name in seen:
            raise ValueError(
                f"masks[{index}].name: {mask.name!r} is already used by "
                f"masks[{seen[mask.name]}] (names must be unique)"
            )
        seen[mask.name] = index
    return masks


def masks_to_json(masks: Sequence[Mask]) -> list[dict[str, Any]]:
    """The masks as the JSON list of the masks state topic (readable by `masks_from_json`)."""
    return [mask.to_json() for mask in masks]


def mask_from_json(obj: Any, where: str = "mask") -> Mask:
    """One mask object of the masks JSON (see `masks_from_json`); ValueError names `where`."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object")
    unknown = set(obj) - _JSON_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}.name: expected a non-empty string")
    rule = obj.get("rule", "inside")
    if rule not in RULES:
        raise ValueError(f"{where}.rule: {rule!r} is not one of {', '.join(RULES)}")
    enabled = obj.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}.enabled: expected true or false")
    if ("polygon" in obj) == ("rect" in obj):
        raise ValueError(f"{where}: give exactly one of 'polygon' or 'rect'")
    if "rect" in obj:
        rect = obj["rect"]
        if not _is_numbers(rect, 4):
            raise ValueError(f"{where}.rect: expected [x1, y1, x2, y2]")
        x1, y1, x2, y2 = (float(v) for v in rect)
        _check_rect(f"{where}.rect", x1, y1, x2, y2)
        return Mask(name, Mask.rect(name, x1, y1, x2, y2).polygon, rule, enabled)
    points = obj["polygon"]
    if not isinstance(points, list) or len(points) < 3:
        raise ValueError(f"{where}.polygon: expected at least 3 [x, y] points")
    if len(points) > MAX_POINTS:
        raise ValueError(f"{where}.polygon: {len(points)} points, more than {MAX_POINTS}")
    polygon: list[Point] = []
    for index, point in enumerate(points):
        if not _is_numbers(point, 2):
            raise ValueError(f"{where}.polygon[{index}]: expected [x, y]")
        x, y = float(point[0]), float(point[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"{where}.polygon[{index}]: [{x}, {y}] lies outside 0..1")
        polygon.append((x, y))
    problem = polygon_problem(polygon)
    if problem is not None:
        raise ValueError(f"{where}.polygon: {problem}")
    return Mask(name, tuple(polygon), rule, enabled)


def _check_rect(where: str, x1: float, y1: float, x2: float, y2: float) -> None:
    if not all(0.0 <= v <= 1.0 for v in (x1, y1, x2, y2)):
        raise ValueError(f"{where}: coordinates must lie between 0 and 1")
    if not (x1 < x2 and y1 < y2):
        raise ValueError(f"{where}: needs x1 < x2 and y1 < y2")


def _is_numbers(value: Any, count: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == count
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
