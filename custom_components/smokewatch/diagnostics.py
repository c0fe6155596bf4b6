"""Diagnostics: the detector's description, health and statistics, secrets redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .bridge import bridge_issue_id
from .const import DOMAIN
from .runtime import SmokeWatchConfigEntry

# Nothing the detector publishes should carry these, but a bridge error or a future field
# might: redact them wherever they appear.
TO_REDACT = {
    "token",
    "access_token",
    "api_key",
    "password",
    "username",
    "login",
    "secret",
    "authorization",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SmokeWatchConfigEntry
) -> dict[str, Any]:
    """What a bug report about this detector needs (and about its prefix's bridge)."""
    runtime = entry.runtime_data
    bridge = runtime.bridge
    issues = [
        issue.translation_key
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN
        and (issue_id.endswith(entry.entry_id) or issue_id == bridge_issue_id(runtime.prefix))
    ]
    data = {
        "entry": {
            "title": entry.title,
            "data": dict(entry.data),
            "options": dict(entry.options),
        },
        "detector": {
            "available": runtime.available,
            "last_seen": runtime.last_seen.isoformat() if runtime.last_seen else None,
            "info": runtime.info.raw if runtime.info is not None else None,
            "stats": runtime.stats,
        },
        "bridge": {
            "available": bridge.available if bridge is not None else None,
            "stats": bridge.stats if bridge is not None else None,
        },
        "issues": issues,
    }
    return async_redact_data(data, TO_REDACT)
