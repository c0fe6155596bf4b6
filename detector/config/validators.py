"""Voluptuous validators whose messages say what is allowed.

The messages never repeat the value: the error report adds it (or `<secret>`), so a secret
that lands in the wrong key is not printed.
"""

from __future__ import annotations

import math
import re
from typing import Any

import voluptuous as vol

SLUG = re.compile(r"^[a-z0-9_]+$")


class KeyInvalid(vol.Invalid):
    """A mapping key (not its value) is invalid; the report shows the key as the value."""


def _real(value: Any) -> float | None:
    """The value as a finite float, or None. Strings are accepted because `!env` gives strings."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def number(low: float, high: float, *, above_low: bool = False) -> Any:
    """A number in [low, high], or (low, high] when `above_low`."""
    allowed = (
        f"expected a number above {low} and at most {high}"
        if above_low
        else f"expected a number between {low} and {high}"
    )

    def check(value: Any) -> float:
        result = _real(value)
        if result is None or result > high or result < low or (above_low and result == low):
            raise vol.Invalid(allowed)
        return result

    return check


def integer(low: int, high: int) -> Any:
    """A whole number in [low, high]."""
    allowed = f"expected a whole number between {low} and {high}"

    def check(value: Any) -> int:
        result = _real(value)
        if result is None or not result.is_integer() or not low <= result <= high:
            raise vol.Invalid(allowed)
        return int(result)

    return check


def boolean(value: Any) -> bool:
    """true or false (the strings too, for `!env`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise vol.Invalid("expected true or false")


def text(value: Any) -> str:
    """A non-empty string (a `!secret` stays a Secret)."""
    if isinstance(value, str) and value.strip():
        return value
    raise vol.Invalid("expected a non-empty string")


def optional_text(value: Any) -> str | None:
    """A non-empty string, or null."""
    return None if value is None else text(value)


def slug(value: Any) -> str:
    """An id made of lowercase letters, digits and underscores (a mapping key)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and SLUG.match(value):
        return value
    raise KeyInvalid("expected an id of lowercase letters, digits and _ (e.g. backyard_east)")


def topic(value: Any) -> str:
    """An MQTT topic without wildcards or empty levels."""
    if not isinstance(value, str) or not value or "+" in value or "#" in value or "\0" in value:
        raise vol.Invalid("expected an MQTT topic without wildcards (+, #)")
    if "" in value.split("/"):
        raise vol.Invalid("expected an MQTT topic with no empty level (no leading, trailing or //)")
    return value


def mapping_or_empty(value: Any) -> Any:
    """An empty YAML entry (`backyard:`) is an empty mapping, taking every default."""
    return {} if value is None else value


class Each:
    """A list whose items all follow `item`; unlike `[item]`, every bad item is reported."""

    def __init__(self, item: Any) -> None:
        self.item = item
        self._schema = vol.Schema(item)

    def __call__(self, value: Any) -> list[Any]:
        """The validated items, or MultipleInvalid with one error per problem."""
        if not isinstance(value, list):
            raise vol.Invalid("expected a list")
        results: list[Any] = []
        errors: list[vol.Invalid] = []
        for index, entry in enumerate(value):
            try:
                results.append(self._schema(entry))
            except vol.MultipleInvalid as err:
                for error in err.errors:
                    error.prepend([index])
                    errors.append(error)
        if errors:
            raise vol.MultipleInvalid(errors)
        return results
