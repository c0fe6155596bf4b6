"""A detector's retained description (its info) and the topics derived from its prefix.

A lone detector describes itself on P/info; each of several detectors sharing the prefix P on
P/instance/<id>/info, with its own available and stats beside it. Cameras and the bridge keep
their topics below P whatever the number of detectors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .const import COMMAND_LEAF, INFO_LEAF, INSTANCE_LEVEL, RESULT_LEAF


@dataclass(frozen=True)
class CameraInfo:
    """One camera of a detector, as its info describes it."""

    camera: str
    name: str
    device_id: str


@dataclass(frozen=True)
class DetectorInfo:
    """The parts of a detector's info the integration relies on.

    `instance` is None for a lone detector; `features` lists what this detector can do that an
    older one could not (empty in an info that predates the key).
    """

    prefix: str
    node_id: str
    instance: str | None
    version: str | None
    model: str | None
    status: str
    error: str | None
    features: frozenset[str]
    cameras: dict[str, CameraInfo]
    raw: dict[str, Any]

    @property
    def unique_id(self) -> str:
        """The config entry's unique id of this detector.

        A lone detector's is its node id (as every entry made before instances existed); an
        instance's adds the topic levels of its info, which no node id can hold (a node id
        has no "/"), so the two kinds never collide.
        """
        if self.instance is None:
            return self.node_id
        return f"{self.node_id}/{INSTANCE_LEVEL}/{self.instance}"

    @property
    def location(self) -> str:
        """Where the detector's own topics live (see detector_location)."""
        return detector_location(self.prefix, self.instance)


def detector_location(prefix: str, instance: str | None) -> str:
    """Where a detector's own topics live, P or P/instance/<id>: also how the integration
    names a detector in its logs, repair issues and forms."""
    return f"{prefix}/{INSTANCE_LEVEL}/{instance}" if instance else prefix


def detector_topic(prefix: str, leaf: str, instance: str | None = None) -> str:
    """A detector's own topic: P/<leaf>, or P/instance/<id>/<leaf> for an instance."""
    return f"{detector_location(prefix, instance)}/{leaf}"


def info_topic(prefix: str, instance: str | None = None) -> str:
    """The retained topic a detector describes itself on."""
    return detector_topic(prefix, INFO_LEAF, instance)


def instance_info_topics(prefix: str) -> str:
    """The subscription that receives the info of every instance under a prefix."""
    return detector_topic(prefix, INFO_LEAF, "+")


def prefix_topic(prefix: str, leaf: str) -> str:
    """A topic of the prefix shared by its detectors (the bridge's): P/<leaf>."""
    return f"{prefix}/{leaf}"


def command_topic(prefix: str, camera: str, setting: str) -> str:
    """The topic that sets one of a camera's settings (P/<cam>/<setting>/set)."""
    return f"{prefix}/{camera}/{setting}/{COMMAND_LEAF}"


def result_topic(prefix: str, camera: str, setting: str) -> str:
    """Where the detector answers a camera's command (P/<cam>/<setting>/result)."""
    return f"{prefix}/{camera}/{setting}/{RESULT_LEAF}"


def parse_info(payload: str | bytes | bytearray) -> DetectorInfo | None:
    """The detector info in an info payload, or None when it is not a SmokeWatch info.

    An empty payload (a cleared retained message), invalid JSON or a JSON object without the
    keys every SmokeWatch detector publishes all give None. Keys added after the first release
    (`instance`, `features`) may be absent.
    """
    if isinstance(payload, bytes | bytearray):
        try:
            payload = payload.decode()
        except UnicodeDecodeError:
            return None
    if not payload.strip():
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    prefix, node_id, cameras = data.get("prefix"), data.get("node_id"), data.get("cameras")
    if not isinstance(prefix, str) or not prefix or not isinstance(node_id, str) or not node_id:
        return None
    if not isinstance(cameras, dict):
        return None
    parsed: dict[str, CameraInfo] = {}
    for camera, details in cameras.items():
        if not isinstance(details, dict) or not isinstance(details.get("device_id"), str):
            return None
        name = details.get("name")
        parsed[camera] = CameraInfo(
            camera=camera,
            name=name if isinstance(name, str) and name else camera,
            device_id=details["device_id"],
        )
    instance = data.get("instance")
    if instance is not None and not _topic_level(instance):
        return None
    features = data.get("features")
    status = data.get("status")
    return DetectorInfo(
        prefix=prefix,
        node_id=node_id,
        instance=instance,
        version=_optional_str(data.get("version")),
        model=_optional_str(data.get("model")),
        status=status if isinstance(status, str) else "ok",
        error=_optional_str(data.get("error")),
        features=frozenset(feature for feature in features if isinstance(feature, str))
        if isinstance(features, list)
        else frozenset(),
        cameras=parsed,
        raw=data,
    )


def _topic_level(value: Any) -> bool:
    """Whether `value` can be one level of a topic (an instance id is a slug)."""
    return isinstance(value, str) and bool(value) and not set(value) & {"/", "+", "#"}


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
