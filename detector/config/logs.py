"""`logging:` how much the detector logs."""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from detector.config.validators import mapping_or_empty

LOG_LEVELS = ("debug", "info", "warning", "error")


def _level(value: Any) -> str:
    if isinstance(value, str) and value.lower() in LOG_LEVELS:
        return value.lower()
    raise vol.Invalid(f"expected one of {', '.join(LOG_LEVELS)}")


LOGGING_SCHEMA = vol.All(
    mapping_or_empty,
    vol.Schema(
        {
            # debug shows every scored frame; info start-up, alerts and problems.
            vol.Optional("level", default="info"): _level,
        },
        extra=vol.PREVENT_EXTRA,
    ),
)
