"""`bridge:` forwarding confirmed detections to the Pyronear alert API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from detector.config.validators import boolean

BRIDGE_SCHEMA = vol.Schema(
    {
        # Run the bridge inside `smokewatch run` too.
        vol.Optional("enabled", default=False): boolean,
    },
    extra=vol.PREVENT_EXTRA,
)


@dataclass(frozen=True)
class BridgeConfig:
    """The bridge section."""

    enabled: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BridgeConfig:
        """The dataclass of a validated bridge section."""
        return cls(**data)
