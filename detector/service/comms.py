"""What the service needs from a message bus: `detector.mqtt.MqttSession` on a real broker,
a fake bus in the in-process tests (tests/detector/fake_comms.py).

Topics travel without the prefix; only the session adds it. Handlers run on the bus's own
thread: they never block, they only store or enqueue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from detector.config import MqttConfig
from detector.contract import AVAILABLE
from detector.mqtt import Handler, MqttSession

# Messages paho keeps while the broker is away (QoS 1 states and detections beyond it are
# refused, and the service offers detections again).
QUEUE_LIMIT = 2000


class Comms(Protocol):
    """The message bus of the service."""

    on_connected: Callable[[bool], None] | None
    """Called (from the bus's own thread: must not block) after every (re)connection."""

    connected: threading.Event
    """Set while connected: `available` is `online` on the broker."""

    def start(self) -> None:
        """Connect in the background."""

    def stop(self, *, timeout: float = 5.0) -> None:
        """Say offline and disconnect."""

    def subscribe(
        self, topic: str, handler: Handler, *, qos: int = 0, absolute: bool = False
    ) -> None:
        """Route messages of a topic below the prefix (or a full one) to `handler`."""

    def publish(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        """Publish on a topic below the prefix; False when the message was not taken."""

    def publish_absolute(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        """Publish on a full topic (discovery lives outside the prefix); False when the
        message was not taken (a full queue)."""

    def publish_and_wait(
        self, topic: str, payload: bytes | str, *, retain: bool = False, timeout: float = 10.0
    ) -> bool:
        """Publish below the prefix with QoS 1 and wait, at most `timeout` seconds in all, for
        the broker to have it (connecting first if need be); False when it did not."""


def detector_session(config: MqttConfig) -> MqttSession:
    """The detector's MQTT session: its client id, its (per instance) last will."""
    return MqttSession(
        config,
        client_id=config.client_id,
        will_topic=config.detector_topic(AVAILABLE),
        queue_limit=QUEUE_LIMIT,
        what="MQTT",
    )
