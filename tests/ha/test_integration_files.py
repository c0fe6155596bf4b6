"""integration/: the blueprint passes Home Assistant's blueprint validation, the dashboard loads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from homeassistant.components.automation.config import (
    AUTOMATION_BLUEPRINT_SCHEMA,
    async_validate_config_item,
)
from homeassistant.components.blueprint import models
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_mock_service,
)

from .conftest import SetupDetector, opened

REPO = Path(__file__).resolve().parents[2]
BLUEPRINT = REPO / "integration/blueprints/automation/smokewatch/notify_smoke.yaml"
DASHBOARD = REPO / "integration/dashboards/smokewatch.yaml"


async def test_blueprint_is_valid_and_instantiates(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """The blueprint's schema is valid and an automation made from it validates."""
    await setup_detector()
    assert await async_setup_component(hass, "automation", {})
    blueprint = models.Blueprint(
        load_yaml_dict(str(BLUEPRINT)),
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )
    assert blueprint.metadata["name"].startswith("SmokeWatch")
    inputs = {
        "smoke_sensor": "binary_sensor.backyard_cam_smoke",
        "alert_camera": "camera.backyard_cam_alert_image",
        "notify_device": "abc123",
    }
    automation = models.BlueprintInputs(
        blueprint, {"use_blueprint": {"path": "smokewatch/notify_smoke.yaml", "input": inputs}}
    )
    automation.validate()
    config = automation.async_substitute()
    validated = await async_validate_config_item(hass, "notify", config)
    assert validated is not None
    assert validated.validation_error is None, validated.validation_error
    actions = str(config["actions"])
    assert "smokewatch.reset_alert" in actions
    assert "smokewatch.mark_false_alarm" in actions and "Not smoke" in actions
    assert "/api/camera_proxy/" in actions


def test_dashboard_loads() -> None:
    """The dashboard example is valid YAML with one view of cards."""
    dashboard = load_yaml_dict(str(DASHBOARD))
    cards = dashboard["views"][0]["cards"]
    kinds = {card["type"] for card in cards}
    assert {"entities", "history-graph", "picture-entity"} <= kinds


@pytest.mark.parametrize(
    ("button", "setting"),
    [("Acknowledge", "reset"), ("Not smoke", "false_alarm")],
)
async def test_blueprint_buttons_drive_the_camera(
    hass: HomeAssistant, setup_detector: SetupDetector, button: str, setting: str
) -> None:
    """An automation from the blueprint notifies the phone; each button commands the camera."""
    _, mqtt_mock = await setup_detector()
    phone_entry = MockConfigEntry(domain="mobile_app", title="Phone")
    phone_entry.add_to_hass(hass)
    phone = dr.async_get(hass).async_get_or_create(
        config_entry_id=phone_entry.entry_id, identifiers={("mobile_app", "phone")}, name="Phone"
    )
    notifications = async_mock_service(hass, "notify", "mobile_app_phone")
    blueprint = models.Blueprint(
        load_yaml_dict(str(BLUEPRINT)),
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )
    inputs = {
        "smoke_sensor": "binary_sensor.backyard_cam_smoke",
        "alert_camera": "camera.backyard_cam_alert_image",
        "notify_device": phone.id,
        "image_delay": 0,
    }
    config = models.BlueprintInputs(
        blueprint, {"use_blueprint": {"path": "smokewatch/notify_smoke.yaml", "input": inputs}}
    ).async_substitute()
    assert await async_setup_component(
        hass, "automation", {"automation": [{**config, "id": "notify", "alias": "notify"}]}
    )
    # Available (the retained message may come before the entity subscribed), then an alert.
    async_fire_mqtt_message(hass, "smokewatch/available", "online")
    async_fire_mqtt_message(hass, "smokewatch/backyard/smoke", "OFF")
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.backyard_cam_smoke").state == "off"  # type: ignore[union-attr]
    async_fire_mqtt_message(hass, "smokewatch/backyard/smoke", "ON")
    # The run then waits for a button for up to an hour: no async_block_till_done from here.
    await _until(lambda: notifications)
    assert len(notifications) == 1
    actions = {a["title"]: a["action"] for a in notifications[0].data["data"]["actions"]}
    assert set(actions) == {"Acknowledge", "Not smoke"}
    mqtt_mock.async_publish.reset_mock()
    hass.bus.async_fire("mobile_app_notification_action", {"action": actions[button]})
    await _until(lambda: mqtt_mock.async_publish.called)
    mqtt_mock.async_publish.assert_called_once()
    topic, payload, qos, retain = mqtt_mock.async_publish.call_args.args
    assert (topic, opened(payload)[1], qos, retain) == (
        f"smokewatch/backyard/{setting}/set",
        "PRESS",
        1,
        False,
    )


async def _until(check: Callable[[], object]) -> None:
    """Let the event loop run until `check()` is truthy; fail after about 5 seconds."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached within 5 s")
