"""The one MQTT session of SmokeWatch, for the service, the bridge and the demo.

Every client gets what `mqtt:` in the config says (broker credentials, TLS) and the same
connection policy: MQTT 3.1.1, reconnection with backoff from 1 s to 30 s, a bound on the
messages queued while the broker is away, a retained `offline` last will on its availability
topic and `online` on it at each connect. `MqttSession` adds what the service and the bridge
both need around paho: routing of subscribed topics to handlers (re-subscribed at every
connect), a connection failure logged once (not at every retry), the watch for a second client
with the same id, `publish -> bool`, and, for the bridge's persistent session, manual
acknowledgements: a message is acknowledged only when its handler did not return False.

paho-mqtt's callbacks run on its network thread: handlers never block for long and never wait
for a publish. Topics below the prefix get it in one place (the contract's `prefixed`). This
module imports neither the service nor the bridge, so both may use it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from detector.config import MqttConfig
from detector.contract import AVAILABLE_OFFLINE, AVAILABLE_ONLINE, prefixed
from detector.flaps import FlapWatch

_LOGGER = logging.getLogger(__name__)

RECONNECT_MIN_DELAY = 1  # seconds, doubled at each failed attempt
RECONNECT_MAX_DELAY = 30


def is_birth(payload: bytes) -> bool:
    """Home Assistant's birth message on `<discovery_prefix>/status` (it says `online`)."""
    return payload.strip().lower() == AVAILABLE_ONLINE.encode()


@dataclass(frozen=True)
class Inbound:
    """A message received on a subscribed topic.

    `retain` is True only for a message the broker stored before this subscription was made
    (MQTT 3.1.1 clears the flag on messages forwarded live): something from the past, such
    as a command left on the broker, not something sent now.
    """

    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 0
    mid: int = 0  # what acknowledges it (`MqttSession.ack`) on a persistent session


class Deferred:
    """What a handler returns when it acknowledges the message itself, later."""


DEFERRED = Deferred()

# On a persistent session, a handler's return value says what becomes of the message: False,
# not acknowledged (the broker sends it again after a reconnect: the connection is dropped);
# DEFERRED, the handler calls `ack` itself once it is done; anything else, acknowledged now.
Handler = Callable[[Inbound], "bool | Deferred | None"]


def make_client(
    config: MqttConfig,
    *,
    client_id: str | None,
    will_topic: str | None,
    queue_limit: int,
    persistent_session: bool = False,
) -> mqtt.Client:
    """A paho client for the broker of `config`, not yet connected.

    `client_id` None lets paho draw one (a throw-away client such as the demo's camera).
    `will_topic` (a full topic) gets a retained `offline` if the connection drops without a
    goodbye. `queue_limit` bounds the messages kept while disconnected, so memory stays flat
    whatever the outage. `persistent_session` asks the broker to keep the session and its QoS 1
    messages while the client is away, and leaves acknowledging them to the caller
    (`client.ack`): the bridge acknowledges a detection only once it is on disk.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or "",
        clean_session=not persistent_session,
        protocol=mqtt.MQTTv311,
        manual_ack=persistent_session,
    )
    if will_topic is not None:
        client.will_set(will_topic, AVAILABLE_OFFLINE, qos=1, retain=True)
    if config.username is not None:
        # Secrets are wrapped so they never print; paho wants plain strings.
        password = None if config.password is None else str(config.password)
        client.username_pw_set(str(config.username), password)
    if config.tls.enabled:
        client.tls_set(
            ca_certs=config.tls.ca_certs,
            certfile=config.tls.certfile,
            keyfile=config.tls.keyfile,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(config.tls.insecure)
    client.reconnect_delay_set(min_delay=RECONNECT_MIN_DELAY, max_delay=RECONNECT_MAX_DELAY)
    client.max_queued_messages_set(queue_limit)
    return client


def _send_at_once(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Turn Nagle's algorithm off on the broker connection (paho leaves it on).

    With it on, a message written while the previous one is unacknowledged waits for the
    broker's ACK, which Linux may delay by up to 40 ms: a scored state published right after
    the score reached Home Assistant that much later (BENCHMARKS.md, "4 cameras").
    """
    with contextlib.suppress(OSError, AttributeError):  # a websocket or a closed socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def say_offline_and_disconnect(
    client: mqtt.Client, will_topic: str, *, connected: bool, timeout: float = 5.0
) -> None:
    """Publish the retained `offline` on the will topic (when connected), wait for it to leave
    (at most `timeout`), then disconnect and stop paho's network thread."""
    if connected:
        info = client.publish(will_topic, AVAILABLE_OFFLINE, qos=1, retain=True)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            _LOGGER.warning("Could not publish offline on %s before disconnecting", will_topic)
    client.disconnect()
    client.loop_stop()


class MqttSession:
    """A paho client with last will, reconnection, re-subscription and routing.

    `will_topic` is relative to the prefix. `persistent` gives a persistent session with
    manual acknowledgements (the bridge: a detection is acknowledged once it is on disk).
    `what` names the session in the log ("MQTT", "Bridge MQTT").
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str,
        will_topic: str,
        queue_limit: int,
        what: str = "MQTT",
        persistent: bool = False,
    ) -> None:
        self.config = config
        self.prefix = config.topic_prefix
        self.client_id = client_id
        self.what = what
        self.persistent = persistent
        self.on_connected: Callable[[bool], None] | None = None
        """Called (on paho's thread: must not block) after every connection, with whether the
        broker resumed a persistent session."""
        self.connected = threading.Event()
        self._handlers: list[tuple[str, Handler, int]] = []
        self._handlers_lock = threading.Lock()
        self._stopping = False
        self._last_failure: str | None = None
        self._last_publish_error: int | None = None  # logged once per streak, not per message
        self.flaps = FlapWatch(client_id, what)
        self.will_topic = self.topic(will_topic)
        self.client = make_client(
            config,
            client_id=client_id,
            will_topic=self.will_topic,
            queue_limit=queue_limit,
            persistent_session=persistent,
        )
        self.client.on_connect = self._connect_cb
        self.client.on_connect_fail = self._connect_fail_cb
        self.client.on_socket_open = _send_at_once
        self.client.on_disconnect = self._disconnect_cb
        self.client.on_message = self._message_cb

    def topic(self, relative: str) -> str:
        """The full topic of a relative one."""
        return prefixed(self.prefix, relative)

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self, topic: str, handler: Handler, *, qos: int = 0, absolute: bool = False
    ) -> None:
        """Route messages of `topic` (below the prefix unless `absolute`; wildcards allowed)
        to `handler`; the first subscription that matches a message gets it."""
        full = topic if absolute else self.topic(topic)
        with self._handlers_lock:
            self._handlers.append((full, handler, qos))
        if self.connected.is_set():
            self.client.subscribe(full, qos)

    def unsubscribe(self, topic: str, *, absolute: bool = False) -> None:
        """Stop receiving `topic`, also from a persistent session the broker resumed."""
        full = topic if absolute else self.topic(topic)
        with self._handlers_lock:
            self._handlers = [entry for entry in self._handlers if entry[0] != full]
        self.client.unsubscribe(full)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after any loss."""
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self.client.loop_start()

    def stop(self, *, timeout: float = 5.0) -> None:
        """Publish `offline` on the will topic, wait for it to leave, disconnect (a persistent
        session stays on the broker)."""
        self._stopping = True
        connected = self.connected.is_set()
        self.connected.clear()
        say_offline_and_disconnect(
            self.client, self.will_topic, connected=connected, timeout=timeout
        )

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a message a handler DEFERRED (any thread)."""
        self.client.ack(mid, qos)

    def drop_connection(self) -> None:
        """Close the connection without a goodbye: the broker sends the unacknowledged
        messages of a persistent session again after paho reconnects (with its backoff)."""
        shutdown = getattr(self.client.socket(), "shutdown", None)
        if shutdown is not None:
            with contextlib.suppress(OSError):
                shutdown(socket.SHUT_RDWR)

    # -- publishing ------------------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        """Publish below the prefix (queued while disconnected, up to a bound)."""
        return self.publish_absolute(self.topic(topic), payload, retain=retain, qos=qos)

    def publish_absolute(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        """Publish a full topic; False when paho did not take it (its queue is full, or a
        QoS 0 message while disconnected)."""
        result = self.client.publish(topic, payload, qos=qos, retain=retain)
        if result.rc == mqtt.MQTT_ERR_NO_CONN:
            return qos > 0  # kept by paho for the reconnect (QoS 0 is not)
        if result.rc != mqtt.MQTT_ERR_SUCCESS:
            if result.rc != self._last_publish_error:
                _LOGGER.warning(
                    "%s: publish on %s failed: %s",
                    self.what,
                    topic,
                    mqtt.error_string(result.rc),
                )
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

    # -- paho's callbacks (its network thread) ---------------------------------------------

    def _connect_cb(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._failure(f"the broker refused the connection: {reason}")
            return
        self._last_failure = None
        self.flaps.connected()
        resumed = bool(getattr(flags, "session_present", False))
        _LOGGER.info(
            "%s connected to %s:%s%s",
            self.what,
            self.config.host,
            self.config.port,
            f" (session {'resumed' if resumed else 'new'})" if self.persistent else "",
        )
        with self._handlers_lock:
            subscriptions = [(topic, qos) for topic, _handler, qos in self._handlers]
        if subscriptions:
            client.subscribe(subscriptions)
        client.publish(self.will_topic, AVAILABLE_ONLINE, qos=1, retain=True)
        self.connected.set()
        if self.on_connected is not None:
            self.on_connected(resumed)

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
                "%s broker %s:%s: %s (retrying with backoff)",
                self.what,
                self.config.host,
                self.config.port,
                message,
            )
        else:
            _LOGGER.debug(
                "%s broker %s:%s: %s", self.what, self.config.host, self.config.port, message
            )

    def _disconnect_cb(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if self.connected.is_set() and not self._stopping:
            _LOGGER.warning("%s disconnected from the broker (%s); reconnecting", self.what, reason)
            self.flaps.disconnected()
        self.connected.clear()

    def _message_cb(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = message.payload
        inbound = Inbound(
            message.topic,
            payload if isinstance(payload, bytes) else bytes(payload),
            bool(message.retain),
            message.qos,
            message.mid,
        )
        with self._handlers_lock:
            handler = next(
                (
                    h
                    for topic, h, _qos in self._handlers
                    if mqtt.topic_matches_sub(topic, inbound.topic)
                ),
                None,
            )
        done: bool | Deferred | None = True
        if handler is not None:
            try:
                done = handler(inbound)
            except Exception:  # a bad handler must not kill paho's network thread
                _LOGGER.exception("%s: handler for %s failed", self.what, inbound.topic)
                done = False
        if not self.persistent:
            return
        if done is False:
            # Not acknowledged: the broker keeps the message and sends it again after the
            # connection is back (paho reconnects by itself, with its backoff).
            self.drop_connection()
        elif done is not DEFERRED:
            client.ack(message.mid, message.qos)
