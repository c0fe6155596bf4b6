"""The wire contract between the detector, the bridge and the Home Assistant integration.

Everything the three must agree on lives here and nowhere else: every topic leaf below the
prefix, the command settings and their payloads, the detection message published on
`<prefix>/<camera>/detection` (and handed over in process when the bridge runs inside
`smokewatch run`), its time format, the retained info payload the integration finds detectors
by, the ids of devices and entities, and the origin block of every discovered entity. It imports
neither the model runtime nor the service or the bridge, so `smokewatch bridge` runs without
onnxruntime.

The integration cannot import this module (HACS installs only `custom_components/`): the golden
payloads in `tests/contract/` are checked against this module by `tests/detector` and against
the integration by `tests/ha`, so the two sides cannot drift apart unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from detector import __version__
from detector.untrusted import parse_json

if TYPE_CHECKING:  # the config imports this module (MqttConfig.detector_topic)
    from detector.config import CameraConfig, MqttConfig

# Boxes as rows of [x1, y1, x2, y2, confidence], coordinates relative to the frame (0-1).
Boxes = NDArray[np.float32]

# Where a Home Assistant user is sent from the device page ("origin" of the discovered entities).
SUPPORT_URL = "https://github.com/smokewatch/smokewatch"
ORIGIN = {"name": "SmokeWatch", "sw_version": __version__, "support_url": SUPPORT_URL}


# -- topics -------------------------------------------------------------------------------
# Every topic is relative to the prefix (`mqtt.topic_prefix`); only the MQTT client adds it.

# A camera's leaves: `<prefix>/<camera>/<leaf>`.
IMAGE: Final = "image"  # input snapshot (the default image topic)
SMOKE: Final = "smoke"  # ON / OFF, retained
SMOKE_ATTRIBUTES: Final = "smoke/attributes"  # JSON, retained
SMOKE_EVENT: Final = "smoke/event"  # {"event_type": "started" | "ended", "test": bool}
SCORE: Final = "score"  # 0-100, retained
ALERT_IMAGE: Final = "alert/image"  # annotated JPEG, retained
STATUS: Final = "status"  # one of CAMERA_STATUSES, retained
VIEW: Final = "view"  # clear / night / frozen / obscured, retained
FRAME: Final = "frame"  # the latest scored JPEG (zone card), retained
DETECTION: Final = "detection"  # the detection message for the bridge, QoS 1
MASKS_ATTRIBUTES: Final = "masks/attributes"  # local, remote masks and false alarms, retained
MASKS_REMOTE: Final = "masks/remote"  # the Pyronear API's masks, published by the bridge
# JSON, retained: for enabled and threshold, {value, file, source} (file or run time).
SETTINGS_SOURCES: Final = "settings"

# Settings with a command and a retained state: `<camera>/<setting>/set` and `.../state`.
ENABLED: Final = "enabled"
THRESHOLD: Final = "threshold"
MASKS: Final = "masks"
SETTINGS: Final = (ENABLED, THRESHOLD, MASKS)
# Buttons: a command only, whose payload is PRESS.
RESET: Final = "reset"
TEST: Final = "test"
FALSE_ALARM: Final = "false_alarm"
FILE_SETTINGS: Final = "file_settings"  # enabled and threshold back to the file's values
BUTTONS: Final = (RESET, TEST, FALSE_ALARM, FILE_SETTINGS)
PRESS: Final = "PRESS"
CAMERA_STATUSES: Final = ("online", "frozen", "refused", "stale", "offline")


def prefixed(prefix: str, relative: str) -> str:
    """The full topic of a topic below the prefix (`smokewatch` + `a/smoke`)."""
    return f"{prefix}/{relative}"


def command_leaf(setting: str) -> str:
    """The command leaf of a setting or button (`<setting>/set`)."""
    return f"{setting}/set"


def state_leaf(setting: str) -> str:
    """The retained state leaf of a setting (`<setting>/state`)."""
    return f"{setting}/state"


def result_leaf(command: str) -> str:
    """Where the outcome of a camera's command is published (`<command>/result`)."""
    return f"{command}/result"


# A command's payload is the value itself (what HA's entities send: `PRESS`, `ON`, `0.3`, the
# masks JSON), or an envelope that asks for its outcome by a request id of the sender's:
# {"request_id": "<id>", "value": <the value, as text or JSON>}. Every command of a configured
# camera gets its outcome on `<cam>/<command>/result` (QoS 1, not retained):
# {"request_id": <id or null>, "ok": true|false, "reason": <why it was refused, or null>}.
REQUEST_ID: Final = "request_id"
REQUEST_VALUE: Final = "value"
REQUEST_ID_MAX = 64
REQUEST_MAX_BYTES = 128 * 1024  # the largest masks command (64 KiB) fits, with room


# What this detector can do that an older one could not (the info's `features`): a reader
# relies on a feature only when the detector lists it.
FEATURES: Final = ("command_results",)


def command_result(request_id: str | None, ok: bool, reason: str | None) -> dict[str, Any]:
    """The payload of `<cam>/<command>/result`."""
    return {REQUEST_ID: request_id, "ok": ok, "reason": reason}


def open_command(payload: bytes) -> tuple[str | None, bytes]:
    """(request id, value) of a command's payload: a request envelope is opened, anything
    else is the value itself (with no request id). Raises ValueError for an envelope that is
    not a valid one."""
    text = payload.strip()
    if not text.startswith(b"{"):
        return None, payload
    try:
        data = parse_json(text, max_bytes=REQUEST_MAX_BYTES)
    except ValueError:
        return None, payload  # not an envelope: the command judges the value
    if not isinstance(data, dict) or REQUEST_ID not in data:
        return None, payload
    request_id = data[REQUEST_ID]
    if not isinstance(request_id, str) or not 0 < len(request_id) <= REQUEST_ID_MAX:
        raise ValueError(f"request_id must be a string of 1 to {REQUEST_ID_MAX} characters")
    if REQUEST_VALUE not in data:
        raise ValueError("a request needs a value")
    value = data[REQUEST_VALUE]
    if isinstance(value, str):
        return request_id, value.encode()
    return request_id, json.dumps(value).encode()


def camera_topic(camera: str, leaf: str) -> str:
    """A camera's topic relative to the prefix (`<camera>/<leaf>`)."""
    return f"{camera}/{leaf}"


# Every retained leaf a camera publishes (emptied when the camera leaves the config).
CAMERA_STATE_LEAVES: Final = (
    SMOKE,
    SMOKE_ATTRIBUTES,
    SCORE,
    ALERT_IMAGE,
    STATUS,
    VIEW,
    *(state_leaf(setting) for setting in SETTINGS),
    MASKS_ATTRIBUTES,
    SETTINGS_SOURCES,
    FRAME,
)

# Every leaf a camera publishes or is commanded on (all but its input, `image`): no camera may
# take one of these as its image topic, or it would score its own output.
CAMERA_OUTPUT_LEAVES: Final = (
    SMOKE,
    SMOKE_ATTRIBUTES,
    SMOKE_EVENT,
    SCORE,
    ALERT_IMAGE,
    STATUS,
    VIEW,
    FRAME,
    DETECTION,
    MASKS_ATTRIBUTES,
    MASKS_REMOTE,
    SETTINGS_SOURCES,
    *(command_leaf(name) for name in (*SETTINGS, *BUTTONS)),
    *(state_leaf(name) for name in SETTINGS),
)

# The detector's own leaves: `<prefix>/<leaf>`, or `<prefix>/instance/<id>/<leaf>` for one
# instance of several sharing a broker (each with its own last will).
INFO: Final = "info"  # the retained info payload (detector_info)
STATS: Final = "stats"  # JSON health and counters, not retained
AVAILABLE: Final = "available"  # online / offline, retained, the last will
# The payloads of every availability topic (`available`, `bridge/available`); `offline` is
# also each client's last will. Home Assistant's birth message says `online` too.
AVAILABLE_ONLINE: Final = "online"
AVAILABLE_OFFLINE: Final = "offline"
# Not retained: the detector publishes a token here after subscribing at start; its echo,
# which the broker sends after every retained message of the earlier subscriptions, ends the
# window in which the detector collects its own retained states of the previous run.
PROBE: Final = "probe"


def detector_leaf(instance: str, leaf: str) -> str:
    """A detector-level topic relative to the prefix, for an instance id ("" for none)."""
    return f"instance/{instance}/{leaf}" if instance else leaf


# The bridge's leaves (one bridge per prefix).
BRIDGE_AVAILABLE: Final = "bridge/available"
BRIDGE_STATS: Final = "bridge/stats"

DETECTOR_LEAVES: Final = (INFO, STATS, AVAILABLE, PROBE)
BRIDGE_LEAVES: Final = (BRIDGE_AVAILABLE, BRIDGE_STATS)


def ha_status_topic(mqtt: MqttConfig) -> str:
    """Where Home Assistant announces itself (`online` when it starts: its birth message)."""
    return f"{mqtt.discovery_prefix}/status"


def image_topic(prefix: str, camera: str) -> str:
    """Where a camera's snapshots arrive unless its config names another topic."""
    return prefixed(prefix, camera_topic(camera, IMAGE))


def reserved_topics(prefix: str, cameras: list[str], instance: str = "") -> set[str]:
    """The full topics SmokeWatch publishes or is commanded on, which no camera may take as
    its image topic (it would score SmokeWatch's own output)."""
    leaves = {detector_leaf(instance, leaf) for leaf in DETECTOR_LEAVES} | set(BRIDGE_LEAVES)
    leaves |= {detector_leaf("", leaf) for leaf in DETECTOR_LEAVES}
    for camera in cameras:
        leaves |= {camera_topic(camera, leaf) for leaf in CAMERA_OUTPUT_LEAVES}
    return {prefixed(prefix, leaf) for leaf in leaves}


# Home Assistant keeps entities and devices by these ids: every one is built here, so the
# detector, its cameras and the bridge cannot drift apart (a changed id is a new entity).
DETECTOR_DEVICE: Final = "detector"
BRIDGE_DEVICE: Final = "bridge"


def detector_device_id(mqtt: MqttConfig) -> str:
    """The detector device's identifier (one device per instance)."""
    return f"{mqtt.node_id}_{DETECTOR_DEVICE}" + (f"_{mqtt.instance}" if mqtt.instance else "")


def camera_device_id(mqtt: MqttConfig, camera: str) -> str:
    """A camera device's identifier."""
    return f"{mqtt.node_id}_{camera}"


def bridge_device_id(mqtt: MqttConfig) -> str:
    """The bridge device's identifier."""
    return f"{mqtt.node_id}_{BRIDGE_DEVICE}"


def camera_id_problem(camera: str) -> str | None:
    """Why `camera` cannot be a camera id, or None.

    A camera's device id is `<node>_<camera>`: the ids of SmokeWatch's own devices (the
    detector, each instance's detector `<node>_detector_<id>`, the bridge) must not be one,
    or Home Assistant would merge the devices; and the first level of the detector's and the
    bridge's own topics (`instance/…`, `bridge/…`) must not be a camera's.
    """
    own_levels = {leaf.split("/")[0] for leaf in BRIDGE_LEAVES} | {
        detector_leaf("x", INFO).split("/")[0]
    }
    if camera in own_levels | {DETECTOR_DEVICE, BRIDGE_DEVICE}:
        return f"{camera!r} names SmokeWatch's own device or topics"
    if camera.startswith(f"{DETECTOR_DEVICE}_"):
        return f"{camera!r} would take the device id of a detector instance"
    return None


def entity_unique_id(device_id: str, key: str) -> str:
    """The unique id of a device's entity (or device trigger) `key`."""
    return f"{device_id}_{key}"


def config_topic(mqtt: MqttConfig, component: str, unique_id: str) -> str:
    """Where an entity's discovery config is published."""
    return f"{mqtt.discovery_prefix}/{component}/{unique_id}/config"


def iso_utc(timestamp: float) -> str:
    """An epoch time as ISO 8601 UTC with millisecond precision and a trailing Z."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Epoch seconds of an ISO 8601 time; a naive time is taken as UTC, as the Pyronear API does."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def detector_info(
    mqtt: MqttConfig,
    cameras: list[CameraConfig],
    model: str | None,
    *,
    status: str = "ok",
    error: str | None = None,
) -> dict[str, Any]:
    """The retained `<prefix>/info` JSON: what the HA integration reads to find cameras.

    `device_id` (the detector device's identifier), `instance` and `features` were added
    after the other keys: readers must accept their absence in an older detector's info.
    """
    return {
        "version": __version__,
        "prefix": mqtt.topic_prefix,
        "node_id": mqtt.node_id,
        "discovery_prefix": mqtt.discovery_prefix,
        "model": model,
        "status": status,
        "error": error,
        "device_id": detector_device_id(mqtt),
        "instance": mqtt.instance or None,
        "features": list(FEATURES),
        "cameras": {
            camera.id: {
                "name": camera.name,
                "device_id": camera_device_id(mqtt, camera.id),
                "image_topic": camera.image_topic,
            }
            for camera in cameras
        },
    }


@dataclass(frozen=True)
class DetectionMessage:
    """A scored frame to forward to the Pyronear API through the bridge."""

    id: str
    camera: str
    recorded_at: float
    bboxes: Boxes
    jpeg: bytes
    alert: bool = True

    def to_json(self) -> dict[str, Any]:
        """The JSON object published on `<prefix>/<camera>/detection`."""
        return {
            "id": self.id,
            "camera": self.camera,
            "recorded_at": iso_utc(self.recorded_at),
            "bboxes": [[round(float(v), 3) for v in box] for box in self.bboxes],
            "jpeg": base64.b64encode(self.jpeg).decode("ascii"),
            "alert": self.alert,
        }

    @classmethod
    def from_json(cls, data: Any) -> DetectionMessage:
        """Parse and validate a detection message; ValueError says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a detection must be a JSON object")
        missing = [
            key for key in ("id", "camera", "recorded_at", "bboxes", "jpeg") if key not in data
        ]
        if missing:
            raise ValueError(f"detection lacks {', '.join(missing)}")
        if not isinstance(data["id"], str) or not data["id"]:
            raise ValueError("detection id must be a non-empty string")
        if not isinstance(data["camera"], str) or not data["camera"]:
            raise ValueError("detection camera must be a non-empty string")
        try:
            recorded_at = parse_iso(str(data["recorded_at"]))
        except ValueError as err:
            raise ValueError(f"recorded_at is not ISO 8601: {data['recorded_at']!r}") from err
        boxes = data["bboxes"]
        if not isinstance(boxes, list) or not all(
            isinstance(box, list)
            and len(box) == 5
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
            for box in boxes
        ):
            raise ValueError("bboxes must be a list of [x1, y1, x2, y2, conf] numbers")
        try:
            jpeg = base64.b64decode(str(data["jpeg"]), validate=True)
        except (binascii.Error, ValueError) as err:
            raise ValueError("jpeg is not valid base64") from err
        array = np.array(boxes, dtype=np.float32).reshape(-1, 5)
        return cls(
            id=data["id"],
            camera=data["camera"],
            recorded_at=recorded_at,
            bboxes=array,
            jpeg=jpeg,
            alert=bool(data.get("alert", True)),
        )
