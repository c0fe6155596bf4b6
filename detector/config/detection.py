"""`detection:` defaults that every camera inherits unless it overrides them."""

from __future__ import annotations

from dataclasses import dataclass

import voluptuous as vol

from detector.config.validators import integer, number, positive_number
from detector.frames import DEFAULT_MAX_FRAME_BYTES


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

# Keys a camera may override.
CAMERA_OVERRIDES = {
    # Seconds between two scored frames of a camera; faster frames are dropped (latest wins).
    "interval": positive_number(86400),
    # The vote's confidence threshold (Pyronear's conf_thresh).
    "threshold": number(0.01, 0.99),
    # Frames in the temporal vote's window; smoke must persist over half of them.
    "nb_frames": integer(1, 50),
    # Intervals without a frame before the camera is stale, then offline.
    "stale_after": integer(1, 1000),
    "offline_after": integer(2, 10000),
}

DETECTION_SCHEMA = vol.Schema(
    {
        **{
            vol.Optional(key, default=getattr(_DEFAULT, key)): validator
            for key, validator in CAMERA_OVERRIDES.items()
        },
        # Payloads larger than this are refused before decoding.
        vol.Optional("max_frame_bytes", default=_DEFAULT.max_frame_bytes): integer(
            1024, 200 * 1024 * 1024
        ),
    },
    extra=vol.PREVENT_EXTRA,
)
