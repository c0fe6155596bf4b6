"""`detection:` defaults that every camera inherits unless it overrides them, and the scenes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import voluptuous as vol

from detector.config.validators import integer, mapping_or_empty, number

# Snapshots larger than this are refused before they are decoded (detection.max_frame_bytes).
DEFAULT_MAX_FRAME_BYTES = 20 * 1024 * 1024

NightMode = Literal["score", "pause"]
NIGHT_MODES: tuple[NightMode, ...] = ("score", "pause")


@dataclass(frozen=True)
class Scene:
    """What a camera watches decides the defaults that depend on distance."""

    description: str
    # Boxes at least this wide (fraction of the frame) are dropped; None keeps every width.
    max_bbox_width: float | None
    # What happens to grey (infrared) frames: scored, or not scored as Pyronear does.
    night: NightMode


# A home camera looks at a nearby landscape: a close plume spans half the frame or more and is
# the most urgent case, so no width cap. A tower watching a distant horizon keeps Pyronear's
# settings: there a box 0.4 of the frame wide is a cloud or a fog bank far more often than smoke.
SCENES: dict[str, Scene] = {
    "nearby": Scene("a nearby landscape (home camera)", max_bbox_width=None, night="score"),
    "horizon": Scene(
        "a distant horizon (tower camera, Pyronear)", max_bbox_width=0.4, night="pause"
    ),
}
DEFAULT_SCENE = "nearby"
# The one range of the vote threshold, for the config, the threshold command and the Home
# Assistant number entity alike. 0 would put every frame in alarm and 1 would silence the
# alarm for good (the vote's score is an average of confidences, so it never exceeds 1).
THRESHOLD_MIN = 0.05
THRESHOLD_MAX = 0.95


@dataclass(frozen=True)
class DetectionConfig:
    """The detection section; `max_bbox_width` and `night` left None follow the scene."""

    interval: float = 30.0
    threshold: float = 0.25
    nb_frames: int = 6
    stale_after: int = 3
    offline_after: int = 10
    scene: str = DEFAULT_SCENE
    max_bbox_width: float | None = None
    night: NightMode | None = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES


_DEFAULT = DetectionConfig()


def _scene(value: Any) -> str:
    if value not in SCENES:
        raise vol.Invalid(f"expected one of {', '.join(SCENES)}")
    return str(value)


def _night(value: Any) -> NightMode | None:
    if value is None:
        return None
    for mode in NIGHT_MODES:
        if value == mode:
            return mode
    raise vol.Invalid(f"expected one of {', '.join(NIGHT_MODES)}")


def _width(value: Any) -> float | None:
    if value is None:
        return None
    return float(number(0, 1, above_low=True)(value))


# The keys a camera may override, with their validators.
CAMERA_OVERRIDES: dict[str, Any] = {
    # Seconds between two scored frames of a camera; faster frames are dropped (latest wins).
    "interval": number(0, 86400, above_low=True),
    # The vote's confidence threshold (Pyronear's conf_thresh): smoke when the score exceeds it.
    "threshold": number(THRESHOLD_MIN, THRESHOLD_MAX),
    # Frames in the temporal vote's window; smoke must persist over half of them.
    "nb_frames": integer(1, 50),
    # Intervals without a frame before the camera is reported stale.
    "stale_after": integer(1, 1000),
    # Intervals without a frame before the camera is reported offline (more than stale_after).
    "offline_after": integer(2, 10000),
    # What the camera watches: nearby (a home camera) or horizon (a tower, Pyronear's settings).
    "scene": _scene,
    # Boxes this wide or wider (fraction of the frame) are dropped; 1 keeps every width.
    # Default: the scene's (none for nearby, 0.4 for horizon).
    "max_bbox_width": _width,
    # Grey (infrared) frames: score them, or pause as Pyronear does. Default: the scene's.
    "night": _night,
}

DETECTION_SCHEMA = vol.All(
    mapping_or_empty,
    vol.Schema(
        {
            **{
                vol.Optional(key, default=getattr(_DEFAULT, key)): validator
                for key, validator in CAMERA_OVERRIDES.items()
            },
            # Payloads larger than this (bytes) are refused before decoding.
            vol.Optional("max_frame_bytes", default=_DEFAULT.max_frame_bytes): integer(
                1024, 200 * 1024 * 1024
            ),
        },
        extra=vol.PREVENT_EXTRA,
    ),
)


def resolve_width_cap(scene: str, max_bbox_width: float | None) -> float | None:
    """The width cap a camera applies: its own setting, else its scene's; None for no cap.

    A cap of 1 or more cannot drop anything but a box exactly as wide as the frame (the
    test is strictly narrower, as Pyronear's), which is the very plume it must keep: None.
    """
    cap = SCENES[scene].max_bbox_width if max_bbox_width is None else max_bbox_width
    return None if cap is None or cap >= 1 else cap


def resolve_night(scene: str, night: NightMode | None) -> NightMode:
    """What a camera does with grey (infrared) frames: its own setting, else its scene's."""
    return SCENES[scene].night if night is None else night


def detection_config(data: dict[str, Any]) -> DetectionConfig:
    """The dataclass of a validated detection section."""
    return DetectionConfig(**data)
