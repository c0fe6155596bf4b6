"""Bounded parsing of values that come from outside (MQTT payloads, API answers).

Every value that crosses a boundary goes through here before the rest of the code sees it, so
that a NaN, an infinity, a 400-digit integer, a 10 MB nesting or a timestamp 50,000 years away
becomes one `ValueError` with a reason at the edge, not a crash deep inside (a stats publish, a
date conversion) long after the message was accepted.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

# Nesting deeper than any payload of ours (a masks list is 4 levels); far below Python's
# recursion limit, so neither the parser nor the code walking the result can overflow it.
MAX_DEPTH = 16
# Digits in a JSON number: more than a float can carry is not a value anyone meant.
MAX_NUMBER_DIGITS = 40
# Epoch seconds accepted as a frame time: from 2000-01-01 to a day after now (clock skew).
EPOCH_MIN = 946_684_800.0
FUTURE_SKEW = 86_400.0


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a {len(text)}-digit number is out of range")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a {len(text)}-character number is out of range")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a number")
    return value


def _depth_ok(text: str | bytes, max_depth: int) -> bool:
    """True when brackets never nest deeper than `max_depth` (strings are skipped).

    Checked before parsing, in one linear pass, so a deep payload costs no recursion at all.
    """
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def parse_json(
    payload: str | bytes, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH
) -> Any:
    """JSON from outside, bounded in size, depth and numbers; ValueError with the reason.

    NaN and Infinity (which Python's parser accepts by default) are refused, as are numbers
    whose text is longer than `MAX_NUMBER_DIGITS` and floats that overflow to infinity.
    """
    if max_bytes is not None and len(payload) > max_bytes:
        raise ValueError(f"{len(payload)} bytes of JSON, over the limit of {max_bytes}")
    if not _depth_ok(payload, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(
            payload,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
        )
    except (UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"not valid JSON: {type(err).__name__}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON: {err}") from None


def finite_number(value: Any, what: str) -> float:
    """A JSON number as a finite float; ValueError otherwise (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{what} is out of range") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number")
    return number


def epoch_seconds(value: Any, *, now: float | None = None) -> float:
    """A capture time in epoch seconds, milliseconds, microseconds or nanoseconds → seconds.

    The unit is told apart by magnitude (seconds stay below 10^11 until the year 5138); the
    result must lie between 2000 and a day after `now`, else ValueError: a frame time feeds
    the API's `recorded_at`, the vote's ordering and the stats, and none of them can use a
    time 50,000 years away.
    """
    seconds = finite_number(value, "ts")
    magnitude = abs(seconds)
    for scale in (1.0, 1e3, 1e6, 1e9):
        if magnitude < 1e11 * scale:
            seconds /= scale
            break
    else:
        raise ValueError(f"ts {value!r} is not an epoch time")
    latest = (time.time() if now is None else now) + FUTURE_SKEW
    if not EPOCH_MIN <= seconds <= latest:
        raise ValueError(
            f"ts {value!r} is not a time between 2000-01-01 and now (epoch seconds, ms, µs or ns)"
        )
    return seconds
