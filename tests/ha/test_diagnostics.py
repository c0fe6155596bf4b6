"""Diagnostics: the detector's info, stats and health, with secrets redacted."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .conftest import PREFIX, SetupDetector, info_payload


async def test_diagnostics_redacted(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, setup_detector: SetupDetector
) -> None:
    """Info, detector stats and bridge stats are there; credentials never are."""
    assert await async_setup_component(hass, "diagnostics", {})
    entry, _ = await setup_detector()
    info = json.loads(info_payload())
    info["bridge"] = {
        "api_url": "https://alert.example",
        "username": "station-1",
        "token": "s3cr3t",
    }
    async_fire_mqtt_message(hass, f"{PREFIX}/info", json.dumps(info))
    async_fire_mqtt_message(
        hass,
        f"{PREFIX}/stats",
        json.dumps({"uptime": 12.5, "inference_ms": 54.0, "frames_dropped": 3, "cameras": {}}),
    )
    async_fire_mqtt_message(hass, f"{PREFIX}/bridge/available", "online")
    async_fire_mqtt_message(
        hass,
        f"{PREFIX}/bridge/stats",
        json.dumps({"pending": 2, "failed": 0, "last_error": None, "password": "hunter2"}),
    )
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert diagnostics["entry"]["data"] == {"prefix": PREFIX, "node_id": "smokewatch"}
    detector = diagnostics["detector"]
    assert detector["available"] == "online"
    assert detector["info"]["cameras"]["backyard"]["name"] == "Backyard Cam"
    assert detector["info"]["bridge"]["api_url"] == "https://alert.example"
    assert detector["info"]["bridge"]["username"] == "**REDACTED**"
    assert detector["info"]["bridge"]["token"] == "**REDACTED**"
    assert detector["stats"]["inference_ms"] == 54.0
    assert diagnostics["bridge"] == {
        "available": "online",
        "stats": {"pending": 2, "failed": 0, "last_error": None, "password": "**REDACTED**"},
    }
    assert diagnostics["issues"] == []
    text = json.dumps(diagnostics)
    assert "s3cr3t" not in text
    assert "hunter2" not in text
    assert "station-1" not in text
