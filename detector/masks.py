"""Occlusion masks: drop boxes that fall in zones where smoke is not to be reported.

Two rules exist because two kinds of users draw masks. Pyronear's API masks use the IoU rule:
a box is dropped when its IoU with the mask rectangle exceeds 0.1, so a small box deep inside a
big mask is kept. A Home Assistant user drawing an exclusion zone expects the "inside" rule: a
box is dropped when most of it lies inside the zone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from detector.geometry import iou_matrix

Rule = Literal["iou", "inside"]
RULES: tuple[Rule, ...] = ("inside", "iou")
Point = tuple[float, float]

_REMOTE_MASK = re.compile(
    r"^\(\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*\)$"
)


@dataclass(frozen=True)
class Mask:
    """A named zone in normalised frame coordinates."""

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
        """The bounding rectangle x1, y1, x2, y2."""
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
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
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def clip_to_rect(
    points: Sequence[Point], x1: float, y1: float, x2: float, y2: float
) -> list[Point]:
    """Clip a polygon against an axis-aligned rectangle (Sutherland–Hodgman).

    Exact in area for any simple subject polygon, concave ones included, since the clip
    region is convex.
    """

    def clip(poly: list[Point], inside: Any, cross: Any) -> list[Point]:
        result: list[Point] = []
        for index, current in enumerate(poly):
            previous = poly[index - 1]
            if inside(current):
                if not inside(previous):
                    result.append(cross(previous, current))
                result.append(current)
            elif inside(previous):
                result.append(cross(previous, current))
        return result

    def at_x(x: float) -> Any:
        def cross(a: Point, b: Point) -> Point:
            t = (x - a[0]) / (b[0] - a[0])
            return (x, a[1] + t * (b[1] - a[1]))

        return cross

    def at_y(y: float) -> Any:
        def cross(a: Point, b: Point) -> Point:
            t = (y - a[1]) / (b[1] - a[1])
            return (a[0] + t * (b[0] - a[0]), y)

        return cross

    poly = list(points)
    for inside, cross in (
        (lambda p: p[0] >= x1, at_x(x1)),
        (lambda p: p[0] <= x2, at_x(x2)),
        (lambda p: p[1] >= y1, at_y(y1)),
        (lambda p: p[1] <= y2, at_y(y2)),
    ):
        if not poly:
            break
        poly = clip(poly, inside, cross)
    return poly


def inside_fraction(box: Sequence[float], polygon: Sequence[Point]) -> float:
    """The fraction of the box's area that lies inside the polygon."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    area = (x2 - x1) * (y2 - y1)
    if area <= 0:
        return 0.0
    return polygon_area(clip_to_rect(polygon, x1, y1, x2, y2)) / area


def apply_masks(
    boxes: NDArray[np.float32],
    masks: Sequence[Mask],
    *,
    iou_thresh: float = 0.1,
    inside_threshold: float = 0.5,
) -> NDArray[np.float32]:
    """The boxes that no enabled mask removes."""
    active = [mask for mask in masks if mask.enabled]
    if len(boxes) == 0 or not active:
        return boxes
    keep = np.ones(len(boxes), dtype=bool)
    iou_masks = [mask for mask in active if mask.rule == "iou"]
    if iou_masks:
        rects = np.array([mask.bounds for mask in iou_masks], dtype=np.float64)
        keep &= ~(iou_matrix(boxes, rects) > iou_thresh).any(axis=1)
    for mask in active:
        if mask.rule != "inside":
            continue
        for index in np.flatnonzero(keep):
            if inside_fraction(boxes[index], mask.polygon) > inside_threshold:
                keep[index] = False
    return boxes[keep]


def parse_remote_masks(items: Any) -> list[Mask]:
    """Masks from the Pyronear API (`[{"id": 1, "mask": "(x1,y1,x2,y2)"}, ...]`), IoU rule."""
    if not isinstance(items, list):
        raise ValueError("remote masks must be a JSON list")
    masks: list[Mask] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("mask"), str):
            raise ValueError(f"remote mask {index}: expected an object with a 'mask' string")
        match = _REMOTE_MASK.match(item["mask"])
        if not match:
            raise ValueError(f"remote mask {index}: {item['mask']!r} is not '(x1,y1,x2,y2)'")
        x1, y1, x2, y2 = (float(v) for v in match.groups())
        _check_rect(f"remote mask {index}", x1, y1, x2, y2)
        masks.append(Mask.rect(f"remote-{item.get('id', index)}", x1, y1, x2, y2, "iou"))
    return masks


def _check_rect(where: str, x1: float, y1: float, x2: float, y2: float) -> None:
    if not all(0.0 <= v <= 1.0 for v in (x1, y1, x2, y2)):
        raise ValueError(f"{where}: coordinates must lie between 0 and 1")
    if not (x1 < x2 and y1 < y2):
        raise ValueError(f"{where}: needs x1 < x2 and y1 < y2")


def mask_from_json(obj: Any, where: str = "mask") -> Mask:
    """One mask from its JSON object: name, polygon or rect, rule, enabled."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object")
    unknown = set(obj) - {"name", "polygon", "rect", "rule", "enabled"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
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
        mask = Mask.rect(name, x1, y1, x2, y2, rule)
        return Mask(mask.name, mask.polygon, rule, enabled)
    points = obj["polygon"]
    if not isinstance(points, list) or len(points) < 3:
        raise ValueError(f"{where}.polygon: expected at least 3 [x, y] points")
    polygon: list[Point] = []
    for index, point in enumerate(points):
        if not _is_numbers(point, 2):
            raise ValueError(f"{where}.polygon[{index}]: expected [x, y]")
        x, y = float(point[0]), float(point[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"{where}.polygon[{index}]: [{x}, {y}] lies outside 0..1")
        polygon.append((x, y))
    if polygon_area(polygon) <= 0:
        raise ValueError(f"{where}.polygon: the polygon has no area")
    return Mask(name, tuple(polygon), rule, enabled)


def masks_from_json(obj: Any) -> list[Mask]:
    """The masks of a masks command: a JSON list of mask objects with unique names."""
    if not isinstance(obj, list):
        raise ValueError("masks must be a JSON list (use [] to clear)")
    masks = [mask_from_json(item, f"masks[{index}]") for index, item in enumerate(obj)]
    names = [mask.name for mask in masks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"mask names must be unique: {', '.join(duplicates)}")
    return masks


def masks_to_json(masks: Sequence[Mask]) -> list[dict[str, Any]]:
    """The masks as the JSON list of the masks state topic."""
    return [mask.to_json() for mask in masks]


def _is_numbers(value: Any, count: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == count
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
