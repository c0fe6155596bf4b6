"""The checks a zone passes before set_zones sends it to the detector.

The detector owns the rules of a masks command (detector/masks.py): it refuses a bad command,
counted and logged, and a detector that answers commands says why (see commands.py); an older
one answers nothing. The same rules run here first to give the caller a clear error at once,
before anything is sent, whatever the detector's age. The cases of
tests/contract/masks_rules.json are checked against both, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .const import MAX_ZONE_POINTS

Point = tuple[float, float]


def check_polygon(points: Any) -> tuple[list[list[float]], str | None]:
    """The polygon as [x, y] points in 0..1, and why it cannot be a zone (None when it can)."""
    if not isinstance(points, list | tuple) or len(points) < 3:
        return [], "a polygon needs at least 3 points"
    if len(points) > MAX_ZONE_POINTS:
        return [], f"{len(points)} points, more than {MAX_ZONE_POINTS}"
    polygon: list[list[float]] = []
    for index, point in enumerate(points):
        if (
            not isinstance(point, list | tuple)
            or len(point) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
        ):
            return [], f"point {index + 1} is not [x, y]"
        x, y = float(point[0]), float(point[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            return [], f"point {index + 1} [{x:g}, {y:g}] lies outside 0..1"
        polygon.append([x, y])
    corners = [(x, y) for x, y in polygon]
    if _area(corners) <= 0:
        return [], "the points enclose no area (all on a line)"
    crossing = _crossing(corners)
    if crossing is not None:
        first, second = crossing
        # A bow tie has no inside a person meant: the detector refuses it too.
        return [], f"edges {first + 1} and {second + 1} cross (draw the outline without crossings)"
    return polygon, None


def _area(points: Sequence[Point]) -> float:
    """The shoelace area of a polygon."""
    twice = sum(
        x1 * y2 - x2 * y1
        for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True)
    )
    return abs(twice) / 2


def _crossing(points: Sequence[Point]) -> tuple[int, int] | None:
    """The first two edges (not neighbours) that intersect, touching included."""
    count = len(points)
    edges = [(points[i], points[(i + 1) % count]) for i in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                continue  # neighbours share a corner
            if _segments_meet(*edges[i], *edges[j]):
                return i, j
    return None


def _segments_meet(a: Point, b: Point, c: Point, d: Point) -> bool:
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
