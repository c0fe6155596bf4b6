"""Fixtures of the Home Assistant tests: MQTT mocked by pytest-homeassistant-custom-component."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

# Imported before the hass fixture so that Home Assistant finds the custom integration.
from custom_components.smokewatch.const import CONF_INSTANCE, CONF_NODE_ID, CONF_PREFIX, DOMAIN

# The detector's payloads, shared with tests/detector (which checks the detector produces them).
GOLDEN = Path(__file__).resolve().parents[1] / "contract"


def golden(name: str) -> Any:
    """A golden payload of tests/contract/ (see its README)."""
    return json.loads((GOLDEN / name).read_text())


INFO = golden("info.json")
PREFIX = INFO["prefix"]
NODE_ID = INFO["node_id"]
CAMERAS = {camera: details["name"] for camera, details in INFO["cameras"].items()}
# One detector of several sharing the prefix (instance "b", camera "valley").
INSTANCE_INFO = golden("info_instance.json")
COMMAND_REQUEST = golden("command_request.json")


def info_payload(
    prefix: str = PREFIX,
    node_id: str = NODE_ID,
    *,
    status: str = "ok",
    error: str | None = None,
    cameras: dict[str, str] | None = None,
    instance: str | None = None,
    features: list[str] | None = None,
) -> str:
    """A detector's retained info: the golden one (info.json, or info_instance.json for an
    instance), for another prefix, cameras, instance or features if asked (`features=[]`: an
    older detector's info, without the key).

    Only the values change (ids keep the golden form `<node_id>_<camera>` and
    `<node_id>_detector[_<instance>]`); the keys and their types stay the detector's.
    """
    info = golden("info.json" if instance is None else "info_instance.json")
    template = next(iter(info["cameras"].values()))
    golden_cameras = {camera: details["name"] for camera, details in info["cameras"].items()}
    if cameras is not None or (prefix, node_id, instance) not in (
        (PREFIX, NODE_ID, None),
        (PREFIX, NODE_ID, INSTANCE_INFO["instance"]),
    ):
        info["cameras"] = {
            camera: {
                **template,
                "name": name,
                "device_id": f"{node_id}_{camera}",
                "image_topic": f"{prefix}/{camera}/image",
            }
            for camera, name in (golden_cameras if cameras is None else cameras).items()
        }
        info["device_id"] = f"{node_id}_detector" + (f"_{instance}" if instance else "")
        info["instance"] = instance
    info.update(prefix=prefix, node_id=node_id, status=status, error=error)
    if features == []:
        del info["features"]
    elif features is not None:
        info["features"] = features
    return json.dumps(info)


def opened(payload: str) -> tuple[str | None, str]:
    """(request id, value as text) of a command's payload, read as the detector reads it: a
    request envelope (command_request.json) is opened, anything else is the value itself."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None, payload
    if not isinstance(data, dict) or "request_id" not in data:
        return None, payload
    assert set(data) == set(COMMAND_REQUEST["request"]), data
    value = data["value"]
    return data["request_id"], value if isinstance(value, str) else json.dumps(value)


def detector_topic(leaf: str, prefix: str = PREFIX, instance: str | None = None) -> str:
    """A detector's own topic (`info`, `available`, `stats`): below the prefix for a lone one,
    below `instance/<id>/` for one of several (golden topics.json)."""
    topics = golden("topics.json")
    name = topics["detector"][leaf]
    if instance is None:
        return f"{prefix}/{name}"
    return f"{prefix}/" + topics["instance"].format(instance=instance, leaf=name)


def fire_camera_discovery(
    hass: HomeAssistant,
    camera: str,
    name: str,
    prefix: str = PREFIX,
    node_id: str = NODE_ID,
    instance: str | None = None,
) -> None:
    """The detector's discovery of a camera's smoke sensor (creates the MQTT device), with
    the device identifiers the golden info gives."""
    info = json.loads(info_payload(prefix, node_id, cameras={camera: name}, instance=instance))
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
                "availability": [{"topic": detector_topic("available", prefix, instance)}],
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
def subscribe_cooldown() -> float:
    """How long HA's MQTT client gathers new subscriptions before sending them (0.5 s until
    its birth message, 0.1 s after; a test may ask for a real one by parametrizing this)."""
    return 0.0


@pytest.fixture(autouse=True)
def patch_subscribe_cooldown(subscribe_cooldown: float) -> Iterator[None]:
    """Without the wait for MQTT's batches in every test (HA's EnsureJobAfterCooldown allows
    patching it for tests)."""
    with patch(
        "homeassistant.components.mqtt.client.INITIAL_SUBSCRIBE_COOLDOWN", subscribe_cooldown
    ):
        yield


@pytest.fixture
def expected_lingering_timers() -> bool:
    """MQTT's client leaves its periodic housekeeping timer behind (HA 2026.5 and 2026.10)."""
    return True


class FakeDetector:
    """The detector's side of the commands on the (mocked) broker.

    It hears what Home Assistant publishes on `<prefix>/<cam>/<command>/set` and answers on
    `.../result` with the golden payloads of command_request.json, as `smokewatch run` does:
    a command in a request envelope gets its request id back, a plain one (an HA button's)
    an answer without id. Before each answer it sends another request's refusal, which must
    not be taken for the answer. A camera in `refuse` refuses with that reason; one in
    `silent` answers nothing (an offline detector).
    """

    def __init__(self, hass: HomeAssistant, prefix: str = PREFIX) -> None:
        self.hass = hass
        self.prefix = prefix
        self.refuse: dict[str, str] = {}
        self.silent: set[str] = set()
        self.commands: list[tuple[str, str, str]] = []  # (camera, command, payload)
        self._unsubscribe: CALLBACK_TYPE | None = None

    async def async_start(self) -> None:
        """Subscribe to the cameras' commands."""
        self._unsubscribe = await mqtt.async_subscribe(
            self.hass, f"{self.prefix}/+/+/set", self._command_received
        )

    def requests(self, camera: str | None = None) -> list[dict[str, Any]]:
        """The request envelopes received (for one camera), in order."""
        found = []
        for received_camera, _, payload in self.commands:
            try:
                data = json.loads(payload)
            except ValueError:
                continue
            if isinstance(data, dict) and camera in (None, received_camera):
                found.append(data)
        return found

    @callback
    def _command_received(self, msg: mqtt.ReceiveMessage) -> None:
        camera, command = msg.topic.removeprefix(f"{self.prefix}/").split("/")[:2]
        payload = str(msg.payload)
        self.commands.append((camera, command, payload))
        if camera in self.silent:
            return
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        envelope = data if isinstance(data, dict) else {}
        request_id = envelope.get("request_id")
        if camera in self.refuse:
            answer = {**COMMAND_REQUEST["refused"], "reason": self.refuse[camera]}
        else:
            answer = dict(COMMAND_REQUEST["done"])
        answer["request_id"] = request_id
        decoy = {**COMMAND_REQUEST["refused"], "request_id": "another request"}
        topic = f"{self.prefix}/{camera}/" + COMMAND_REQUEST["result_leaf"].format(command=command)
        for payload_out in (decoy, answer):
            # As over the network: after the publish returned, one message after the other.
            self.hass.loop.call_soon(
                async_fire_mqtt_message, self.hass, topic, json.dumps(payload_out), 1
            )


@pytest.fixture
def fake_detector(hass: HomeAssistant) -> FakeDetector:
    """The detector's answers to commands (started by setup_detector)."""
    return FakeDetector(hass)


type SetupDetector = Callable[..., Awaitable[tuple[MockConfigEntry, MqttMockHAClient]]]


def detector_entry(
    prefix: str = PREFIX, node_id: str = NODE_ID, instance: str | None = None, **kwargs: Any
) -> MockConfigEntry:
    """A config entry of a detector, as the config flow makes it."""
    data = {CONF_PREFIX: prefix, CONF_NODE_ID: node_id}
    unique_id = node_id
    if instance is not None:
        data[CONF_INSTANCE] = instance
        unique_id = f"{node_id}/instance/{instance}"
    return MockConfigEntry(domain=DOMAIN, unique_id=unique_id, data=data, **kwargs)


@pytest.fixture
def setup_detector(
    hass: HomeAssistant,
    mqtt_mock_entry: Callable[[], Awaitable[MqttMockHAClient]],
    fake_detector: FakeDetector,
) -> SetupDetector:
    """Set up MQTT, a SmokeWatch entry, the detector's answers to commands and (optionally)
    its retained messages."""

    async def _setup(
        *,
        online: bool = True,
        options: dict[str, Any] | None = None,
        features: list[str] | None = None,
    ) -> tuple[MockConfigEntry, MqttMockHAClient]:
        mqtt_mock = await mqtt_mock_entry()
        await fake_detector.async_start()
        entry = detector_entry(title="SmokeWatch", options=options or {})
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        if online:
            for camera, name in CAMERAS.items():
                fire_camera_discovery(hass, camera, name)
            info = info_payload(features=features)
            async_fire_mqtt_message(hass, f"{PREFIX}/info", info, retain=True)
            async_fire_mqtt_message(hass, f"{PREFIX}/available", "online", retain=True)
            await hass.async_block_till_done()
        return entry, mqtt_mock

    return _setup
