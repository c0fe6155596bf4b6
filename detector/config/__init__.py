"""The configuration: one YAML file validated with voluptuous into frozen dataclasses.

Each section lives in its own module with its defaults and a description of every key.
Errors are collected, not stopped at the first, and each names its key path, the bad value
and what is allowed; secret values never appear in them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from detector.config.bridge import BRIDGE_SCHEMA, BridgeConfig
from detector.config.cameras import CAMERAS_SCHEMA, CameraConfig, camera_config
from detector.config.detection import DETECTION_SCHEMA, DetectionConfig
from detector.config.loader import Secret, load_yaml
from detector.config.model import MODEL_SCHEMA, ModelConfig, model_config
from detector.config.mqtt import MQTT_SCHEMA, MqttConfig, TlsConfig, mqtt_config
from detector.errors import ConfigError

__all__ = [
    "CameraConfig",
    "Config",
    "DetectionConfig",
    "ModelConfig",
    "MqttConfig",
    "Secret",
    "TlsConfig",
    "check_config_main",
    "load_config",
    "validate",
]

LOG_LEVELS = ("debug", "info", "warning", "error")

ROOT_SCHEMA = vol.Schema(
    {
        vol.Optional("model", default={}): MODEL_SCHEMA,
        vol.Optional("detection", default={}): DETECTION_SCHEMA,
        vol.Optional("mqtt", default={}): MQTT_SCHEMA,
        vol.Required("cameras"): CAMERAS_SCHEMA,
        vol.Optional("bridge", default={}): BRIDGE_SCHEMA,
        vol.Optional("logging", default={}): vol.Schema(
            {
                vol.Optional("level", default="info"): vol.In(
                    LOG_LEVELS, msg=f"expected one of {', '.join(LOG_LEVELS)}"
                )
            },
            extra=vol.PREVENT_EXTRA,
        ),
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
    path: Path | None = field(default=None, compare=False)

    @property
    def log_level(self) -> int:
        """The logging module's level."""
        return int(getattr(logging, self.logging_level.upper()))


def _value_at(data: Any, path: list[Any]) -> tuple[bool, Any]:
    """The value at a key path of the raw data, if it is there."""
    for key in path:
        if (isinstance(data, dict) and key in data) or (
            isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data)
        ):
            data = data[key]
        else:
            return False, None
    return True, data


def _show(value: Any) -> str:
    if isinstance(value, Secret):
        return "<secret>"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(path: list[Any]) -> str:
    """The keys allowed where an unknown key was found."""
    schemas: dict[str, Any] = {
        "": ROOT_SCHEMA,
        "model": MODEL_SCHEMA,
        "detection": DETECTION_SCHEMA,
        "mqtt": MQTT_SCHEMA,
        "mqtt.tls": MQTT_SCHEMA.schema[vol.Optional("tls")],
        "bridge": BRIDGE_SCHEMA,
    }
    from detector.config.cameras import CAMERA_SCHEMA

    where = ".".join(str(k) for k in path[:-1])
    schema = schemas.get(where)
    if schema is None and len(path) == 3 and path[0] == "cameras":
        schema = CAMERA_SCHEMA
    if schema is None:
        return ""
    keys = sorted(str(key) for key in schema.schema)
    return f"; allowed keys: {', '.join(keys)}"


def _format(error: vol.Invalid, data: Any) -> str:
    path = list(error.path)
    where = ".".join(str(k) for k in path) or "(top level)"
    message = error.error_message
    if message.startswith("a camera id"):
        return f"{where}: {_show(path[-1])} is not allowed: {message}"
    if message == "extra keys not allowed":
        return f"{where}: unknown key{_allowed_keys(path)}"
    if message.startswith("required key not provided"):
        return f"{where}: required key missing"
    found, value = _value_at(data, path)
    if found:
        return f"{where}: {_show(value)} is not allowed: {message}"
    return f"{where}: {message}"


def _cross_checks(config: Config) -> list[str]:
    """Checks that involve several keys."""
    errors = []
    topics: dict[str, str] = {}
    for camera in config.cameras.values():
        if camera.offline_after <= camera.stale_after:
            errors.append(
                f"cameras.{camera.id}.offline_after: {camera.offline_after} is not allowed: "
                f"must be greater than stale_after ({camera.stale_after})"
            )
        other = topics.setdefault(camera.image_topic, camera.id)
        if other != camera.id:
            errors.append(
                f"cameras.{camera.id}.topic: {camera.image_topic!r} is not allowed: "
                f"camera {other} already uses it"
            )
    tls = config.mqtt.tls
    if (tls.certfile is None) != (tls.keyfile is None):
        errors.append("mqtt.tls: certfile and keyfile must be given together")
    return errors


def validate(data: Any, *, path: Path | None = None) -> Config:
    """Validate raw configuration data; ConfigError lists every problem found."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            ["(top level): expected a mapping of sections (model, mqtt, cameras, ...)"]
        )
    try:
        checked = ROOT_SCHEMA(data)
    except vol.MultipleInvalid as err:
        raise ConfigError(sorted({_format(error, data) for error in err.errors})) from None
    detection = DetectionConfig(**checked["detection"])
    mqtt = mqtt_config(checked["mqtt"])
    config = Config(
        model=model_config(checked["model"]),
        detection=detection,
        mqtt=mqtt,
        cameras={
            camera: camera_config(camera, entry, detection, mqtt.topic_prefix)
            for camera, entry in checked["cameras"].items()
        },
        bridge=BridgeConfig.from_dict(checked["bridge"]),
        logging_level=checked["logging"]["level"],
        path=path,
    )
    errors = _cross_checks(config)
    if errors:
        raise ConfigError(errors)
    return config


def load_config(path: Path | str) -> Config:
    """Load and validate a configuration file."""
    path = Path(path)
    return validate(load_yaml(path), path=path)


def check_config_main(path: Path | str) -> int:
    """`smokewatch check-config FILE`: print every error, or a summary; 0 when valid."""
    try:
        config = load_config(path)
    except ConfigError as err:
        print(f"{path}: {len(err.errors)} error(s)")
        for line in err.errors:
            print(f"  {line}")
        return 1
    cameras = ", ".join(config.cameras)
    print(f"{path}: valid")
    print(f"  cameras: {cameras}")
    print(f"  model: {config.model.path} (smoke classes: {', '.join(config.model.smoke_classes)})")
    print(
        f"  broker: {config.mqtt.host}:{config.mqtt.port}, topic prefix {config.mqtt.topic_prefix}"
    )
    print(f"  bridge: {'enabled' if config.bridge.enabled else 'disabled'}")
    return 0
