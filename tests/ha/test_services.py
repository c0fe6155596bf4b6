"""Services: the payloads they publish on the command topics, and the errors they report."""

from __future__ import annotations

import json
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from custom_components.smokewatch.const import DOMAIN

from .conftest import SetupDetector

ZONE = {"name": "chimney", "polygon": [[0.7, 0.1], [0.85, 0.1], [0.85, 0.4], [0.7, 0.4]]}


def camera_device(hass: HomeAssistant, camera: str = "backyard_cam") -> str:
    """The id of the camera device MQTT discovery created (found through its smoke sensor)."""
    entity = er.async_get(hass).async_get(f"binary_sensor.{camera}_smoke")
    assert entity is not None and entity.device_id is not None
    return entity.device_id


async def test_set_zones_publishes_masks(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """set_zones publishes the detector's masks JSON on P/<cam>/masks/set."""
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
    assert json.loads(payload) == [
        {"name": "chimney", "polygon": ZONE["polygon"], "rule": "inside", "enabled": True},
        {"name": "road", "polygon": ZONE["polygon"], "rule": "iou", "enabled": True},
    ]


@pytest.mark.parametrize(
    ("service", "setting", "payload"),
    [
        ("clear_zones", "masks", "[]"),
        ("reset_alert", "reset", "PRESS"),
        ("test_alert", "test", "PRESS"),
        ("mark_false_alarm", "false_alarm", "PRESS"),
    ],
)
async def test_command_services(
    hass: HomeAssistant, setup_detector: SetupDetector, service: str, setting: str, payload: str
) -> None:
    """Every targeted camera gets the command on its own topic."""
    _, mqtt_mock = await setup_detector()
    mqtt_mock.async_publish.reset_mock()
    await hass.services.async_call(
        DOMAIN,
        service,
        {"device_id": [camera_device(hass, "backyard_cam"), camera_device(hass, "ridge")]},
        blocking=True,
    )
    # Positional (topic, payload, qos, retain): newer HA adds keyword arguments of its own.
    assert sorted(c.args for c in mqtt_mock.async_publish.call_args_list) == [
        (f"smokewatch/backyard/{setting}/set", payload, 1, False),
        (f"smokewatch/ridge/{setting}/set", payload, 1, False),
    ]


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
    assert mqtt_mock.async_publish.call_args.args == (
        "smokewatch/backyard/reset/set",
        "PRESS",
        1,
        False,
    )


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
    assert "broker gone" in str(err.value.translation_placeholders)


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
