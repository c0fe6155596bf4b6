"""`mqtt:` the broker the detector talks to, and the topic layout."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from detector.config.validators import (
    boolean,
    integer,
    mapping_or_empty,
    optional_text,
    text,
    topic,
)
from detector.contract import detector_leaf


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
    # This detector's instance id when several share a broker (set from `instance:`).
    instance: str = ""

    @property
    def node_id(self) -> str:
        """The prefix made safe for unique ids and discovery topics."""
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.topic_prefix)

    def detector_topic(self, leaf: str) -> str:
        """A detector-level topic (available, info, stats) relative to the prefix.

        With an instance id it is `instance/<id>/<leaf>`, so that each detector of a shared
        broker has its own last will and marks only its own cameras unavailable.
        """
        return detector_leaf(self.instance, leaf)


_DEFAULT = MqttConfig()
_TLS_FILES = ("ca_certs", "certfile", "keyfile")

TLS_SCHEMA = vol.All(
    mapping_or_empty,
    vol.Schema(
        {
            # Connect with TLS (usually port 8883).
            vol.Optional("enabled", default=False): boolean,
            # CA bundle to verify the broker; the system's when null.
            vol.Optional("ca_certs", default=None): optional_text,
            # Client certificate, for brokers that require one (with keyfile).
            vol.Optional("certfile", default=None): optional_text,
            # The client certificate's private key.
            vol.Optional("keyfile", default=None): optional_text,
            # Skip hostname verification (self-signed certificates on a LAN).
            vol.Optional("insecure", default=False): boolean,
        },
        extra=vol.PREVENT_EXTRA,
    ),
)

MQTT_SCHEMA = vol.All(
    mapping_or_empty,
    vol.Schema(
        {
            # Broker host name or address.
            vol.Optional("host", default=_DEFAULT.host): text,
            # Broker port (8883 is usual with TLS).
            vol.Optional("port", default=_DEFAULT.port): integer(1, 65535),
            # Credentials; null for an anonymous broker. Use !secret for the password.
            vol.Optional("username", default=None): optional_text,
            vol.Optional("password", default=None): optional_text,
            # Client id; two detectors on one broker need different ids.
            vol.Optional("client_id", default=_DEFAULT.client_id): text,
            # Seconds between keep-alive pings; the broker declares us offline after 1.5 times.
            vol.Optional("keepalive", default=_DEFAULT.keepalive): integer(5, 3600),
            # First level(s) of every SmokeWatch topic.
            vol.Optional("topic_prefix", default=_DEFAULT.topic_prefix): topic,
            # Publish Home Assistant MQTT discovery.
            vol.Optional("discovery", default=True): boolean,
            # Home Assistant's discovery prefix (its MQTT integration setting).
            vol.Optional("discovery_prefix", default=_DEFAULT.discovery_prefix): topic,
            vol.Optional("tls", default={}): TLS_SCHEMA,
        },
        extra=vol.PREVENT_EXTRA,
    ),
)


def mqtt_config(data: dict[str, Any], base_dir: Path | None = None) -> MqttConfig:
    """The dataclass of a validated mqtt section; relative TLS files resolve against base_dir."""
    tls = dict(data["tls"])
    for key in _TLS_FILES:
        if tls[key] is not None:
            file = Path(tls[key]).expanduser()
            tls[key] = str(base_dir / file if base_dir else file)
    return MqttConfig(**{**data, "tls": TlsConfig(**tls)})


def tls_errors(tls: dict[str, Any]) -> list[str]:
    """Checks across TLS keys: a client certificate needs its key and the other way round."""
    if tls["certfile"] is not None and tls["keyfile"] is None:
        return ["mqtt.tls.keyfile: null is not allowed: expected the key file of certfile"]
    if tls["keyfile"] is not None and tls["certfile"] is None:
        return ["mqtt.tls.certfile: null is not allowed: expected the certificate of keyfile"]
    return []
