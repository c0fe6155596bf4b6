"""`instance:` several detector processes sharing the cameras of one broker.

Each detector has an instance id. Its cameras are those of its config (one config per
detector), or, with `count` > 1, those a stable hash gives to its `index` among `count`
detectors sharing one config (a Kubernetes StatefulSet: `index: auto` reads the ordinal from
SMOKEWATCH_INSTANCE_INDEX or the hostname's `-N` suffix).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from detector.config.validators import integer, mapping_or_empty, slug

INDEX_ENV = "SMOKEWATCH_INSTANCE_INDEX"
AUTO = "auto"


@dataclass(frozen=True)
class InstanceConfig:
    """The instance section, with the index resolved."""

    id: str = ""
    count: int = 1
    index: int = 0

    def owns(self, camera: str) -> bool:
        """Whether this instance scores `camera`."""
        return self.count == 1 or owner(camera, self.count) == self.index


def owner(camera: str, count: int) -> int:
    """The index among `count` instances that scores `camera` (rendezvous hashing).

    The highest of hash(index, camera) wins: every detector computes the same answer without
    talking to the others, and when `count` changes only the cameras of the added or removed
    instance move (a modulo would move most of them).
    """

    def weight(index: int) -> bytes:
        return hashlib.sha256(f"{index}\0{camera}".encode()).digest()

    return max(range(count), key=weight)


def _index(value: Any) -> int | str:
    if value == AUTO:
        return AUTO
    return integer(0, 9999)(value)  # type: ignore[no-any-return]


INSTANCE_SCHEMA = vol.All(
    mapping_or_empty,
    vol.Schema(
        {
            # This detector's id (lowercase letters, digits, _); none for a lone detector.
            # With count > 1 it defaults to the index.
            vol.Optional("id"): slug,
            # How many detectors share the cameras of this config by a stable hash.
            vol.Optional("count", default=1): integer(1, 9999),
            # This detector's index in 0..count-1, or auto: $SMOKEWATCH_INSTANCE_INDEX, else
            # the hostname's -N suffix (a StatefulSet pod smokewatch-2 is index 2).
            vol.Optional("index", default=0): _index,
        },
        extra=vol.PREVENT_EXTRA,
    ),
)


def resolve_index(value: int | str, hostname: str | None = None) -> int:
    """The index itself, or for `auto` the environment's or the hostname's; ValueError if none."""
    if isinstance(value, int):
        return value
    from_env = os.environ.get(INDEX_ENV, "").strip()
    if from_env:
        if not from_env.isdigit():
            raise ValueError(f"${INDEX_ENV} is {from_env!r}: expected a number")
        return int(from_env)
    host = hostname if hostname is not None else socket.gethostname()
    match = re.search(r"-(\d+)$", host)
    if match is None:
        raise ValueError(
            f"auto found neither ${INDEX_ENV} nor a hostname ending in -N "
            f"(hostname {host!r}): set one, or give the index"
        )
    return int(match.group(1))


def instance_config(data: dict[str, Any], hostname: str | None = None) -> InstanceConfig:
    """The dataclass of a validated instance section; ValueError names what is wrong."""
    count = data["count"]
    index = resolve_index(data["index"], hostname)
    if index >= count:
        raise ValueError(f"index {index} is not allowed: expected 0 to {count - 1} (count {count})")
    instance_id = data.get("id")
    if instance_id is None:
        instance_id = str(index) if count > 1 else ""
    return InstanceConfig(id=instance_id, count=count, index=index)
