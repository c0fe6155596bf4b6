"""The zone card ships inside the integration: served over HTTP and loaded on dashboards."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.smokewatch.const import CARD_FILENAME, CARD_URL_BASE
from custom_components.smokewatch.frontend import CARD_PATH, async_register_card

from .conftest import SetupDetector


async def test_card_is_served_with_a_versioned_url(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """The bundle committed in the integration is served as is; its URL changes with it."""
    assert await async_setup_component(hass, "http", {})
    url = await async_register_card(hass)
    assert url is not None and url.startswith(f"{CARD_URL_BASE}/{CARD_FILENAME}?v=")
    client = await hass_client_no_auth()
    response = await client.get(url)
    assert response.status == 200
    assert await response.read() == CARD_PATH.read_bytes()
    assert b'"smokewatch-zone-card"' in CARD_PATH.read_bytes()


async def test_dashboards_load_the_card_without_a_resource(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """With the frontend set up, the integration adds the card's module to every page."""
    assert await async_setup_component(hass, "frontend", {})
    await setup_detector()
    from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL

    urls = hass.data[DATA_EXTRA_MODULE_URL].urls
    assert any(url.startswith(f"{CARD_URL_BASE}/{CARD_FILENAME}?v=") for url in urls), urls
