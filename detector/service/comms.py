"""The MQTT side of the service. Topics travel without the prefix; only this module adds it.

paho-mqtt's callbacks run on its network thread: they never block and never wait for a
publish; they hand messages to handlers that only store or enqueue.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from detector.config import MqttConfig
from detector.flaps import FlapWatch
from detector.mqtt import make_client, prefixed, say_offline_and_disconnect

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]
AVAILABLE = "available"
# Messages paho keeps while the broker is away (QoS 1 states and detections beyond it are
# refused, and the service offers detections again).
QUEUE_LIMIT = 2000


class Comms(Protocol):
    """What the service needs from a message bus (MqttComms is the one implementation)."""

    on_connected: Callable[[], None] | None
    """Called (from the bus's own thread: must not block) after every (re)connection."""

    connected: threading.Event
    """Set while connected: `available` is `online` on the broker."""

    def start(self) -> None:
        """Connect in the background."""

    def stop(self) -> None:
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


class MqttComms:
    """paho-mqtt 2.x client with last will, automatic reconnect and re-subscription."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str | None = None,
        on_connected: Callable[[], None] | None = None,
        will_topic: str = AVAILABLE,
    ) -> None:
        self.config = config
        self.prefix = config.topic_prefix
        self._handlers: list[tuple[str, Handler, int]] = []
        self.on_connected = on_connected
        self.connected = threading.Event()
        self._stopping = False
        self._last_failure: str | None = None
        self._last_publish_error: int | None = None  # logged once per streak, not per message
        self.flaps = FlapWatch(client_id or config.client_id, "MQTT")
        # The detector's own availability is per instance when several share the broker.
        self.will_topic = self.topic(
            config.detector_topic(will_topic) if will_topic == AVAILABLE else will_topic
        )
        self.client = make_client(
            config,
            client_id=client_id or config.client_id,
            will_topic=self.will_topic,
            queue_limit=QUEUE_LIMIT,
        )
        self.client.on_connect = self._connect_cb
        self.client.on_connect_fail = self._connect_fail_cb
        self.client.on_disconnect = self._disconnect_cb
        self.client.on_message = self._message_cb

    def topic(self, relative: str) -> str:
        """The full topic of a relative one."""
        return prefixed(self.prefix, relative)

    def subscribe(
        self, topic: str, handler: Handler, *, qos: int = 0, absolute: bool = False
    ) -> None:
        """Route messages of `topic` (wildcards allowed) to `handler(full_topic, payload)`."""
        full = topic if absolute else self.topic(topic)
        self._handlers.append((full, handler, qos))
        if self.connected.is_set():
            self.client.subscribe(full, qos)

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after any loss."""
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self.client.loop_start()

    def stop(self, *, timeout: float = 5.0) -> None:
        """Publish `offline` on the will topic, wait for it to leave, disconnect."""
        self._stopping = True
        connected = self.connected.is_set()
        self.connected.clear()
        say_offline_and_disconnect(
            self.client, self.will_topic, connected=connected, timeout=timeout
        )

    def publish(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        """Publish below the prefix (queued while disconnected, up to a bound)."""
        return self.publish_absolute(self.topic(topic), payload, retain=retain, qos=qos)

    def publish_absolute(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        """Publish a full topic; False when paho did not take it (its queue is full)."""
        result = self.client.publish(topic, payload, qos=qos, retain=retain)
        if result.rc == mqtt.MQTT_ERR_NO_CONN:
            return qos > 0  # kept by paho for the reconnect (QoS 0 is not)
        if result.rc != mqtt.MQTT_ERR_SUCCESS:
            if result.rc != self._last_publish_error:
                _LOGGER.warning("Publish on %s failed: %s", topic, mqtt.error_string(result.rc))
            self._last_publish_error = result.rc
            return False
        self._last_publish_error = None
        return True

    def publish_and_wait(
        self, topic: str, payload: bytes | str, *, retain: bool = False, timeout: float = 10.0
    ) -> bool:
        """Publish below the prefix with QoS 1 and wait, at most `timeout` seconds in all, for
        the broker to acknowledge it; False when the broker was not reached in time."""
        deadline = time.monotonic() + timeout
        if not self.connected.wait(timeout):
            return False
        info = self.client.publish(self.topic(topic), payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def _connect_cb(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._failure(f"the broker refused the connection: {reason}")
            return
        self._last_failure = None
        self.flaps.connected()
        _LOGGER.info("Connected to %s:%s", self.config.host, self.config.port)
        for topic, _handler, qos in self._handlers:
            client.subscribe(topic, qos)
        client.publish(self.will_topic, "online", qos=1, retain=True)
        self.connected.set()
        if self.on_connected is not None:
            self.on_connected()

    def _connect_fail_cb(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError` around the connection attempt (refused,
        # unreachable, TLS verification...), and would otherwise retry without a word.
        error = sys.exc_info()[1]
        self._failure(f"cannot connect: {error or 'connection failed'}")

    def _failure(self, message: str) -> None:
        """Log a connection failure once, not on every retry of the backoff."""
        if message != self._last_failure:
            self._last_failure = message
            _LOGGER.error(
                "MQTT broker %s:%s: %s (retrying with backoff)",
                self.config.host,
                self.config.port,
                message,
            )
        else:
            _LOGGER.debug("MQTT broker %s:%s: %s", self.config.host, self.config.port, message)

    def _disconnect_cb(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if self.connected.is_set() and not self._stopping:
            _LOGGER.warning("Disconnected from the broker (%s); reconnecting", reason)
            self.flaps.disconnected()
        self.connected.clear()

    def _message_cb(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = message.payload
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        for topic, handler, _qos in self._handlers:
            if mqtt.topic_matches_sub(topic, message.topic):
                try:
                    handler(message.topic, payload)
                except Exception:  # a bad handler must not kill paho's network thread
                    _LOGGER.exception("Handler for %s failed", message.topic)
                return
