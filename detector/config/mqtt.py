"""`mqtt:` the broker the detector talks to, and the topic layout."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import voluptuous as vol

from detector.config.validators import boolean, integer, optional_text, text, topic


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards the broker."""

    enabled: bool = False
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class MqttConfig:
    """The mqtt section."""

    host: str = "localhost"
    port: int = 1883
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    client_id: str = "smokewatch-detector"
    keepalive: int = 60
    topic_prefix: str = "smokewatch"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    tls: TlsConfig = TlsConfig()

    @property
    def node_id(self) -> str:
        """The prefix made safe for unique ids and discovery topics."""
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.topic_prefix)


_DEFAULT = MqttConfig()

TLS_SCHEMA = vol.Schema(
    {
        vol.Optional("enabled", default=False): boolean,
        # CA bundle to verify the broker; the system's when null.
        vol.Optional("ca_certs", default=None): optional_text,
        # Client certificate and key for brokers that require one.
        vol.Optional("certfile", default=None): optional_text,
        vol.Optional("keyfile", default=None): optional_text,
        # Skip hostname verification (self-signed certificates on a LAN).
        vol.Optional("insecure", default=False): boolean,
    },
    extra=vol.PREVENT_EXTRA,
)

MQTT_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default=_DEFAULT.host): text,
        vol.Optional("port", default=_DEFAULT.port): integer(1, 65535),
        vol.Optional("username", default=None): optional_text,
        vol.Optional("password", default=None): optional_text,
        vol.Optional("client_id", default=_DEFAULT.client_id): text,
        vol.Optional("keepalive", default=_DEFAULT.keepalive): integer(5, 3600),
        # First level of every SmokeWatch topic.
        vol.Optional("topic_prefix", default=_DEFAULT.topic_prefix): topic,
        # Publish Home Assistant MQTT discovery.
        vol.Optional("discovery", default=True): boolean,
        vol.Optional("discovery_prefix", default=_DEFAULT.discovery_prefix): topic,
        vol.Optional("tls", default={}): TLS_SCHEMA,
    },
    extra=vol.PREVENT_EXTRA,
)


def mqtt_config(data: dict[str, Any]) -> MqttConfig:
    """The dataclass of a validated mqtt section."""
    return MqttConfig(**{**data, "tls": TlsConfig(**data["tls"])})
