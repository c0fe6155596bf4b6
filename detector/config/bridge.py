"""`bridge:` forwarding confirmed detections to the Pyronear alert API."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

from detector.config.validators import boolean, integer, mapping_or_empty, number, slug, text

DEFAULT_OUTBOX = "~/.local/share/smokewatch/outbox.sqlite3"


@dataclass(frozen=True)
class BridgeCameraConfig:
    """The Pyronear identity of one camera."""

    token: str = field(repr=False)
    pose_id: int


@dataclass(frozen=True)
class BridgeConfig:
    """The bridge section."""

    enabled: bool = False
    url: str = "https://api.pyronear.org"
    outbox: str = DEFAULT_OUTBOX
    client_id: str = "smokewatch-bridge"
    timeout: float = 10.0
    max_items: int = 10000
    max_bytes: int = 2 * 1024**3
    upload_max_width: int = 1280
    upload_max_height: int = 720
    send_crops: bool = False
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    heartbeat_interval: float = 30.0
    last_image_interval: float = 3600.0
    masks_interval: float = 3600.0
    pose_image_hour: int = 12
    stats_interval: float = 10.0
    cameras: dict[str, BridgeCameraConfig] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BridgeConfig:
        """The dataclass of a validated bridge section."""
        cameras = {
            name: BridgeCameraConfig(token=entry["token"], pose_id=entry["pose_id"])
            for name, entry in data.get("cameras", {}).items()
        }
        return cls(**{**data, "cameras": cameras})


_D = BridgeConfig()


# A host name as the bridge can reach it: letters, digits, dots, dashes and underscores (some
# local names have them), or an IPv6 address in brackets.
_HOST = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])$")


def _url(value: Any) -> str:
    """An http(s) base URL: scheme, host, optional port and path, nothing else.

    Anything the bridge could never use is refused here, at start, rather than at each call:
    user:password@ (the API authenticates each camera by its token; aiohttp refuses both, and
    the credentials would end up in logs, the stats and the outbox), a query or a fragment (the
    bridge appends /api/v1/<call> to this URL), spaces, a port that is not a number.
    """
    checked = text(value)
    if "@" in checked:
        # Any '@' may end a user:password, whatever the password holds ('/', a space...):
        # the URL is not repeated in the error (its path points past the value).
        raise vol.Invalid(
            "expected a URL without user:password@ (cameras authenticate by their token;"
            " the URL is not repeated here: it may hold a password)",
            path=["userinfo"],
        )
    if any(char.isspace() or not char.isprintable() for char in checked):
        raise vol.Invalid("expected a URL without spaces or control characters")
    if "\\" in checked:  # some clients read it as '/': what is the host then?
        raise vol.Invalid("expected a URL without backslashes")
    if "?" in checked or "#" in checked:
        raise vol.Invalid(
            "expected a base URL without ?query or #fragment (the bridge adds /api/v1/...),"
            " e.g. https://api.pyronear.org"
        )
    try:
        parts = urlsplit(checked)
        port = parts.port
    except ValueError as err:
        what = "port" if "port" in str(err).lower() else "host"
        raise vol.Invalid(f"expected a URL with a valid {what}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise vol.Invalid("expected an http:// or https:// URL, e.g. https://api.pyronear.org")
    host = parts.netloc if port is None else parts.netloc.rsplit(":", 1)[0]
    if not _HOST.match(host):
        raise vol.Invalid("expected a URL with a valid host, e.g. https://api.pyronear.org")
    return checked.rstrip("/")


BRIDGE_CAMERA_SCHEMA = vol.Schema(
    {
        # The camera's token, minted by a Pyronear admin (keep it in secrets.yaml).
        vol.Required("token"): text,
        # The pose (view) of the camera that this SmokeWatch camera watches.
        vol.Required("pose_id"): integer(1, 2**31 - 1),
    },
    extra=vol.PREVENT_EXTRA,
)

BRIDGE_SCHEMA = vol.Schema(
    {
        # Run the bridge inside `smokewatch run` too (else: `smokewatch bridge`).
        vol.Optional("enabled", default=False): boolean,
        # The alert API (the bridge adds /api/v1/).
        vol.Optional("url", default=_D.url): _url,
        # The on-disk outbox (SQLite): detections wait here until the API has them.
        vol.Optional("outbox", default=_D.outbox): text,
        # MQTT client id of the bridge; fixed, so the broker keeps its session while it is down.
        vol.Optional("client_id", default=_D.client_id): text,
        # Seconds before an API call is abandoned (and retried later).
        vol.Optional("timeout", default=_D.timeout): number(0.1, 600, above_low=True),
        # Outbox bounds: beyond them delivered rows go first, then the oldest pending (counted).
        vol.Optional("max_items", default=_D.max_items): integer(10, 10_000_000),
        vol.Optional("max_bytes", default=_D.max_bytes): integer(1024 * 1024, 2**50),
        # Frames larger than this are re-encoded once before upload (4G bandwidth).
        vol.Optional("upload_max_width", default=_D.upload_max_width): integer(64, 10000),
        vol.Optional("upload_max_height", default=_D.upload_max_height): integer(64, 10000),
        # Send a 224x224 crop per box with each detection.
        vol.Optional("send_crops", default=_D.send_crops): boolean,
        # Retry delays after a temporary failure: exponential with jitter, capped.
        vol.Optional("backoff_initial", default=_D.backoff_initial): number(
            0.01, 3600, above_low=True
        ),
        vol.Optional("backoff_max", default=_D.backoff_max): number(0.01, 86400, above_low=True),
        # Periodic duties (seconds): heartbeat while frames flow, last image, occlusion masks;
        # and the local hour after which the daily pose image goes.
        vol.Optional("heartbeat_interval", default=_D.heartbeat_interval): number(0.1, 86400),
        vol.Optional("last_image_interval", default=_D.last_image_interval): number(0.1, 864000),
        vol.Optional("masks_interval", default=_D.masks_interval): number(0.1, 864000),
        vol.Optional("pose_image_hour", default=_D.pose_image_hour): integer(0, 23),
        # Seconds between two bridge/stats messages (also sent after every delivery change).
        vol.Optional("stats_interval", default=_D.stats_interval): number(0.1, 3600),
        # SmokeWatch camera id → its Pyronear token and pose.
        vol.Optional("cameras", default={}): vol.All(
            mapping_or_empty, {slug: BRIDGE_CAMERA_SCHEMA}
        ),
    },
    extra=vol.PREVENT_EXTRA,
)
