"""`detection:` defaults that every camera inherits unless it overrides them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from detector.config.validators import integer, mapping_or_empty, number
from detector.frames import DEFAULT_MAX_FRAME_BYTES

# The one range of the vote threshold, for the config, the threshold command and the Home
# Assistant number entity alike. 0 would put every frame in alarm and 1 would silence the
# alarm for good (the vote's score is an average of confidences, so it never exceeds 1).
THRESHOLD_MIN = 0.05
THRESHOLD_MAX = 0.95


@dataclass(frozen=True)
class DetectionConfig:
    """The detection section."""

    interval: float = 30.0
    threshold: float = 0.25
    nb_frames: int = 6
    stale_after: int = 3
    offline_after: int = 10
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES


_DEFAULT = DetectionConfig()

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


def detection_config(data: dict[str, Any]) -> DetectionConfig:
    """The dataclass of a validated detection section."""
    return DetectionConfig(**data)
