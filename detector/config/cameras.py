"""`cameras:` one entry per camera, keyed by its id (used in topics and unique ids)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from detector import contract
from detector.config.detection import (
    CAMERA_OVERRIDES,
    DetectionConfig,
    NightMode,
    resolve_night,
    resolve_width_cap,
)
from detector.config.masks import MASKS_SCHEMA
from detector.config.sources import (
    CHECKED_SOURCE_SCHEMA,
    FRIGATE_EVENTS_SCHEMA,
    FrigateEventsConfig,
    SourceConfig,
    frigate_events_config,
    source_config,
)
from detector.config.validators import boolean, mapping_or_empty, slug, text, topic
from detector.masks import Mask


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
    scene: str = "nearby"
    max_bbox_width: float | None = None
    night: NightMode | None = None
    masks: tuple[Mask, ...] = ()
    source: SourceConfig | None = None
    frigate_events: FrigateEventsConfig | None = None

    @property
    def width_cap(self) -> float | None:
        """The box width cap in force (its own setting, else the scene's); None for none."""
        return resolve_width_cap(self.scene, self.max_bbox_width)

    @property
    def night_mode(self) -> NightMode:
        """What this camera does with grey (infrared) frames."""
        return resolve_night(self.scene, self.night)


CAMERA_SCHEMA = vol.All(
    mapping_or_empty,
    vol.Schema(
        {
            # Friendly name shown in Home Assistant (default: the id, title-cased).
            vol.Optional("name"): text,
            # Snapshot topic (default: <topic_prefix>/<id>/image).
            vol.Optional("topic"): topic,
            # Score this camera at start-up (a switch in Home Assistant changes it at run time).
            vol.Optional("enabled", default=True): boolean,
            # Local exclusion zones.
            vol.Optional("masks", default=[]): MASKS_SCHEMA,
            # Fetch frames with the built-in poller instead of (or besides) MQTT.
            vol.Optional("source"): CHECKED_SOURCE_SCHEMA,
            # Create a Frigate event for each alert so Frigate keeps the footage.
            vol.Optional("frigate_events"): FRIGATE_EVENTS_SCHEMA,
            # Overrides of the detection section (interval, threshold, nb_frames, ...).
            **{vol.Optional(key): validator for key, validator in CAMERA_OVERRIDES.items()},
        },
        extra=vol.PREVENT_EXTRA,
    ),
)

CAMERAS_SCHEMA = vol.All(
    vol.Schema({slug: CAMERA_SCHEMA}),
    vol.Length(min=1, msg="expected at least one camera, e.g. cameras: {backyard: {}}"),
)


def reserved_topics(prefix: str, cameras: list[str]) -> set[str]:
    """The topics SmokeWatch itself uses, which no camera may take as its image topic (the
    contract's list: every leaf a camera, the detector or the bridge publishes or obeys)."""
    return contract.reserved_topics(prefix, cameras)


def default_topic(prefix: str, camera: str) -> str:
    """Where a camera's snapshots arrive unless its `topic` says otherwise."""
    return contract.image_topic(prefix, camera)


def camera_config(
    camera: str, entry: dict[str, Any], defaults: DetectionConfig, prefix: str
) -> CameraConfig:
    """Resolve one validated camera entry against the detection defaults."""
    return CameraConfig(
        id=camera,
        name=entry.get("name", camera.replace("_", " ").title()),
        image_topic=entry.get("topic", default_topic(prefix, camera)),
        enabled=entry["enabled"],
        masks=entry["masks"],
        source=source_config(entry.get("source"), camera),
        frigate_events=frigate_events_config(entry.get("frigate_events"), camera),
        **{key: entry.get(key, getattr(defaults, key)) for key in CAMERA_OVERRIDES},
    )
