"""integration/: the blueprint passes Home Assistant's blueprint validation, the dashboard loads."""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.automation.config import (
    AUTOMATION_BLUEPRINT_SCHEMA,
    async_validate_config_item,
)
from homeassistant.components.blueprint import models
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict

from .conftest import SetupDetector

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
