"""The wire contract between the detector and the bridge, and what both show Home Assistant.

Everything the two processes must agree on lives here and nowhere else: the detection message
published on `<prefix>/<camera>/detection` (and handed over in process when the bridge runs inside
`smokewatch run`), its time format, and the origin block of every discovered entity. It imports
neither the model runtime nor the service or the bridge, so `smokewatch bridge` runs without
onnxruntime.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detector import __version__
from detector.config import MqttConfig

# Boxes as rows of [x1, y1, x2, y2, confidence], coordinates relative to the frame (0-1).
Boxes = NDArray[np.float32]

# Where a Home Assistant user is sent from the device page ("origin" of the discovered entities).
SUPPORT_URL = "https://github.com/smokewatch/smokewatch"
ORIGIN = {"name": "SmokeWatch", "sw_version": __version__, "support_url": SUPPORT_URL}


# Home Assistant keeps entities and devices by these ids: every one is built here, so the
# detector, its cameras and the bridge cannot drift apart (a changed id is a new entity).
def detector_device_id(mqtt: MqttConfig) -> str:
    """The detector device's identifier (one device per instance)."""
    return f"{mqtt.node_id}_detector" + (f"_{mqtt.instance}" if mqtt.instance else "")


def camera_device_id(mqtt: MqttConfig, camera: str) -> str:
    """A camera device's identifier."""
    return f"{mqtt.node_id}_{camera}"


def bridge_device_id(mqtt: MqttConfig) -> str:
    """The bridge device's identifier."""
    return f"{mqtt.node_id}_bridge"


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


@dataclass(frozen=True)
class Detection:
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
    def from_json(cls, data: Any) -> Detection:
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
