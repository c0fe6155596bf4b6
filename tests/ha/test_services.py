"""Services: the commands they publish, the detector's answers they wait for, and the errors
they report (a refusal with the detector's reason, no answer, a wrong target)."""

from __future__ import annotations

import asyncio
import json
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.translation import async_get_translations
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import MqttMockPahoClient

from custom_components.smokewatch.const import DOMAIN

from .conftest import (
    COMMAND_REQUEST,
    FakeDetector,
    SetupDetector,
    detector_entry,
    detector_topic,
    fire_camera_discovery,
    info_payload,
    opened,
)

ZONE = {"name": "chimney", "polygon": [[0.7, 0.1], [0.85, 0.1], [0.85, 0.4], [0.7, 0.4]]}
# What the detector says when "Not smoke" comes with no alert (command_request.json).
NO_ALERT = COMMAND_REQUEST["refused"]["reason"]


def camera_device(hass: HomeAssistant, camera: str = "backyard_cam") -> str:
    """The id of the camera device MQTT discovery created (found through its smoke sensor)."""
    entity = er.async_get(hass).async_get(f"binary_sensor.{camera}_smoke")
    assert entity is not None and entity.device_id is not None
    return entity.device_id


async def on_both_cameras(hass: HomeAssistant, service: str) -> None:
    """Call `service` on the Backyard Cam and Ridge devices at once, as one service call."""
    await hass.services.async_call(
        DOMAIN,
        service,
        {"device_id": [camera_device(hass, "backyard_cam"), camera_device(hass, "ridge")]},
        blocking=True,
    )


async def user_message(hass: HomeAssistant, err: HomeAssistantError) -> str:
    """The message Home Assistant shows for an error: its translation (translations/en.json)
    with the placeholders filled in."""
    await async_get_translations(hass, "en", "exceptions", {DOMAIN})
    message = str(err)
    assert message != err.translation_key, f"no translation for {err.translation_key}"
    return message


async def test_set_zones_sends_masks_and_waits_for_the_answer(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """set_zones publishes the detector's masks JSON on P/<cam>/masks/set in a request
    envelope; the call returns once the detector answered that request."""
    _, mqtt_mock = await setup_detector()
    mqtt_mock.async_publish.reset_mock()
    await hass.services.async_call(
        DOMAIN,
        "set_zones",
        {
            "device_id": camera_device(hass),
            "zones": [ZONE, {**ZONE, "name": "road", "rule": "iou"}],
        },
        blocking=True,
    )
    mqtt_mock.async_publish.assert_called_once()
    topic, payload, qos, retain = mqtt_mock.async_publish.call_args.args
    assert (topic, qos, retain) == ("smokewatch/backyard/masks/set", 1, False)
    request_id, value = opened(payload)
    assert json.loads(value) == [
        {"name": "chimney", "polygon": ZONE["polygon"], "rule": "inside", "enabled": True},
        {"name": "road", "polygon": ZONE["polygon"], "rule": "iou", "enabled": True},
    ]
    assert fake_detector.requests("backyard") == [json.loads(payload)]
    assert request_id is not None and len(request_id) <= 64


@pytest.mark.parametrize(
    ("service", "setting", "value"),
    [
        ("clear_zones", "masks", "[]"),
        ("reset_alert", "reset", "PRESS"),
        ("test_alert", "test", "PRESS"),
        ("mark_false_alarm", "false_alarm", "PRESS"),
    ],
)
async def test_command_services(
    hass: HomeAssistant, setup_detector: SetupDetector, service: str, setting: str, value: str
) -> None:
    """Every targeted camera gets the command on its own topic, with a request id of its own."""
    _, mqtt_mock = await setup_detector()
    mqtt_mock.async_publish.reset_mock()
    await on_both_cameras(hass, service)
    # Positional (topic, payload, qos, retain): newer HA adds keyword arguments of its own.
    sent = sorted(c.args for c in mqtt_mock.async_publish.call_args_list)
    assert [(topic, opened(payload)[1], qos, retain) for topic, payload, qos, retain in sent] == [
        (f"smokewatch/backyard/{setting}/set", value, 1, False),
        (f"smokewatch/ridge/{setting}/set", value, 1, False),
    ]
    ids = {opened(payload)[0] for _, payload, _, _ in sent}
    assert len(ids) == 2 and None not in ids


async def test_refusal_is_an_error_with_the_detectors_reason(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """ "Not smoke" with no alert: the detector refuses, and the user reads its reason (not a
    success with a warning in the detector's log)."""
    await setup_detector()
    fake_detector.refuse["backyard"] = NO_ALERT
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "mark_false_alarm", {"device_id": camera_device(hass)}, blocking=True
        )
    assert err.value.translation_key == "command_refused"
    message = await user_message(hass, err.value)
    assert NO_ALERT in message and "Backyard Cam" in message


async def test_no_answer_is_an_error(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """A detector that does not answer in time (offline, stopped) is an error that says so,
    after a bounded wait: one for all the cameras, not one after the other."""
    await setup_detector()
    fake_detector.silent |= {"backyard", "ridge"}
    started = asyncio.get_running_loop().time()
    with (
        patch("custom_components.smokewatch.commands.RESULT_WAIT_SECONDS", 0.6),
        pytest.raises(HomeAssistantError) as err,
    ):
        await on_both_cameras(hass, "reset_alert")
    assert asyncio.get_running_loop().time() - started < 1.15  # twice the wait, had it queued
    assert not isinstance(err.value, ServiceValidationError)  # the path failed, not the user
    assert err.value.translation_key == "no_answer"
    message = await user_message(hass, err.value)
    assert "Backyard Cam" in message and "Ridge" in message and "0.6 s" in message
    assert fake_detector.requests("backyard") and fake_detector.requests("ridge")  # sent


async def test_several_cameras_one_refused(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """The cameras are commanded at once; the error names only the one that refused, with its
    reason (the other camera carried the command out)."""
    await setup_detector()
    fake_detector.refuse["ridge"] = "test: a test alert is refused while an alert is on"
    with pytest.raises(ServiceValidationError) as err:
        await on_both_cameras(hass, "test_alert")
    message = await user_message(hass, err.value)
    assert "Ridge: test: a test alert is refused while an alert is on" in message
    assert "Backyard Cam" not in message
    assert len(fake_detector.requests("backyard")) == len(fake_detector.requests("ridge")) == 1


async def test_several_cameras_one_silent_one_refused(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """One camera's detector does not answer, the other's refuses: the error tells both."""
    await setup_detector()
    fake_detector.silent.add("backyard")
    fake_detector.refuse["ridge"] = NO_ALERT
    with (
        patch("custom_components.smokewatch.commands.RESULT_WAIT_SECONDS", 0.3),
        pytest.raises(HomeAssistantError) as err,
    ):
        await on_both_cameras(hass, "mark_false_alarm")
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "no_answer_and_refused"
    message = await user_message(hass, err.value)
    assert "for Backyard Cam" in message and f"Ridge: {NO_ALERT}" in message


async def test_an_older_detector_gets_the_plain_command_and_no_wait(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """A detector whose info does not list `command_results` gets `PRESS` as before; the
    call returns without waiting for an answer that never comes."""
    _, mqtt_mock = await setup_detector(features=[])
    fake_detector.silent.add("backyard")
    mqtt_mock.async_publish.reset_mock()
    async with asyncio.timeout(5):  # far below the wait for an answer (10 s)
        await hass.services.async_call(
            DOMAIN, "mark_false_alarm", {"device_id": camera_device(hass)}, blocking=True
        )
    assert mqtt_mock.async_publish.call_args.args == (
        "smokewatch/backyard/false_alarm/set",
        "PRESS",
        1,
        False,
    )


@pytest.mark.parametrize("subscribe_cooldown", [0.5])  # HA's own, until its birth message
async def test_the_answers_are_subscribed_before_the_command_is_published(
    hass: HomeAssistant, setup_detector: SetupDetector, mqtt_client_mock: MqttMockPahoClient
) -> None:
    """Right after setup Home Assistant has not yet sent its subscriptions (it batches them):
    the call waits until the answers' subscription has gone out before publishing."""
    await setup_detector()
    mqtt_client_mock.reset_mock()
    await hass.services.async_call(
        DOMAIN, "reset_alert", {"device_id": camera_device(hass)}, blocking=True
    )
    calls = [
        (c[0], c.args) for c in mqtt_client_mock.mock_calls if c[0] in ("subscribe", "publish")
    ]
    publish = next(i for i, (name, args) in enumerate(calls) if name == "publish")
    subscribed = [
        args for name, args in calls[:publish] if name == "subscribe" and "result" in str(args)
    ]
    assert subscribed, calls
    assert "smokewatch/+/+/result" in str(subscribed)


async def test_nothing_is_sent_before_the_answers_can_be_heard(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """When the subscription to the answers does not go out (MQTT disconnected), the command
    is not sent: the user is told why instead of a command whose answer would be lost."""
    await setup_detector()
    with (
        patch("custom_components.smokewatch.commands.RESULT_WAIT_SECONDS", 0.2),
        patch(
            "homeassistant.components.mqtt.async_on_subscribe_done",
            return_value=lambda: None,  # the broker never acknowledges
        ),
        pytest.raises(HomeAssistantError) as err,
    ):
        await hass.services.async_call(
            DOMAIN, "reset_alert", {"device_id": camera_device(hass)}, blocking=True
        )
    assert err.value.translation_key == "not_subscribed"
    assert "smokewatch/+/+/result" in await user_message(hass, err.value)
    assert fake_detector.commands == []


async def test_entity_target_resolves_to_its_camera(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Targeting a camera's entity (e.g. its smoke sensor) acts on that camera."""
    _, mqtt_mock = await setup_detector()
    entity_id = er.async_get(hass).async_get_entity_id(
        "binary_sensor", "mqtt", "smokewatch_backyard_smoke"
    )
    assert entity_id == "binary_sensor.backyard_cam_smoke"
    mqtt_mock.async_publish.reset_mock()
    await hass.services.async_call(DOMAIN, "reset_alert", {"entity_id": entity_id}, blocking=True)
    mqtt_mock.async_publish.assert_called_once()
    topic, payload, _, _ = mqtt_mock.async_publish.call_args.args
    assert (topic, opened(payload)[1]) == ("smokewatch/backyard/reset/set", "PRESS")


async def test_services_reach_the_cameras_of_each_instance(
    hass: HomeAssistant, setup_detector: SetupDetector, fake_detector: FakeDetector
) -> None:
    """Two detectors share the prefix, each with its entry: one call reaches a camera of
    each, on the cameras' own topics, and waits for both answers (each detector's info lists
    `command_results`)."""
    await setup_detector(online=False)
    for instance, camera, name in (("a", "north", "North"), ("b", "valley", "Valley")):
        entry = detector_entry(instance=instance)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        fire_camera_discovery(hass, camera, name, instance=instance)
        async_fire_mqtt_message(
            hass,
            detector_topic("info", instance=instance),
            info_payload(instance=instance, cameras={camera: name}),
            retain=True,
        )
    await hass.async_block_till_done()
    fake_detector.refuse["valley"] = NO_ALERT
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "mark_false_alarm",
            {"device_id": [camera_device(hass, "north"), camera_device(hass, "valley")]},
            blocking=True,
        )
    assert sorted((camera, command) for camera, command, _ in fake_detector.commands) == [
        ("north", "false_alarm"),
        ("valley", "false_alarm"),
    ]
    message = await user_message(hass, err.value)
    assert f"Valley: {NO_ALERT}" in message and "North" not in message


async def test_non_smokewatch_device_rejected(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """A device that is not a SmokeWatch camera (or the detector device) is an error."""
    entry, _ = await setup_detector()
    registry = dr.async_get(hass)
    other = registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("hue", "lamp")}, name="Lamp"
    )
    for device_id in (other.id, "no-such-device"):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN, "reset_alert", {"device_id": device_id}, blocking=True
            )
        assert err.value.translation_key == "not_a_camera"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "test_alert", {}, blocking=True)
    assert err.value.translation_key == "no_target"


async def test_publish_failure_reported(hass: HomeAssistant, setup_detector: SetupDetector) -> None:
    """When MQTT cannot publish, the caller gets a translated HomeAssistantError."""
    _, mqtt_mock = await setup_detector()
    mqtt_mock.async_publish.side_effect = HomeAssistantError("broker gone")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "reset_alert", {"device_id": camera_device(hass)}, blocking=True
        )
    assert err.value.translation_key == "publish_failed"
    assert "broker gone" in await user_message(hass, err.value)


async def test_no_device_is_taken_for_a_camera_by_its_identifier(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Before the detector's info, the bridge's device ("<node>_bridge") is no camera
    "bridge": only the info says which devices are cameras, nothing is guessed from an id."""
    entry, mqtt_mock = await setup_detector(online=False)
    bridge = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("mqtt", "smokewatch_bridge")}, name="Bridge"
    )
    mqtt_mock.async_publish.reset_mock()
    with (
        patch("custom_components.smokewatch.runtime.INFO_WAIT_SECONDS", 0.05),
        pytest.raises(ServiceValidationError),
    ):
        await hass.services.async_call(
            DOMAIN, "reset_alert", {"device_id": bridge.id}, blocking=True
        )
    mqtt_mock.async_publish.assert_not_called()
