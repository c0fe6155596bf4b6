"""The ids Home Assistant keeps entities and devices by: built in one place, the same everywhere."""

from __future__ import annotations

import dataclasses
from typing import Any

from detector.bridge.bridge_service import discovery_payloads
from detector.config import Config, validate
from detector.contract import (
    bridge_device_id,
    camera_device_id,
    config_topic,
    detector_device_id,
    entity_unique_id,
)
from detector.service import discovery


def _config() -> Config:
    return validate(
        {
            "cameras": {"ridge": {}, "valley": {}},
            "bridge": {"cameras": {"ridge": {"token": "t", "pose_id": 1}}},
        }
    )


def test_ids_keep_their_published_form() -> None:
    # A changed id is a new entity in Home Assistant (and the old one orphaned).
    mqtt = _config().mqtt
    assert detector_device_id(mqtt) == "smokewatch_detector"
    assert detector_device_id(dataclasses.replace(mqtt, instance="b")) == "smokewatch_detector_b"
    assert camera_device_id(mqtt, "ridge") == "smokewatch_ridge"
    assert bridge_device_id(mqtt) == "smokewatch_bridge"
    assert entity_unique_id("smokewatch_ridge", "smoke") == "smokewatch_ridge_smoke"
    assert config_topic(mqtt, "sensor", "x_y") == "homeassistant/sensor/x_y/config"


def _entities(config: Config) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, unique id, payload) of every discovered entity of the service and bridge."""
    found = []
    payloads = dict(discovery.detector_entities(config.mqtt))
    for camera in config.cameras.values():
        payloads.update(discovery.camera_entities(config.mqtt, camera))
    for (component, unique_id), payload in payloads.items():
        found.append((component, unique_id, payload))
    for topic, payload in discovery_payloads(config).items():
        component = topic.split("/")[1]
        assert topic == config_topic(config.mqtt, component, payload["unique_id"])
        found.append((component, payload["unique_id"], payload))
    return found


def test_every_unique_id_is_its_device_id_and_a_key() -> None:
    config = _config()
    entities = _entities(config)
    devices = {
        detector_device_id(config.mqtt),
        bridge_device_id(config.mqtt),
        *(camera_device_id(config.mqtt, camera) for camera in config.cameras),
    }
    seen_devices = set()
    for _component, unique_id, payload in entities:
        (device_id,) = payload["device"]["identifiers"]
        seen_devices.add(device_id)
        assert unique_id.startswith(f"{device_id}_"), (unique_id, device_id)
        assert payload.get("unique_id", unique_id) == unique_id
    assert seen_devices == devices
    assert len({unique_id for _, unique_id, _ in entities}) == len(entities)
