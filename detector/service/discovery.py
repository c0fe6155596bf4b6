"""Home Assistant MQTT discovery payloads (single-component form).

Every entity carries unique_id, device, origin and availability; names are short because HA
prefixes them with the device name (has_entity_name): device "Backyard" + "Smoke" gives
binary_sensor.backyard_smoke. No object_id key: HA deprecated it in 2025.10.

Each camera device also gets two MQTT device triggers, "Smoke alert" started / ended, and an
event entity, both fed by the camera's non-retained P/<cam>/smoke/event topic: Home Assistant
offers them on the camera's device page with the MQTT integration alone.
"""

from __future__ import annotations

from typing import Any

from detector import __version__
from detector import contract as wire
from detector.config import CameraConfig, MqttConfig
from detector.config.detection import THRESHOLD_MAX, THRESHOLD_MIN
from detector.contract import (
    ORIGIN,
    PRESS,
    camera_device_id,
    camera_topic,
    command_leaf,
    detector_device_id,
    entity_unique_id,
    prefixed,
    state_leaf,
)
from detector.view import VIEW_STATES

# (component, key) of every camera entity, the order they are published in.
CAMERA_ENTITIES = (
    ("binary_sensor", "smoke"),
    ("sensor", "score"),
    ("image", "alert_image"),
    ("camera", "alert_camera"),
    ("switch", "enabled"),
    ("number", "threshold"),
    ("button", "reset"),
    ("button", "test"),
    ("button", "file_settings"),
    ("sensor", "status"),
    ("sensor", "view"),
    ("event", "smoke_alert"),
    ("image", "scored_frame"),
    ("sensor", "masks"),
)
# (component, key) of every camera device trigger: key = "smoke_alert_<type>".
SMOKE_EVENT_TYPES = ("started", "ended")
CAMERA_TRIGGERS = tuple(("device_automation", f"smoke_alert_{kind}") for kind in SMOKE_EVENT_TYPES)
# Everything a camera publishes discovery for (and empties when the camera leaves the config).
CAMERA_DISCOVERY = CAMERA_ENTITIES + CAMERA_TRIGGERS
DETECTOR_ENTITIES = (
    ("sensor", "inference_ms"),
    ("sensor", "frames_dropped"),
    ("sensor", "model"),
    ("binary_sensor", "problem"),
    ("binary_sensor", "inference"),
)


def _detector(mqtt: MqttConfig, leaf: str) -> str:
    """The full topic of one of this detector's own leaves."""
    return prefixed(mqtt.topic_prefix, mqtt.detector_topic(leaf))


def _availability(mqtt: MqttConfig, camera: str | None) -> dict[str, Any]:
    entries: list[dict[str, str]] = [{"topic": _detector(mqtt, wire.AVAILABLE)}]
    if camera is not None:
        entries.append(
            {
                "topic": prefixed(mqtt.topic_prefix, camera_topic(camera, wire.STATUS)),
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        )
    return {"availability": entries, "availability_mode": "all"}


def detector_device(mqtt: MqttConfig) -> dict[str, Any]:
    """The device that groups the detector's health entities."""
    return {
        "identifiers": [detector_device_id(mqtt)],
        "name": f"SmokeWatch {mqtt.instance}" if mqtt.instance else "SmokeWatch",
        "manufacturer": "SmokeWatch",
        "model": "Smoke detector",
        "sw_version": __version__,
    }


def camera_entities(
    mqtt: MqttConfig, camera: CameraConfig
) -> dict[tuple[str, str], dict[str, Any]]:
    """Discovery payloads of one camera's entities and device triggers, by (component, id)."""

    def leaf(name: str) -> str:
        return prefixed(mqtt.topic_prefix, camera_topic(camera.id, name))

    device = {
        "identifiers": [camera_device_id(mqtt, camera.id)],
        "name": camera.name,
        "manufacturer": "SmokeWatch",
        "model": "Smoke detection camera",
        "via_device": detector_device_id(mqtt),
    }
    specific: dict[str, dict[str, Any]] = {
        "smoke": {
            "name": "Smoke",
            "device_class": "smoke",
            "state_topic": leaf(wire.SMOKE),
            "payload_on": "ON",
            "payload_off": "OFF",
            "json_attributes_topic": leaf(wire.SMOKE_ATTRIBUTES),
        },
        "score": {
            "name": "Smoke score",
            "state_topic": leaf(wire.SCORE),
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "icon": "mdi:smoke",
        },
        "alert_image": {
            "name": "Alert image",
            "image_topic": leaf(wire.ALERT_IMAGE),
            "content_type": "image/jpeg",
        },
        "alert_camera": {"name": "Alert image", "topic": leaf(wire.ALERT_IMAGE)},
        "enabled": {
            "name": "Detection",
            "command_topic": leaf(command_leaf(wire.ENABLED)),
            "state_topic": leaf(state_leaf(wire.ENABLED)),
            "payload_on": "ON",
            "payload_off": "OFF",
            "entity_category": "config",
            "icon": "mdi:cctv",
        },
        # Shown in % like the score it is compared with; the wire (and the file) keep 0..1.
        "threshold": {
            "name": "Smoke threshold",
            "command_topic": leaf(command_leaf(wire.THRESHOLD)),
            "command_template": "{{ (value / 100) | round(2) }}",
            "state_topic": leaf(state_leaf(wire.THRESHOLD)),
            "value_template": "{{ (value | float * 100) | round(0) | int }}",
            "min": round(THRESHOLD_MIN * 100),
            "max": round(THRESHOLD_MAX * 100),
            "step": 1,
            "unit_of_measurement": "%",
            "mode": "box",
            "entity_category": "config",
            # Where each setting comes from: the file, or a change made at run time.
            "json_attributes_topic": leaf(wire.SETTINGS_SOURCES),
        },
        "file_settings": {
            "name": "Use file settings",
            "command_topic": leaf(command_leaf(wire.FILE_SETTINGS)),
            "payload_press": PRESS,
            "entity_category": "config",
            "icon": "mdi:file-restore",
        },
        "reset": {
            "name": "Reset",
            "command_topic": leaf(command_leaf(wire.RESET)),
            "payload_press": PRESS,
            "icon": "mdi:restore-alert",
        },
        "test": {
            "name": "Test alert",
            "command_topic": leaf(command_leaf(wire.TEST)),
            "payload_press": PRESS,
            "entity_category": "diagnostic",
            "icon": "mdi:bell-ring",
        },
        "status": {
            "name": "Status",
            "state_topic": leaf(wire.STATUS),
            "device_class": "enum",
            # frozen: the same frame over and over; refused: frames arrive, but none could be
            # scored (see the stats' errors)
            "options": list(wire.CAMERA_STATUSES),
            "entity_category": "diagnostic",
        },
        "view": {
            "name": "View",
            "state_topic": leaf(wire.VIEW),
            "device_class": "enum",
            "options": list(VIEW_STATES),
            "entity_category": "diagnostic",
            "icon": "mdi:eye",
        },
        "smoke_alert": {
            "name": "Smoke alert",
            "state_topic": leaf(wire.SMOKE_EVENT),
            "event_types": list(SMOKE_EVENT_TYPES),
            "icon": "mdi:fire-alert",
        },
        # The picture the zone card draws on: the latest scored frame, at a bounded rate.
        "scored_frame": {
            "name": "Scored frame",
            "image_topic": leaf(wire.FRAME),
            "content_type": "image/jpeg",
            "entity_category": "diagnostic",
        },
        # The zone card reads every mask (local, the API's, dismissed false alarms) from here.
        "masks": {
            "name": "Masks",
            "state_topic": leaf(wire.MASKS_ATTRIBUTES),
            "value_template": "{{ value_json.local | count }}",
            "json_attributes_topic": leaf(wire.MASKS_ATTRIBUTES),
            "entity_category": "diagnostic",
            "icon": "mdi:vector-polygon",
        },
    }
    payloads: dict[tuple[str, str], dict[str, Any]] = {}
    for component, key in CAMERA_ENTITIES:
        unique_id = entity_unique_id(camera_device_id(mqtt, camera.id), key)
        # The status sensor must stay available to say "offline".
        availability = _availability(mqtt, None if key == "status" else camera.id)
        payloads[(component, unique_id)] = {
            **specific[key],
            "unique_id": unique_id,
            "device": device,
            "origin": ORIGIN,
            **availability,
        }
    for component, key in CAMERA_TRIGGERS:
        kind = key.removeprefix("smoke_alert_")
        # Shown as '"Smoke alert" started' in HA's automation editor (a type HA has no
        # translation for renders as "<subtype> <type>"). value_template picks the event type
        # out of the JSON event, so `payload` matches one kind only.
        payloads[(component, entity_unique_id(camera_device_id(mqtt, camera.id), key))] = {
            "automation_type": "trigger",
            "topic": leaf(wire.SMOKE_EVENT),
            "value_template": "{{ value_json.event_type }}",
            "payload": kind,
            "type": kind,
            "subtype": "Smoke alert",
            "qos": 1,
            "device": device,
            "origin": ORIGIN,
        }
    return payloads


def detector_entities(mqtt: MqttConfig) -> dict[tuple[str, str], dict[str, Any]]:
    """Discovery payloads of the detector's health entities."""
    stats = _detector(mqtt, wire.STATS)
    specific: dict[str, dict[str, Any]] = {
        "inference_ms": {
            "name": "Inference time",
            "state_topic": stats,
            "value_template": "{{ value_json.inference_ms }}",
            "unit_of_measurement": "ms",
            "device_class": "duration",
            "state_class": "measurement",
            # Changes every stats interval: recorded only when the user asks for it.
            "enabled_by_default": False,
        },
        "frames_dropped": {
            "name": "Frames dropped",
            "state_topic": stats,
            "value_template": "{{ value_json.frames_dropped }}",
            "state_class": "total_increasing",
            "icon": "mdi:image-remove",
            "enabled_by_default": False,
        },
        # ON while a part of the detector is at fault (stats `healthy`), the reasons attached.
        "problem": {
            "name": "Problem",
            "state_topic": stats,
            "device_class": "problem",
            "value_template": "{{ 'OFF' if value_json.healthy else 'ON' }}",
            "payload_on": "ON",
            "payload_off": "OFF",
            "json_attributes_topic": stats,
            "json_attributes_template": "{{ {'faults': value_json.faults} | tojson }}",
        },
        "model": {
            "name": "Model",
            "state_topic": _detector(mqtt, wire.INFO),
            "value_template": "{{ value_json.model }}",
            "icon": "mdi:brain",
        },
        # Whether the model answers: always for a local model; for an inference server,
        # whether its last request succeeded.
        "inference": {
            "name": "Inference",
            "state_topic": stats,
            "value_template": "{{ 'ON' if value_json.model.healthy else 'OFF' }}",
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "connectivity",
        },
    }
    payloads: dict[tuple[str, str], dict[str, Any]] = {}
    for component, key in DETECTOR_ENTITIES:
        unique_id = entity_unique_id(detector_device_id(mqtt), key)
        payloads[(component, unique_id)] = {
            **specific[key],
            "unique_id": unique_id,
            "entity_category": "diagnostic",
            "device": detector_device(mqtt),
            "origin": ORIGIN,
            **_availability(mqtt, None),
        }
    return payloads
