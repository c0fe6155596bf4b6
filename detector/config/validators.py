"""Voluptuous validators whose messages say what is allowed."""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from detector.masks import Mask, mask_from_json


def number(low: float, high: float) -> Any:
    """A number in [low, high]."""
    return vol.All(
        vol.Coerce(float),
        vol.Range(min=low, max=high),
        msg=f"expected a number between {low} and {high}",
    )


def positive_number(high: float) -> Any:
    """A number in (0, high]."""
    return vol.All(
        vol.Coerce(float),
        vol.Range(min=0, max=high, min_included=False),
        msg=f"expected a number above 0 and at most {high}",
    )


def integer(low: int, high: int) -> Any:
    """A whole number in [low, high] (booleans refused)."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise vol.Invalid(f"expected a whole number between {low} and {high}")
        try:
            result = int(value)
        except ValueError as err:
            raise vol.Invalid(f"expected a whole number between {low} and {high}") from err
        if not low <= result <= high:
            raise vol.Invalid(f"expected a whole number between {low} and {high}")
        return result

    return check


def boolean(value: Any) -> bool:
    """true or false (YAML booleans only)."""
    if isinstance(value, bool):
        return value
    raise vol.Invalid("expected true or false")


def text(value: Any) -> str:
    """A non-empty string (a !secret stays a Secret)."""
    if isinstance(value, str) and value.strip():
        return value
    raise vol.Invalid("expected a non-empty string")


def optional_text(value: Any) -> str | None:
    """A non-empty string, or null."""
    return None if value is None else text(value)


def topic(value: Any) -> str:
    """An MQTT topic to publish or subscribe without wildcards."""
    if not isinstance(value, str) or not value or "+" in value or "#" in value:
        raise vol.Invalid("expected an MQTT topic without wildcards (+, #)")
    if value.startswith("/") or value.endswith("/") or "//" in value:
        raise vol.Invalid(
            "expected an MQTT topic with no empty level (no leading, trailing or double /)"
        )
    return value


def masks(value: Any) -> tuple[Mask, ...]:
    """A list of masks: name, polygon [[x, y], ...] or rect [x1, y1, x2, y2], rule, enabled."""
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of masks")
    result: list[Mask] = []
    for index, item in enumerate(value):
        try:
            result.append(mask_from_json(item, "mask"))
        except ValueError as err:
            raise vol.Invalid(str(err), path=[index]) from err
    names = [mask.name for mask in result]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise vol.Invalid(f"mask names must be unique: {', '.join(duplicates)}")
    return tuple(result)
