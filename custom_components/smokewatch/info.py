"""The detector's retained description (P/info) and the topics derived from its prefix."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .const import INFO_LEAF


@dataclass(frozen=True)
class CameraInfo:
    """One camera of a detector, as its info describes it."""

    camera: str
    name: str
    device_id: str


@dataclass(frozen=True)
class DetectorInfo:
    """The parts of a detector's P/info the integration relies on."""

    prefix: str
    node_id: str
    version: str | None
    model: str | None
    status: str
    error: str | None
    cameras: dict[str, CameraInfo]
    raw: dict[str, Any]


def info_topic(prefix: str) -> str:
    """The retained topic a detector with this prefix describes itself on."""
    return detector_topic(prefix, INFO_LEAF)


def detector_topic(prefix: str, leaf: str) -> str:
    """A topic of the detector (or its bridge) with this prefix: P/<leaf>."""
    return f"{prefix}/{leaf}"


def command_topic(prefix: str, camera: str, setting: str) -> str:
    """The topic that sets one of a camera's settings (P/<cam>/<setting>/set)."""
    return f"{prefix}/{camera}/{setting}/set"


def parse_info(payload: str | bytes | bytearray) -> DetectorInfo | None:
    """The detector info in a P/info payload, or None when it is not a SmokeWatch info.

    An empty payload (a cleared retained message), invalid JSON or a JSON object without the
    keys every SmokeWatch detector publishes all give None.
    """
    if isinstance(payload, bytes | bytearray):
        try:
            payload = payload.decode()
        except UnicodeDecodeError:
            return None
    if not payload.strip():
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    prefix, node_id, cameras = data.get("prefix"), data.get("node_id"), data.get("cameras")
    if not isinstance(prefix, str) or not prefix or not isinstance(node_id, str) or not node_id:
        return None
    if not isinstance(cameras, dict):
        return None
    parsed: dict[str, CameraInfo] = {}
    for camera, details in cameras.items():
        if not isinstance(details, dict) or not isinstance(details.get("device_id"), str):
            return None
        name = details.get("name")
        parsed[camera] = CameraInfo(
            camera=camera,
            name=name if isinstance(name, str) and name else camera,
            device_id=details["device_id"],
        )
    status = data.get("status")
    return DetectorInfo(
        prefix=prefix,
        node_id=node_id,
        version=_optional_str(data.get("version")),
        model=_optional_str(data.get("model")),
        status=status if isinstance(status, str) else "ok",
        error=_optional_str(data.get("error")),
        cameras=parsed,
        raw=data,
    )


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
