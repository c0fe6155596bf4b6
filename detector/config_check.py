"""`check-config`: a configuration file checked as `run` and `bridge` would open it.

A valid file can still name a model that is missing or not a detector, a CA file that does
not exist or does not parse, or an outbox that cannot be opened or created. `check-config`
opens each of them as the service would (without network: a model not yet downloaded is a
note, not an error) and reports every problem, of every section, at once.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import voluptuous as vol

from detector import redact
from detector.config import Config, secret_values, validate
from detector.config.bridge import BRIDGE_SCHEMA, BridgeConfig
from detector.config.loader import load_yaml
from detector.config.model import DEFAULT_MODEL, MODEL_SCHEMA, ModelConfig, model_config
from detector.config.mqtt import MQTT_SCHEMA, MqttConfig, mqtt_config
from detector.errors import ConfigError


def check_resources(
    model: ModelConfig | None, mqtt: MqttConfig | None, bridge: BridgeConfig | None
) -> tuple[list[str], list[str]]:
    """(errors, notes) about the model, the TLS files and the bridge's outbox, for each of
    the sections given (a section that did not validate is None and skipped)."""
    errors: list[str] = []
    notes: list[str] = []
    if model is not None:
        _check_model(model, errors, notes)
    if mqtt is not None:
        _check_tls(mqtt, errors)
    if bridge is not None and (bridge.enabled or bridge.cameras):
        _check_outbox(bridge, errors)
    return errors, notes


def valid_sections(
    data: Any, base_dir: Path | None
) -> tuple[ModelConfig | None, MqttConfig | None, BridgeConfig | None]:
    """The model, mqtt and bridge sections of raw data that validate on their own, so that
    an error elsewhere in the file does not hide what is wrong with them."""
    if not isinstance(data, dict):
        return None, None, None

    def section(schema: Any, key: str) -> Any:
        try:
            return schema(data.get(key) or {})
        except vol.Invalid:
            return None

    model, mqtt, bridge = (
        section(MODEL_SCHEMA, "model"),
        section(MQTT_SCHEMA, "mqtt"),
        section(BRIDGE_SCHEMA, "bridge"),
    )
    return (
        None if model is None else model_config(model, base_dir),
        None if mqtt is None else mqtt_config(mqtt, base_dir),
        None if bridge is None else BridgeConfig.from_dict(bridge),
    )


def _check_model(model: ModelConfig, errors: list[str], notes: list[str]) -> None:
    from detector.errors import ModelError
    from detector.model import ModelRuntime
    from detector.model_fetch import cache_path

    spec = model.path or DEFAULT_MODEL
    local = Path(spec).expanduser()
    if not local.is_file() and local.suffix != ".onnx" and "/" in spec and not local.exists():
        cached = cache_path(spec, Path(model.cache_dir), model.revision)
        if not cached.is_file():
            notes.append(
                f"model {spec} is not downloaded yet: `smokewatch run` fetches it once"
                f" into {cached.parent} (network needed then)"
            )
            return
        local = cached
    if not local.is_file():
        errors.append(f"model.path: {spec!r} is not allowed: expected an existing .onnx file")
        return
    try:
        runtime = ModelRuntime(local, smoke_classes=list(model.smoke_classes))
    except ModelError as err:
        errors.append(f"model.path: {local} cannot be used: {err}")
        return
    notes.append(f"model {local.name} loads: {runtime.name}")


def _check_tls(mqtt: MqttConfig, errors: list[str]) -> None:
    tls = mqtt.tls
    for key in ("ca_certs", "certfile", "keyfile"):
        value = getattr(tls, key)
        if value is not None and not os.access(value, os.R_OK):
            errors.append(f"mqtt.tls.{key}: {value!r} is not allowed: expected a readable file")
            return
    try:
        if tls.ca_certs is not None:
            ssl.create_default_context(cafile=tls.ca_certs)
        if tls.certfile is not None:
            ssl.create_default_context().load_cert_chain(tls.certfile, tls.keyfile)
    except (ssl.SSLError, OSError) as err:
        errors.append(f"mqtt.tls: the TLS files cannot be loaded: {err}")


def _check_outbox(bridge: BridgeConfig, errors: list[str]) -> None:
    """The outbox as the bridge opens it: an existing file must be an outbox it can read and
    write; a new one must be creatable. Nothing is changed: an existing file is opened
    read-only, and a new one is tried with a scratch file, removed at once (a folder such as
    /proc lets root pass an access() check, yet nothing can be created there)."""
    from detector.bridge.outbox import Outbox, OutboxError

    path = Path(bridge.outbox).expanduser()
    if path.exists() or path.is_symlink():
        try:
            Outbox(path, read_only=True).close()
        except (OutboxError, OSError) as err:
            errors.append(f"bridge.outbox: {err}")
            return
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
            errors.append(
                f"bridge.outbox: {str(path)!r} is not allowed: the bridge must write the file"
                f" and its folder ({path.parent}), and cannot"
            )
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    problem = None
    if not parent.is_dir():
        problem = f"{parent} is not a folder"
    else:
        try:
            fd, scratch = tempfile.mkstemp(dir=parent, prefix=".smokewatch-check-")
        except OSError as err:
            problem = f"nothing can be created in {parent}: {err.strerror or err}"
        else:
            os.close(fd)
            os.unlink(scratch)
    if problem is not None:
        errors.append(f"bridge.outbox: {str(path)!r} is not allowed: cannot be created ({problem})")


def check_config(path: Path | str) -> tuple[Config, list[str]]:
    """Check a configuration file as `run` and `bridge` would open it: the config and notes.

    ConfigError lists every error found, of every section (`smokewatch check-config` prints
    them).
    """
    path = Path(path)
    data = load_yaml(path)
    redact.remember(secret_values(data))
    base_dir = path.resolve().parent
    # What `run` and `bridge` open at start: a file that validates but names a broken
    # model, CA file or outbox must not pass here and fail there; and an error in one
    # section must not hide those of another.
    errors, notes = check_resources(*valid_sections(data, base_dir))
    try:
        config = validate(data, base_dir=base_dir)
    except ConfigError as err:
        raise ConfigError(sorted(set(err.errors + errors))) from None
    if errors:
        raise ConfigError(errors)
    return config, notes
