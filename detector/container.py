"""How the container image starts: as a Home Assistant add-on, or as a Docker/Podman container.

One image, one entry point (`smokewatch container`), the same service as `smokewatch run`:

- **Add-on** (the Supervisor gives the container SUPERVISOR_TOKEN): the options the user set in
  the add-on's Configuration tab (`/data/options.json`, written by the Supervisor) and the MQTT
  broker the Supervisor hands out (`GET http://supervisor/services/mqtt`) become the detector's
  own YAML, `/data/smokewatch.yaml`. That file is checked by the detector's own validation
  (`check_config`: the schema, the model file, the outbox) before it replaces the previous one,
  so bad options stop the add-on with the detector's message, the add-on option named beside
  it, and a failed start leaves /data as it was. Secrets (the broker's password, Pyronear
  tokens, a snapshot password) are not written even there: the YAML names them with `!env`
  and they live only in the process's environment.
- **Docker / Podman**: the user's own YAML (`/config/smokewatch.yaml`, or SMOKEWATCH_CONFIG),
  with the model cache and the bridge outbox in the data volume unless the file says otherwise.

Either way all state lives in the data directory: `models/` (the downloaded model),
`outbox.sqlite3` (the Pyronear bridge's outbox), `false_alarms/` (the frames of alerts dismissed
as "Not smoke") and, for the add-on, the generated config.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from detector.config import Config, validate
from detector.config.loader import load_yaml
from detector.config.report import format_error
from detector.config_check import check_config
from detector.errors import ConfigError
from detector.supervisor import SUPERVISOR_URL, Broker, supervisor_broker

_LOGGER = logging.getLogger(__name__)

DATA_DIR = Path("/data")
DOCKER_CONFIG = Path("/config/smokewatch.yaml")
OPTIONS_FILE = "options.json"
GENERATED_CONFIG = "smokewatch.yaml"
MODEL_CACHE = "models"
OUTBOX = "outbox.sqlite3"
FALSE_ALARMS = "false_alarms"
DEFAULT_MODEL_OPTION = "default"
# The environment variables that carry the secrets the generated YAML names with !env.
MQTT_PASSWORD_ENV = "SMOKEWATCH_MQTT_PASSWORD"


def _passed(value: Any) -> Any:
    """Any value: the detector's schema judges it in the generated YAML."""
    return value


# The add-on's options, by structure only: unknown or misplaced keys are refused here (the
# detector's error report names them), every value goes on to the detector's own schema.
CAMERA_OPTIONS = vol.Schema(
    {
        vol.Required("id"): _passed,
        vol.Optional("name"): _passed,
        vol.Optional("topic"): _passed,
        vol.Optional("snapshot_url"): _passed,
        vol.Optional("snapshot_username"): _passed,
        vol.Optional("snapshot_password"): _passed,
        vol.Optional("frigate_camera"): _passed,
        vol.Optional("frigate_events"): _passed,
        vol.Optional("scene"): _passed,
        vol.Optional("threshold"): _passed,
        vol.Optional("interval"): _passed,
        vol.Optional("pyronear_pose_id"): _passed,
        vol.Optional("pyronear_token"): _passed,
    },
    extra=vol.PREVENT_EXTRA,
)
PYRONEAR_OPTIONS = vol.Schema(
    {vol.Optional("enabled"): _passed, vol.Optional("url"): _passed},
    extra=vol.PREVENT_EXTRA,
)
OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required("cameras"): [CAMERA_OPTIONS],
        vol.Optional("model"): _passed,
        vol.Optional("scene"): _passed,
        vol.Optional("threshold"): _passed,
        vol.Optional("interval"): _passed,
        vol.Optional("nb_frames"): _passed,
        vol.Optional("frigate_url"): _passed,
        vol.Optional("topic_prefix"): _passed,
        vol.Optional("log_level"): _passed,
        vol.Optional("pyronear"): PYRONEAR_OPTIONS,
    },
    extra=vol.PREVENT_EXTRA,
)
# Options that go straight to a key of the same name in the detector's config.
_DETECTION_OPTIONS = ("scene", "threshold", "interval", "nb_frames")
_CAMERA_PASSED = ("name", "topic", "scene", "threshold", "interval")


@dataclass(frozen=True)
class EnvSecret:
    """A secret the generated YAML names as `!env NAME`; its value stays in the environment."""

    name: str


@dataclass(frozen=True)
class AddonConfig:
    """The detector's config made of the add-on's options."""

    data: dict[str, Any]
    # Environment variables the YAML's !env tags name (secrets, never written to a file).
    env: dict[str, str] = field(repr=False)
    # (detector key path, add-on option) pairs, to name the option in the detector's errors.
    hints: tuple[tuple[str, str], ...]

    def yaml(self) -> str:
        """The YAML text of `data`, secrets as !env tags."""
        return yaml.dump(self.data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)

    def explain(self, errors: list[str]) -> list[str]:
        """The detector's error lines, each with the add-on option it comes from."""
        return [self._explain(line) for line in errors]

    def _explain(self, line: str) -> str:
        best: tuple[str, str] | None = None
        for path, option in self.hints:
            if any(line.startswith(path + end) for end in (":", ".", "[")) and (
                best is None or len(path) > len(best[0])
            ):
                best = (path, option)
        return line if best is None else f"{line} (add-on option: {best[1]})"


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes EnvSecret as `!env NAME`."""


_Dumper.add_representer(
    EnvSecret, lambda dumper, secret: dumper.represent_scalar("!env", secret.name)
)


def _given(value: Any) -> bool:
    """An option counts as set unless it is absent, null or empty (the add-on UI's blank)."""
    return value is not None and value != ""


def _camera_key(camera: dict[str, Any]) -> str:
    value = camera["id"]
    return value if isinstance(value, str) else str(value)


def addon_config(options: Any, broker: Broker, data_dir: Path) -> AddonConfig:
    """The detector's configuration for the add-on's options and the Supervisor's broker.

    Raises ConfigError (in the detector's words) for options the add-on does not have, or that
    cannot be put together (two sources on one camera, two cameras with one id, the bridge
    enabled with no camera token); every value is left to the detector's own validation.
    """
    try:
        checked: dict[str, Any] = OPTIONS_SCHEMA(options)
    except vol.MultipleInvalid as err:
        raise ConfigError(
            sorted({format_error(error, options, OPTIONS_SCHEMA) for error in err.errors})
        ) from None
    except vol.Invalid as err:
        raise ConfigError([format_error(err, options, OPTIONS_SCHEMA)]) from None
    env: dict[str, str] = {}
    hints: list[tuple[str, str]] = []
    errors: list[str] = []

    def secret(name: str, value: Any) -> EnvSecret:
        env[name] = str(value)
        return EnvSecret(name)

    mqtt: dict[str, Any] = {"host": broker.host, "port": broker.port}
    if broker.username:
        mqtt["username"] = broker.username
    if broker.password:
        mqtt["password"] = secret(MQTT_PASSWORD_ENV, broker.password)
    if broker.ssl:
        mqtt["tls"] = {"enabled": True}
    if _given(checked.get("topic_prefix")):
        mqtt["topic_prefix"] = checked["topic_prefix"]
        hints.append(("mqtt.topic_prefix", "topic_prefix"))
    hints.append(("mqtt", "the MQTT broker the Supervisor provides"))

    model: dict[str, Any] = {"cache_dir": str(data_dir / MODEL_CACHE)}
    if _given(checked.get("model")) and checked["model"] != DEFAULT_MODEL_OPTION:
        model["path"] = checked["model"]
    hints.append(("model.path", "model"))

    detection = {key: checked[key] for key in _DETECTION_OPTIONS if _given(checked.get(key))}
    hints += [(f"detection.{key}", key) for key in _DETECTION_OPTIONS]

    frigate_url = checked.get("frigate_url")
    cameras: dict[str, Any] = {}
    bridge_cameras: dict[str, Any] = {}
    first_of: dict[str, int] = {}
    for index, camera in enumerate(checked["cameras"]):
        option = f"cameras[{index}]"
        key = _camera_key(camera)
        if key in first_of:
            errors.append(
                f"{option}.id: {key!r} is not allowed: expected an id of its own"
                f" (cameras[{first_of[key]}] has it)"
            )
            continue
        first_of[key] = index
        entry: dict[str, Any] = {
            name: camera[name] for name in _CAMERA_PASSED if _given(camera.get(name))
        }
        hints.append((f"cameras.{key}", option))
        hints += [(f"cameras.{key}.{name}", f"{option}.{name}") for name in _CAMERA_PASSED]
        snapshot, frigate = _given(camera.get("snapshot_url")), _given(camera.get("frigate_camera"))
        if snapshot and frigate:
            errors.append(
                f"{option}.frigate_camera: is not allowed with snapshot_url: expected one"
                " source of frames per camera"
            )
        elif snapshot:
            source: dict[str, Any] = {"type": "http", "url": camera["snapshot_url"]}
            if _given(camera.get("snapshot_username")):
                source.update(auth="basic", username=camera["snapshot_username"])
            if _given(camera.get("snapshot_password")):
                source["password"] = secret(
                    f"SMOKEWATCH_SNAPSHOT_PASSWORD_{index}", camera["snapshot_password"]
                )
            entry["source"] = source
            hints += [
                (f"cameras.{key}.source", f"{option}.snapshot_url"),
                (f"cameras.{key}.source.auth", f"{option}.snapshot_username/snapshot_password"),
            ]
        elif frigate:
            entry["source"] = {"type": "frigate", "camera": camera["frigate_camera"]}
            if _given(frigate_url):
                entry["source"]["url"] = frigate_url
            if camera.get("frigate_events") is True:
                entry["frigate_events"] = {**entry["source"]}
                del entry["frigate_events"]["type"]
            hints += [
                (f"cameras.{key}.source", f"{option}.frigate_camera"),
                (f"cameras.{key}.source.url", "frigate_url"),
                (f"cameras.{key}.frigate_events", f"{option}.frigate_events"),
                (f"cameras.{key}.frigate_events.url", "frigate_url"),
            ]
        cameras[key] = entry
        identity: dict[str, Any] = {}
        if _given(camera.get("pyronear_pose_id")):
            identity["pose_id"] = camera["pyronear_pose_id"]
        if _given(camera.get("pyronear_token")):
            identity["token"] = secret(
                f"SMOKEWATCH_PYRONEAR_TOKEN_{index}", camera["pyronear_token"]
            )
        if identity:
            bridge_cameras[key] = identity
            hints += [
                (f"bridge.cameras.{key}", option),
                (f"bridge.cameras.{key}.token", f"{option}.pyronear_token"),
                (f"bridge.cameras.{key}.pose_id", f"{option}.pyronear_pose_id"),
            ]

    pyronear = checked.get("pyronear") or {}
    bridge: dict[str, Any] = {"outbox": str(data_dir / OUTBOX)}
    if "enabled" in pyronear:
        bridge["enabled"] = pyronear["enabled"]
    if _given(pyronear.get("url")):
        bridge["url"] = pyronear["url"]
    if bridge_cameras:
        bridge["cameras"] = bridge_cameras
    hints += [("bridge.enabled", "pyronear.enabled"), ("bridge.url", "pyronear.url")]
    if pyronear.get("enabled") is True and not any(
        "token" in identity for identity in bridge_cameras.values()
    ):
        errors.append(
            "pyronear.enabled: true is not allowed without a camera token: expected"
            " pyronear_token and pyronear_pose_id on each camera to forward (a Pyronear admin"
            " issues them)"
        )
    if errors:
        raise ConfigError(sorted(errors))

    data: dict[str, Any] = {"model": model}
    if detection:
        data["detection"] = detection
    data["mqtt"] = mqtt
    data["cameras"] = cameras
    data["bridge"] = bridge
    data["false_alarms"] = {"dir": str(data_dir / FALSE_ALARMS)}
    if _given(checked.get("log_level")):
        data["logging"] = {"level": checked["log_level"]}
        hints.append(("logging.level", "log_level"))
    return AddonConfig(data=data, env=env, hints=tuple(hints))


def read_options(path: Path) -> Any:
    """The add-on options the Supervisor wrote (JSON)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: no add-on options (the Supervisor writes them before the add-on starts)"]
        ) from None
    except (OSError, ValueError) as err:
        raise ConfigError([f"{path}: cannot read the add-on options: {err}"]) from None


def write_checked_config(addon: AddonConfig, path: Path) -> tuple[Config, list[str]]:
    """Write the add-on's config to `path` once the detector's own checks accept it.

    The text goes to a new file beside `path` (mode 0600), is checked there as
    `smokewatch check-config` would (schema, model file, outbox), and only then replaces
    `path`. On any error the new file is removed and nothing else in its folder changed; the
    ConfigError names the add-on option of each error.
    """
    os.environ.update(addon.env)
    handle, scratch_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    scratch = Path(scratch_name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(addon.yaml())
            file.flush()
            os.fsync(file.fileno())
        try:
            config, notes = check_config(scratch)
        except ConfigError as err:
            raise ConfigError(addon.explain(err.errors)) from None
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return config, notes


def prepare_addon(data_dir: Path, token: str, supervisor_url: str = SUPERVISOR_URL) -> Path:
    """The add-on's start: options and broker → `<data_dir>/smokewatch.yaml`; its path."""
    options = read_options(data_dir / OPTIONS_FILE)
    broker = supervisor_broker(token, supervisor_url)
    addon = addon_config(options, broker, data_dir)
    target = data_dir / GENERATED_CONFIG
    config, notes = write_checked_config(addon, target)
    for note in notes:
        _LOGGER.info("%s", note)
    _LOGGER.info(
        "Add-on options written to %s: %d camera(s), broker %s:%s from the Supervisor%s,"
        " state in %s",
        target,
        len(config.cameras),
        broker.host,
        broker.port,
        f" (user {broker.username})" if broker.username else "",
        data_dir,
    )
    return target


def _default_in(data: dict[str, Any], section: str, key: str, value: str) -> None:
    """Set `section.key` to `value` when the file leaves it unset (a wrong type is left for
    the schema to report)."""
    if data.get(section) is None:
        data[section] = {}
    if isinstance(data[section], dict):
        data[section].setdefault(key, value)


def container_config(path: Path, data_dir: Path) -> Config:
    """The Docker/Podman user's config, with state in the data volume unless it says otherwise
    (`model.cache_dir` → <data>/models, `bridge.outbox` → <data>/outbox.sqlite3,
    `false_alarms.dir` → <data>/false_alarms)."""
    if not path.is_file():
        raise ConfigError(
            [
                f"{path}: no configuration: mount yours there (an example is container/"
                "smokewatch.yaml in the SmokeWatch repository) or name it with SMOKEWATCH_CONFIG"
            ]
        )
    data = load_yaml(path)
    if isinstance(data, dict):
        _default_in(data, "model", "cache_dir", str(data_dir / MODEL_CACHE))
        _default_in(data, "bridge", "outbox", str(data_dir / OUTBOX))
        _default_in(data, "false_alarms", "dir", str(data_dir / FALSE_ALARMS))
    config = validate(data, base_dir=path.resolve().parent)
    _LOGGER.info(
        "Configuration %s: %d camera(s), broker %s:%s; model cache %s, outbox %s",
        path,
        len(config.cameras),
        config.mqtt.host,
        config.mqtt.port,
        config.model.cache_dir,
        config.bridge.outbox,
    )
    return config
