"""Fixtures of the Home Assistant tests: MQTT mocked by pytest-homeassistant-custom-component."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
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

# The detector's payloads, shared with tests/detector (which checks the detector produces them).
GOLDEN = Path(__file__).resolve().parents[1] / "contract"


def golden(name: str) -> Any:
    """A golden payload of tests/contract/ (see its README)."""
    return json.loads((GOLDEN / name).read_text())


INFO = golden("info.json")
PREFIX = INFO["prefix"]
NODE_ID = INFO["node_id"]
CAMERAS = {camera: details["name"] for camera, details in INFO["cameras"].items()}


def info_payload(
    prefix: str = PREFIX,
    node_id: str = NODE_ID,
    *,
    status: str = "ok",
    error: str | None = None,
    cameras: dict[str, str] | None = None,
) -> str:
    """A detector's retained P/info: the golden one, for another prefix or cameras if asked.

    Only the values change (ids keep the golden form `<node_id>_<camera>`); the keys and their
    types stay the detector's.
    """
    info = golden("info.json")
    template = next(iter(info["cameras"].values()))
    if cameras is not None or (prefix, node_id) != (PREFIX, NODE_ID):
        info["cameras"] = {
            camera: {
                **template,
                "name": name,
                "device_id": f"{node_id}_{camera}",
                "image_topic": f"{prefix}/{camera}/image",
            }
            for camera, name in (CAMERAS if cameras is None else cameras).items()
        }
        info["device_id"] = f"{node_id}_detector"
    info.update(prefix=prefix, node_id=node_id, status=status, error=error)
    return json.dumps(info)


def fire_camera_discovery(
    hass: HomeAssistant, camera: str, name: str, prefix: str = PREFIX, node_id: str = NODE_ID
) -> None:
    """The detector's discovery of a camera's smoke sensor (creates the MQTT device), with
    the device identifiers the golden info gives."""
    info = json.loads(info_payload(prefix, node_id, cameras={**CAMERAS, camera: name}))
    device_id = info["cameras"][camera]["device_id"]
    unique_id = f"{device_id}_smoke"
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
                    "identifiers": [device_id],
                    "name": name,
                    "manufacturer": "SmokeWatch",
                    "via_device": info["device_id"],
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
