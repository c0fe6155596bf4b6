"""A camera's `source:` (the built-in poller) and `frigate_events:` (alerts back to Frigate)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import voluptuous as vol

from detector.config.validators import boolean, integer, number, optional_text, text

SOURCE_TYPES = ("http", "frigate", "go2rtc", "homeassistant", "stream", "folder")
AUTH_TYPES = ("basic", "digest", "bearer")


@dataclass(frozen=True)
class SourceConfig:
    """Where the poller fetches a camera's frames, once per interval."""

    type: str
    url: str
    camera: str | None = None
    auth: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    height: int | None = None
    timeout: float = 10.0
    verify_tls: bool = True
    keep_open: bool = False
    publish: bool = False


@dataclass(frozen=True)
class FrigateEventsConfig:
    """Create a Frigate event for each confirmed alert, so Frigate keeps the footage."""

    url: str
    camera: str
    label: str = "smoke"
    token: str | None = field(default=None, repr=False)
    timeout: float = 10.0


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in value.items()
    ):
        raise vol.Invalid("expected a mapping of header names to values")
    return {k: str(v) for k, v in value.items()}


SOURCE_SCHEMA = vol.Schema(
    {
        # http: a snapshot URL; frigate / go2rtc / homeassistant: the server's base URL;
        # stream: an rtsp://, rtmp://, http(s) stream URL or a video file; folder: a directory.
        vol.Required("type"): vol.In(
            SOURCE_TYPES, msg=f"expected one of {', '.join(SOURCE_TYPES)}"
        ),
        vol.Required("url"): text,
        # The camera's name on the server: Frigate camera, go2rtc stream, HA camera entity.
        vol.Optional("camera"): text,
        # http: basic, digest or bearer (with username/password or token).
        vol.Optional("auth"): vol.In(AUTH_TYPES, msg=f"expected one of {', '.join(AUTH_TYPES)}"),
        vol.Optional("username"): optional_text,
        vol.Optional("password"): optional_text,
        # Bearer token: a Home Assistant long-lived token, Frigate's on port 8971.
        vol.Optional("token"): optional_text,
        vol.Optional("headers", default={}): _headers,
        # frigate: ask for frames this high (Frigate resizes).
        vol.Optional("height"): integer(16, 4320),
        vol.Optional("timeout", default=10.0): number(0.1, 300, above_low=True),
        vol.Optional("verify_tls", default=True): boolean,
        # stream: keep the stream open between frames (reads continuously) or reopen each time.
        vol.Optional("keep_open", default=False): boolean,
        # Also publish each fetched frame on the camera's image topic for other consumers.
        vol.Optional("publish", default=False): boolean,
    },
    extra=vol.PREVENT_EXTRA,
)


def _check_source(data: dict[str, Any]) -> dict[str, Any]:
    kind = data["type"]
    if data.get("auth") in ("basic", "digest") and not (
        data.get("username") and data.get("password")
    ):
        raise vol.Invalid(f"auth {data['auth']} needs username and password", path=["auth"])
    if data.get("auth") == "bearer" and not data.get("token"):
        raise vol.Invalid("auth bearer needs a token", path=["auth"])
    if kind == "homeassistant" and not data.get("token"):
        raise vol.Invalid("a Home Assistant source needs a long-lived access token", path=["token"])
    if kind in ("http", "frigate", "go2rtc", "homeassistant") and not str(data["url"]).startswith(
        ("http://", "https://")
    ):
        raise vol.Invalid(f"a {kind} source needs an http:// or https:// URL", path=["url"])
    return data


CHECKED_SOURCE_SCHEMA = vol.All(SOURCE_SCHEMA, _check_source)

FRIGATE_EVENTS_SCHEMA = vol.Schema(
    {
        # Frigate's base URL, e.g. http://frigate.lan:5000
        vol.Required("url"): text,
        # The camera's name in Frigate (default: the SmokeWatch camera id).
        vol.Optional("camera"): text,
        vol.Optional("label", default="smoke"): text,
        vol.Optional("token"): optional_text,
        vol.Optional("timeout", default=10.0): number(0.1, 300, above_low=True),
    },
    extra=vol.PREVENT_EXTRA,
)


def source_config(data: dict[str, Any] | None, camera: str) -> SourceConfig | None:
    """The dataclass of a validated source, with the server-side camera name defaulted."""
    if data is None:
        return None
    default_name = {"homeassistant": f"camera.{camera}", "frigate": camera, "go2rtc": camera}
    return SourceConfig(
        **{
            **data,
            "camera": data.get("camera", default_name.get(data["type"])),
            "headers": tuple(sorted(data["headers"].items())),
        }
    )


def frigate_events_config(data: dict[str, Any] | None, camera: str) -> FrigateEventsConfig | None:
    """The dataclass of a validated frigate_events section."""
    if data is None:
        return None
    return FrigateEventsConfig(**{**data, "camera": data.get("camera", camera)})
