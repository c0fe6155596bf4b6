"""The configuration: one YAML file validated with voluptuous into frozen dataclasses.

Each section lives in its own module with its defaults and a description of every key.
Errors are collected, not stopped at the first, and each names its key path, the bad value
and what is allowed; secret values never appear in them.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

from detector import redact
from detector.config.bridge import BRIDGE_SCHEMA, BridgeConfig
from detector.config.cameras import (
    CAMERA_SCHEMA,
    CAMERAS_SCHEMA,
    CameraConfig,
    camera_config,
    default_topic,
    reserved_topics,
)
from detector.config.detection import DETECTION_SCHEMA, DetectionConfig, detection_config
from detector.config.false_alarms import (
    FALSE_ALARMS_SCHEMA,
    FalseAlarmsConfig,
    false_alarms_config,
)
from detector.config.instance import INSTANCE_SCHEMA, InstanceConfig, instance_config
from detector.config.loader import Secret, load_yaml
from detector.config.logs import LOG_LEVELS, LOGGING_SCHEMA
from detector.config.model import MODEL_SCHEMA, ModelConfig, model_config
from detector.config.mqtt import MQTT_SCHEMA, MqttConfig, TlsConfig, mqtt_config, tls_errors
from detector.config.report import SECRET_KEYS, format_error, show
from detector.config.validators import mapping_or_empty, slug
from detector.contract import camera_id_problem
from detector.errors import ConfigError

__all__ = [
    "LOG_LEVELS",
    "BridgeConfig",
    "CameraConfig",
    "Config",
    "DetectionConfig",
    "FalseAlarmsConfig",
    "InstanceConfig",
    "ModelConfig",
    "MqttConfig",
    "Secret",
    "TlsConfig",
    "load_config",
    "validate",
]

ROOT_SCHEMA = vol.Schema(
    {
        vol.Optional("model", default={}): MODEL_SCHEMA,
        vol.Optional("detection", default={}): DETECTION_SCHEMA,
        vol.Optional("mqtt", default={}): MQTT_SCHEMA,
        vol.Required("cameras"): CAMERAS_SCHEMA,
        vol.Optional("bridge", default={}): vol.All(mapping_or_empty, BRIDGE_SCHEMA),
        vol.Optional("logging", default={}): LOGGING_SCHEMA,
        vol.Optional("instance", default={}): INSTANCE_SCHEMA,
        vol.Optional("false_alarms", default={}): FALSE_ALARMS_SCHEMA,
    },
    extra=vol.PREVENT_EXTRA,
)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    model: ModelConfig
    detection: DetectionConfig
    mqtt: MqttConfig
    cameras: dict[str, CameraConfig]
    bridge: BridgeConfig
    logging_level: str = "info"
    instance: InstanceConfig = dataclasses.field(default_factory=InstanceConfig)
    # Cameras of this config that other instances score (instance.count > 1).
    elsewhere: frozenset[str] = frozenset()
    false_alarms: FalseAlarmsConfig = dataclasses.field(default_factory=FalseAlarmsConfig)

    @property
    def log_level(self) -> int:
        """The logging module's level."""
        return int(getattr(logging, self.logging_level.upper()))


def _valid(schema: Any, value: Any) -> Any:
    """`value` validated by `schema`, or None when it is invalid (its errors are reported)."""
    try:
        return schema(value)
    except vol.Invalid:
        return None


def _parts(data: dict[Any, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The sections (and cameras) that validate on their own, for the cross-checks."""
    cameras = data.get("cameras")
    valid_cameras: dict[str, Any] = {}
    if isinstance(cameras, dict):
        for camera, entry in cameras.items():
            camera_id, checked = _valid(slug, camera), _valid(CAMERA_SCHEMA, entry)
            if camera_id is not None and checked is not None:
                valid_cameras[camera_id] = checked
    return (
        _valid(DETECTION_SCHEMA, data.get("detection")),
        _valid(MQTT_SCHEMA, data.get("mqtt")),
        valid_cameras,
    )


def _interval_errors(where: str, stale_after: int, offline_after: int) -> list[str]:
    if offline_after > stale_after:
        return []
    return [
        f"{where}.offline_after: {offline_after} is not allowed: expected more than "
        f"stale_after ({stale_after})"
    ]


def _cross_checks(
    detection: dict[str, Any] | None, mqtt: dict[str, Any] | None, cameras: dict[str, Any]
) -> list[str]:
    """Checks that involve several keys, on whichever parts are valid by themselves."""
    errors: list[str] = []
    if detection is not None:
        errors += _interval_errors(
            "detection", detection["stale_after"], detection["offline_after"]
        )
    if mqtt is not None:
        errors += tls_errors(mqtt["tls"])
    topics: dict[str, str] = {}
    reserved = reserved_topics(mqtt["topic_prefix"], list(cameras)) if mqtt else set()
    for camera, entry in cameras.items():
        problem = camera_id_problem(camera)
        if problem is not None:
            errors.append(
                f"cameras.{camera}: {problem} is not allowed as a camera id: expected another"
                " id (the devices and topics of SmokeWatch itself would clash)"
            )
        # A camera that overrides neither key inherits an error already reported once.
        if "stale_after" in entry or "offline_after" in entry:
            resolved = {**(detection or {}), **entry}
            if "stale_after" in resolved and "offline_after" in resolved:
                errors += _interval_errors(
                    f"cameras.{camera}", resolved["stale_after"], resolved["offline_after"]
                )
        if "topic" in entry:
            image_topic, shown = entry["topic"], show(entry["topic"])
        elif mqtt is not None:
            image_topic = default_topic(mqtt["topic_prefix"], camera)
            shown = f"{show(image_topic)} (the default)"
        else:
            continue
        if image_topic in reserved:
            errors.append(
                f"cameras.{camera}.topic: {shown} is not allowed: expected a topic SmokeWatch "
                "does not publish itself"
            )
        other = topics.setdefault(image_topic, camera)
        if other != camera:
            errors.append(
                f"cameras.{camera}.topic: {shown} is not allowed: expected a topic of its own "
                f"(camera {other} uses it)"
            )
    return errors


def secret_values(data: Any) -> set[str]:
    """Every secret value in raw configuration data: `!secret`/`!env` values, the values of
    password and token keys (of any type: a password of digits is a number to YAML), the
    values of extra HTTP headers, and the credentials of URLs. Walked without recursion, each
    container once (YAML aliases may make the data a graph, even a cycle)."""
    found: set[str] = set()
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict | list):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, dict):
                for name, item in value.items():
                    if name == "headers" and isinstance(item, dict):
                        found.update(str(v) for v in item.values() if v is not None)
                    stack.append((str(name), item))
            else:
                stack.extend((key, item) for item in value)
        elif isinstance(value, Secret) or (key in SECRET_KEYS and value is not None):
            found.add(str(value))
        elif isinstance(value, str) and "@" in value and "://" in value:
            try:
                parts = urlsplit(value)
            except ValueError:
                continue
            found.update(part for part in (parts.username, parts.password) if part)
    return found


def validate(data: Any, *, base_dir: Path | None = None) -> Config:
    """Validate raw configuration data; ConfigError lists every problem found.

    Relative file names (model, cache, TLS files) resolve against `base_dir`, the config
    file's folder, when it is given.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            ["(top level): expected a mapping of sections (model, mqtt, cameras, ...)"]
        )
    try:
        checked: dict[str, Any] = ROOT_SCHEMA(data)
    except vol.MultipleInvalid as err:
        errors = [format_error(error, data, ROOT_SCHEMA) for error in err.errors]
        detection, mqtt, cameras = _parts(data)
        errors += _cross_checks(detection, mqtt, cameras)
        raise ConfigError(sorted(set(errors))) from None
    errors = _cross_checks(checked["detection"], checked["mqtt"], checked["cameras"])
    try:
        instance = instance_config(checked["instance"])
    except ValueError as err:
        errors.append(f"instance.index: {err}")
        instance = InstanceConfig()
    if instance.count > 1 and checked["bridge"].get("enabled"):
        errors.append(
            "bridge.enabled: true is not allowed with instance.count > 1: expected one bridge "
            "for all detectors (run `smokewatch bridge` once, and false here)"
        )
    if errors:
        raise ConfigError(sorted(set(errors)))
    detection_section = detection_config(checked["detection"])
    mqtt_section = mqtt_config(checked["mqtt"], base_dir)
    if instance.id:
        # Detectors sharing a broker need their own MQTT session (a broker drops the older
        # of two clients with one id) and their own detector-level topics.
        mqtt_section = dataclasses.replace(
            mqtt_section,
            instance=instance.id,
            client_id=f"{mqtt_section.client_id}-{instance.id}",
        )
    elsewhere = frozenset(camera for camera in checked["cameras"] if not instance.owns(camera))
    checked["cameras"] = {
        camera: entry for camera, entry in checked["cameras"].items() if camera not in elsewhere
    }
    return Config(
        model=model_config(checked["model"], base_dir),
        detection=detection_section,
        mqtt=mqtt_section,
        cameras={
            camera: camera_config(camera, entry, detection_section, mqtt_section.topic_prefix)
            for camera, entry in checked["cameras"].items()
        },
        bridge=BridgeConfig.from_dict(checked["bridge"]),
        logging_level=checked["logging"]["level"],
        instance=instance,
        elsewhere=elsewhere,
        false_alarms=false_alarms_config(checked["false_alarms"], base_dir),
    )


def load_config(path: Path | str, *, offline: bool = False) -> Config:
    """Load and validate a configuration file; ConfigError lists every problem found.

    Every secret the file holds is remembered first (detector.redact): from then on it is
    hidden wherever it would appear (logs, stats, the outbox), even in the errors of this
    very file. `offline` (replay, eval, bench, optimize: commands that never connect to the
    broker or the API) accepts secrets that cannot be resolved, such as a missing secrets.yaml.
    """
    path = Path(path)
    data = load_yaml(path, secrets_required=not offline)
    redact.remember(secret_values(data))
    return validate(data, base_dir=path.resolve().parent)
