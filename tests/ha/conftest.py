"""Fixtures of the Home Assistant tests: MQTT mocked by pytest-homeassistant-custom-component."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

# Imported before the hass fixture so that Home Assistant finds the custom integration.
from custom_components.smokewatch.const import CONF_NODE_ID, CONF_PREFIX, DOMAIN

PREFIX = "smokewatch"
NODE_ID = "smokewatch"
CAMERAS = {"backyard": "Backyard Cam", "ridge": "Ridge"}


def info_payload(
    prefix: str = PREFIX,
    node_id: str = NODE_ID,
    *,
    status: str = "ok",
    error: str | None = None,
    cameras: dict[str, str] | None = None,
) -> str:
    """A detector's retained P/info, as the contract describes it."""
    cameras = CAMERAS if cameras is None else cameras
    return json.dumps(
        {
            "version": "0.1.0",
            "prefix": prefix,
            "node_id": node_id,
            "discovery_prefix": "homeassistant",
            "model": "tiny",
            "status": status,
            "error": error,
            "cameras": {
                camera: {
                    "name": name,
                    "device_id": f"{node_id}_{camera}",
                    "image_topic": f"{prefix}/{camera}/image",
                }
                for camera, name in cameras.items()
            },
        }
    )


def fire_camera_discovery(
    hass: HomeAssistant, camera: str, name: str, prefix: str = PREFIX, node_id: str = NODE_ID
) -> None:
    """The detector's discovery of a camera's smoke sensor (creates the MQTT device)."""
    unique_id = f"{node_id}_{camera}_smoke"
    async_fire_mqtt_message(
        hass,
        f"homeassistant/binary_sensor/{unique_id}/config",
        json.dumps(
            {
                "name": "Smoke",
                "device_class": "smoke",
                "state_topic": f"{prefix}/{camera}/smoke",
                "payload_on": "ON",
                "payload_off": "OFF",
                "unique_id": unique_id,
                "device": {
                    "identifiers": [f"{node_id}_{camera}"],
                    "name": name,
                    "manufacturer": "SmokeWatch",
                    "via_device": f"{node_id}_detector",
                },
                "availability": [{"topic": f"{prefix}/available"}],
            }
        ),
    )


@pytest.fixture(autouse=True)
def in_process_home_assistant(request: pytest.FixtureRequest) -> None:
    """For the in-process tests: load custom_components/smokewatch, empty configuration.yaml.

    The end-to-end tests (marked e2e) run a real Home Assistant process instead.
    """
    if request.node.get_closest_marker("e2e") is None:
        request.getfixturevalue("enable_custom_integrations")
        request.getfixturevalue("mock_hass_config")


@pytest.fixture
def expected_lingering_timers() -> bool:
    """MQTT's client leaves its periodic housekeeping timer behind (HA 2026.5 and 2026.10)."""
    return True


type SetupDetector = Callable[..., Awaitable[tuple[MockConfigEntry, MqttMockHAClient]]]


@pytest.fixture
def setup_detector(
    hass: HomeAssistant, mqtt_mock_entry: Callable[[], Awaitable[MqttMockHAClient]]
) -> SetupDetector:
    """Set up MQTT, a SmokeWatch entry and (optionally) the detector's retained messages."""

    async def _setup(
        *, online: bool = True, options: dict[str, Any] | None = None
    ) -> tuple[MockConfigEntry, MqttMockHAClient]:
        mqtt_mock = await mqtt_mock_entry()
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="SmokeWatch",
            unique_id=NODE_ID,
            data={CONF_PREFIX: PREFIX, CONF_NODE_ID: NODE_ID},
            options=options or {},
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        if online:
            for camera, name in CAMERAS.items():
                fire_camera_discovery(hass, camera, name)
            async_fire_mqtt_message(hass, f"{PREFIX}/info", info_payload(), retain=True)
            async_fire_mqtt_message(hass, f"{PREFIX}/available", "online", retain=True)
            await hass.async_block_till_done()
        return entry, mqtt_mock

    return _setup
