"""Serve the zone card that ships inside the integration, so HACS users add it without a
second repository or a manual dashboard resource."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from homeassistant.core import HomeAssistant

from .const import CARD_FILENAME, CARD_URL_BASE

_LOGGER = logging.getLogger(__name__)

CARD_PATH = Path(__file__).parent / "frontend" / CARD_FILENAME


def _card_version() -> str:
    """A digest of the bundle: a new bundle gets a new URL, so browsers never keep an old one."""
    return hashlib.sha256(CARD_PATH.read_bytes()).hexdigest()[:12]


async def async_register_card(hass: HomeAssistant) -> str | None:
    """Serve the card and load it on every dashboard; returns its URL (None without HTTP)."""
    if hass.http is None or not CARD_PATH.is_file():
        # No web server (a headless test setup) or an incomplete copy of the integration.
        _LOGGER.debug("Zone card not served (no HTTP server or no bundle at %s)", CARD_PATH)
        return None
    from homeassistant.components import http

    # Defined in http/__init__.py up to 2026.5 and re-exported from http/server.py later; the
    # same public name at run time on every version, looked up so mypy accepts both.
    static_path_config = getattr(http, "StaticPathConfig")  # noqa: B009
    await hass.http.async_register_static_paths(
        [static_path_config(f"{CARD_URL_BASE}/{CARD_FILENAME}", str(CARD_PATH), False)]
    )
    version = await hass.async_add_executor_job(_card_version)
    url = f"{CARD_URL_BASE}/{CARD_FILENAME}?v={version}"
    if "frontend" in hass.config.components:
        from homeassistant.components.frontend import add_extra_js_url

        add_extra_js_url(hass, url)
    return url
