"""`masks:` a camera's local exclusion zones, in normalised coordinates (0..1, origin top left)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import voluptuous as vol

from detector.config.validators import Each, boolean, text
from detector.masks import MAX_MASKS, MAX_POINTS, RULES, Mask, Point, polygon_problem


def _point(value: Any) -> Point:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(0 <= v <= 1 for v in value)
    ):
        return float(value[0]), float(value[1])
    raise vol.Invalid("expected [x, y] with x and y between 0 and 1")


def _list_of_points(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    raise vol.Invalid("expected a list of [x, y] points")


def _rect(value: Any) -> tuple[float, float, float, float]:
    allowed = "expected [x1, y1, x2, y2] between 0 and 1 with x1 < x2 and y1 < y2"
    if not (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise vol.Invalid(allowed)
    x1, y1, x2, y2 = (float(v) for v in value)
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise vol.Invalid(allowed)
    return x1, y1, x2, y2


def _rule(value: Any) -> str:
    if value in RULES:
        return str(value)
    raise vol.Invalid(f"expected one of {', '.join(RULES)}")


MASK_SCHEMA = vol.Schema(
    {
        # Shown in logs and in the masks state topic; unique within the camera.
        vol.Required("name"): text,
        # The zone as three or more [x, y] points (give polygon or rect).
        # The count is checked before the points: the same limits as a masks/set command.
        vol.Optional("polygon"): vol.All(
            _list_of_points,
            vol.Length(
                min=3,
                max=MAX_POINTS,
                msg=f"expected between 3 and {MAX_POINTS} [x, y] points",
            ),
            [_point],
        ),
        # The zone as a rectangle [x1, y1, x2, y2].
        vol.Optional("rect"): _rect,
        # inside: drop a box lying mostly inside the zone; iou: drop a box whose IoU with the
        # zone's rectangle exceeds 0.1 (Pyronear's rule for its API masks).
        vol.Optional("rule", default="inside"): _rule,
        # A disabled mask is kept but not applied.
        vol.Optional("enabled", default=True): boolean,
    },
    extra=vol.PREVENT_EXTRA,
)


def _to_mask(entry: dict[str, Any]) -> Mask:
    if ("polygon" in entry) == ("rect" in entry):
        raise vol.Invalid(
            "expected exactly one of polygon: [[x, y], ...] or rect: [x1, y1, x2, y2]"
        )
    if "rect" in entry:
        x1, y1, x2, y2 = entry["rect"]
        mask = Mask.rect(entry["name"], x1, y1, x2, y2, entry["rule"])
    else:
        problem = polygon_problem(entry["polygon"])
        if problem is not None:
            raise vol.Invalid(
                f"expected a polygon with an area and edges that do not cross: {problem}",
                path=["polygon"],
            )
        mask = Mask(entry["name"], tuple(entry["polygon"]), entry["rule"])
    return replace(mask, enabled=entry["enabled"])


def _unique_names(masks: list[Mask]) -> tuple[Mask, ...]:
    seen: set[str] = set()
    errors = []
    for index, mask in enumerate(masks):
        if mask.name in seen:
            errors.append(
                vol.Invalid("expected a name no other mask of the camera has", path=[index, "name"])
            )
        seen.add(mask.name)
    if errors:
        raise vol.MultipleInvalid(errors)
    return tuple(masks)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        if len(value) > MAX_MASKS:
            raise vol.Invalid(f"expected at most {MAX_MASKS} masks, as a masks/set command")
        return value
    raise vol.Invalid("expected a list of masks")


MASKS_SCHEMA = vol.All(
    _list,
    Each(vol.All(MASK_SCHEMA, _to_mask)),
    _unique_names,
)
