"""The consumer side of the golden payloads in tests/contract/ (tests/detector checks the producer).

The integration cannot import the detector's contract (HACS installs only the integration), so
these tests hold it to the same files: the info it parses, the topics it reads and writes, the
commands its services send (inside the request envelope of command_request.json) and the
answers they read, and the mask rules its set_zones applies before the detector does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

from custom_components.smokewatch import const
from custom_components.smokewatch.answers import parse_answer
from custom_components.smokewatch.const import DOMAIN
from custom_components.smokewatch.info import (
    command_topic,
    detector_topic,
    info_topic,
    instance_info_topics,
    parse_info,
    prefix_topic,
    result_topic,
)

from .conftest import (
    CAMERAS,
    COMMAND_REQUEST,
    PREFIX,
    FakeDetector,
    SetupDetector,
    fire_camera_discovery,
    golden,
    opened,
)

TOPICS = golden("topics.json")
MASKS_RULES = golden("masks_rules.json")


def backyard(hass: HomeAssistant) -> str:
    """The device id of the golden info's first camera (created by its discovery)."""
    registry = er.async_get(hass)
    device_id = golden("info.json")["cameras"]["backyard"]["device_id"]
    entity_id = registry.async_get_entity_id("binary_sensor", "mqtt", f"{device_id}_smoke")
    assert entity_id is not None
    entity = registry.async_get(entity_id)
    assert entity is not None and entity.device_id is not None
    return entity.device_id


@pytest.mark.parametrize("name", ["info.json", "info_instance.json", "info_model_missing.json"])
def test_golden_info_parses(name: str) -> None:
    """Every info the detector publishes is understood, field by field."""
    payload = golden(name)
    info = parse_info(json.dumps(payload))
    assert info is not None
    assert (info.prefix, info.node_id, info.version, info.model, info.status, info.error) == (
        payload["prefix"],
        payload["node_id"],
        payload["version"],
        payload["model"],
        payload["status"],
        payload["error"],
    )
    assert {camera: (c.name, c.device_id) for camera, c in info.cameras.items()} == {
        camera: (details["name"], details["device_id"])
        for camera, details in payload["cameras"].items()
    }
    assert info.instance == payload["instance"]
    assert info.features == set(payload["features"]) == {const.FEATURE_COMMAND_RESULTS}
    assert info.raw == payload


def test_an_older_detectors_info_parses() -> None:
    """An info from before `instance` and `features` is a lone detector that answers no
    command (its services send plain commands and wait for nothing)."""
    payload = golden("info.json")
    for key in ("instance", "features", "device_id"):
        del payload[key]
    info = parse_info(json.dumps(payload))
    assert info is not None
    assert (info.instance, info.features, info.unique_id) == (None, frozenset(), "smokewatch")


def test_each_detector_of_a_prefix_has_its_own_entry_id() -> None:
    """A lone detector keeps the unique id of every entry made before instances (its node
    id); an instance's differs from it and from every other instance's."""
    lone = parse_info(json.dumps(golden("info.json")))
    instance = parse_info(json.dumps(golden("info_instance.json")))
    assert lone is not None and instance is not None
    assert lone.unique_id == golden("info.json")["node_id"]
    assert instance.unique_id not in (lone.unique_id, instance.raw["device_id"])
    other = parse_info(json.dumps({**golden("info_instance.json"), "instance": "c"}))
    assert other is not None and other.unique_id != instance.unique_id


def test_topic_leaves_are_the_golden_ones() -> None:
    """The leaves the integration reads and writes are the detector's."""
    detector = {
        "info": const.INFO_LEAF,
        "stats": const.STATS_LEAF,
        "available": const.AVAILABLE_LEAF,
    }
    assert detector == TOPICS["detector"]
    bridge = {"available": const.BRIDGE_AVAILABLE_LEAF, "stats": const.BRIDGE_STATS_LEAF}
    assert bridge == TOPICS["bridge"]
    assert const.SETTING_MASKS in TOPICS["settings"]
    # The buttons its services press; "file_settings" is pressed through its MQTT button entity.
    buttons = [const.BUTTON_RESET, const.BUTTON_TEST, const.BUTTON_FALSE_ALARM]
    assert set(buttons) <= set(TOPICS["buttons"])
    assert set(TOPICS["buttons"]) - set(buttons) == {"file_settings"}
    assert TOPICS["press"] == const.PAYLOAD_PRESS
    assert command_topic("p", "cam", "x") == "p/cam/" + TOPICS["command"].format(setting="x")
    assert result_topic("p", "cam", "x") == "p/cam/" + COMMAND_REQUEST["result_leaf"].format(
        command="x"
    )
    assert detector_topic("p", "info") == "p/info"
    # Several detectors on one prefix: each one's own leaves below instance/<id>/, the
    # bridge's below the prefix.
    for leaf in TOPICS["detector"].values():
        instance_leaf = TOPICS["instance"].format(instance="b", leaf=leaf)
        assert detector_topic("p", leaf, "b") == f"p/{instance_leaf}"
    assert info_topic("p", "b") == "p/" + TOPICS["instance"].format(instance="b", leaf="info")
    assert instance_info_topics("p") == "p/" + TOPICS["instance"].format(instance="+", leaf="info")
    assert prefix_topic("p", const.BRIDGE_STATS_LEAF) == "p/bridge/stats"


def test_golden_answers_are_read() -> None:
    """The detector's answers (done, refused with its reason) are understood; a request
    envelope has the golden keys."""
    for name in ("done", "refused"):
        answer = COMMAND_REQUEST[name]
        assert parse_answer(json.dumps(answer)) == (
            answer["request_id"],
            answer["ok"],
            answer["reason"],
        )
    assert set(COMMAND_REQUEST["request"]) == {const.REQUEST_ID, const.REQUEST_VALUE}


def test_mask_limits_are_the_golden_ones() -> None:
    """The integration refuses exactly beyond what the detector takes."""
    assert MASKS_RULES["limits"] == {
        "max_masks": const.MAX_ZONES,
        "max_points": const.MAX_ZONE_POINTS,
    }


async def test_golden_health_payloads_are_read(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """The detector's and the bridge's health arrive on the golden topics and are kept."""
    entry, _ = await setup_detector()
    runtime = entry.runtime_data
    stats = golden("stats.json")
    async_fire_mqtt_message(hass, f"{PREFIX}/{TOPICS['detector']['stats']}", json.dumps(stats))
    async_fire_mqtt_message(hass, f"{PREFIX}/{TOPICS['bridge']['available']}", "online")
    bridge = golden("bridge_stats.json")
    async_fire_mqtt_message(hass, f"{PREFIX}/{TOPICS['bridge']['stats']}", json.dumps(bridge))
    await hass.async_block_till_done()
    assert runtime.stats == stats
    assert runtime.bridge is not None
    assert runtime.bridge.available == "online"
    assert runtime.bridge.stats == bridge
    # The figures the bridge-failing repair issue reads (see test_runtime.py).
    assert isinstance(bridge["pending"], int) and isinstance(bridge["failed"], int)
    assert isinstance(bridge["last_error"], str)
    assert runtime.online and runtime.info is not None
    assert runtime.info.raw == golden("info.json")


@pytest.mark.parametrize(
    ("name", "command"),
    [(name, command) for name, command in golden("commands.json").items() if command["service"]],
)
async def test_services_send_the_golden_commands(
    hass: HomeAssistant, setup_detector: SetupDetector, name: str, command: dict[str, Any]
) -> None:
    """Each service sends the command the detector was shown to accept, inside the request
    envelope of command_request.json, and returns on the detector's answer to it."""
    _, mqtt_mock = await setup_detector()
    data: dict[str, Any] = {"device_id": backyard(hass)}
    if command["service"] == "set_zones":
        data["zones"] = command["payload"]
    mqtt_mock.async_publish.reset_mock()
    await hass.services.async_call(DOMAIN, command["service"], data, blocking=True)
    mqtt_mock.async_publish.assert_called_once()
    topic, payload, qos, retain = mqtt_mock.async_publish.call_args.args
    leaf = TOPICS["command"].format(setting=command["setting"])
    assert (topic, qos, retain) == (f"{PREFIX}/backyard/{leaf}", 1, False)
    request_id, value = opened(payload)
    assert isinstance(request_id, str) and request_id
    expected = command["payload"]
    assert json.loads(value) == expected if isinstance(expected, list) else value == expected


async def test_an_older_detector_gets_the_golden_plain_commands(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """A detector whose info lists no `command_results` gets the plain commands of
    commands.json, and nothing waits for an answer it never sends."""
    await setup_detector(features=[])
    fake_detector.silent.add("backyard")
    for command in golden("commands.json").values():
        if not command["service"]:
            continue
        data: dict[str, Any] = {"device_id": backyard(hass)}
        if command["service"] == "set_zones":
            data["zones"] = command["payload"]
        await hass.services.async_call(DOMAIN, command["service"], data, blocking=True)
        _, leaf, payload = fake_detector.commands[-1]
        assert leaf == command["setting"]
        expected = command["payload"]
        assert (
            json.loads(payload) == expected if isinstance(expected, list) else payload == expected
        )


@pytest.mark.parametrize("case", MASKS_RULES["cases"], ids=lambda case: str(case["case"]))
async def test_set_zones_applies_the_detectors_mask_rules(
    hass: HomeAssistant, setup_detector: SetupDetector, case: dict[str, Any]
) -> None:
    """What the detector accepts is sent; what it refuses is the caller's error, at once."""
    _, mqtt_mock = await setup_detector()
    mqtt_mock.async_publish.reset_mock()
    call = hass.services.async_call(
        DOMAIN, "set_zones", {"device_id": backyard(hass), "zones": case["masks"]}, blocking=True
    )
    if case["valid"]:
        await call
        sent = json.loads(opened(mqtt_mock.async_publish.call_args.args[1])[1])
        assert [mask["name"] for mask in sent] == [mask["name"] for mask in case["masks"]]
        return
    with pytest.raises(ServiceValidationError) as err:
        await call
    assert err.value.translation_key == case["ha_error"]
    if "ha_says" in case:
        assert case["ha_says"] in (err.value.translation_placeholders or {})["reason"]
    mqtt_mock.async_publish.assert_not_called()


async def test_a_call_before_the_info_waits_for_it(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """At start-up a service may come before the retained info: it waits, then acts."""
    _, mqtt_mock = await setup_detector(online=False)
    for camera, name in CAMERAS.items():
        fire_camera_discovery(hass, camera, name)
    await hass.async_block_till_done()
    device = backyard(hass)
    mqtt_mock.async_publish.reset_mock()
    call = asyncio.ensure_future(
        hass.services.async_call(DOMAIN, "reset_alert", {"device_id": device}, blocking=True)
    )
    await asyncio.sleep(0)
    assert not call.done()
    async_fire_mqtt_message(hass, f"{PREFIX}/info", json.dumps(golden("info.json")), retain=True)
    await call
    topic, payload = mqtt_mock.async_publish.call_args.args[:2]
    assert (topic, opened(payload)[1]) == (f"{PREFIX}/backyard/reset/set", "PRESS")


async def test_no_info_at_all_is_a_clear_error(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Without the detector's info nothing says which camera a device is: nothing is sent."""
    _, mqtt_mock = await setup_detector(online=False)
    fire_camera_discovery(hass, "backyard", CAMERAS["backyard"])
    await hass.async_block_till_done()
    mqtt_mock.async_publish.reset_mock()
    with (
        patch("custom_components.smokewatch.runtime.INFO_WAIT_SECONDS", 0.05),
        pytest.raises(ServiceValidationError) as err,
    ):
        await hass.services.async_call(
            DOMAIN, "reset_alert", {"device_id": backyard(hass)}, blocking=True
        )
    assert err.value.translation_key == "no_detector_info"
    assert (err.value.translation_placeholders or {})["prefixes"] == PREFIX
    mqtt_mock.async_publish.assert_not_called()
