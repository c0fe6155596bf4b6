"""`cameras:` one entry per camera, keyed by its id (used in topics and unique ids)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from detector.config.detection import CAMERA_OVERRIDES, DetectionConfig
from detector.config.validators import boolean, masks, text, topic
from detector.masks import Mask

CAMERA_ID = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class CameraConfig:
    """One camera with every setting resolved (detection defaults merged)."""

    id: str
    name: str
    image_topic: str
    enabled: bool
    interval: float
    threshold: float
    nb_frames: int
    stale_after: int
    offline_after: int
    masks: tuple[Mask, ...] = ()


CAMERA_SCHEMA = vol.Schema(
    {
        # Friendly name shown in Home Assistant (default: the id, title-cased).
        vol.Optional("name"): text,
        # Snapshot topic (default: <topic_prefix>/<id>/image).
        vol.Optional("topic"): topic,
        # Score this camera at start-up (a switch in Home Assistant changes it at run time).
        vol.Optional("enabled", default=True): boolean,
        # Local exclusion zones in normalised coordinates.
        vol.Optional("masks", default=[]): masks,
        **{vol.Optional(key): validator for key, validator in CAMERA_OVERRIDES.items()},
    },
    extra=vol.PREVENT_EXTRA,
)


def camera_id(value: Any) -> str:
    """A camera id: lowercase letters, digits and underscores."""
    if isinstance(value, str) and CAMERA_ID.match(value):
        return value
    raise vol.Invalid("a camera id must be lowercase letters, digits and _ (e.g. backyard_east)")


def camera_entry(value: Any) -> dict[str, Any]:
    """A camera's settings; an empty entry (`backyard:`) takes every default."""
    result: dict[str, Any] = CAMERA_SCHEMA(value if value is not None else {})
    return result


CAMERAS_SCHEMA = vol.All(
    {camera_id: camera_entry},
    vol.Length(min=1, msg="expected at least one camera"),
)


def camera_config(
    camera: str, entry: dict[str, Any], defaults: DetectionConfig, prefix: str
) -> CameraConfig:
    """Resolve one validated camera entry against the detection defaults."""
    return CameraConfig(
        id=camera,
        name=entry.get("name", camera.replace("_", " ").title()),
        image_topic=entry.get("topic", f"{prefix}/{camera}/image"),
        enabled=entry["enabled"],
        masks=entry["masks"],
        **{key: entry.get(key, getattr(defaults, key)) for key in CAMERA_OVERRIDES},
    )
