"""The bridge's MQTT side: detections in (durably), camera frames for the duties, health out.

Detections arrive with QoS 1 on a persistent session (fixed client id, clean_session false), so
the broker keeps what is published while the bridge is down. Acknowledgements are manual: a
detection is acknowledged only once its outbox commit returned, so the broker never forgets a
detection that is not on disk. When the commit fails (disk full, I/O error) the message is not
acknowledged and the connection is dropped: the broker sends it again after the reconnect.
"""

from __future__ import annotations

import binascii
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from detector.bridge.outbox import Outbox
from detector.config import Config
from detector.contract import BRIDGE_AVAILABLE, DETECTION, DetectionMessage, camera_topic
from detector.flaps import FlapWatch
from detector.mqtt import make_client, prefixed, say_offline_and_disconnect
from detector.untrusted import parse_json

_LOGGER = logging.getLogger(__name__)

# Health messages queue while the broker is away; the bound keeps memory flat.
QUEUE_LIMIT = 1000


class Intake:
    """The bridge's own MQTT client."""

    def __init__(
        self,
        config: Config,
        outbox: Outbox,
        *,
        on_stored: Callable[[], None],
        on_frame: Callable[[str, bytes], None],
        on_connected: Callable[[], None],
        subscribe_detections: bool = True,
        on_ha_online: Callable[[], None] | None = None,
    ) -> None:
        self.mqtt = config.mqtt
        # False when the bridge is hosted by `smokewatch run`: detections are handed over in
        # the process (`store`), without the broker hop and without storing them twice.
        self.subscribe_detections = subscribe_detections
        self.settings = config.bridge
        self.prefix = config.mqtt.topic_prefix
        self.outbox = outbox
        self.on_stored = on_stored
        self.on_frame = on_frame
        self.on_connected = on_connected
        self.on_ha_online = on_ha_online or on_connected
        self.available_topic = self.topic(BRIDGE_AVAILABLE)
        self.ha_status_topic = f"{config.mqtt.discovery_prefix}/status"
        self.image_topics = {
            config.cameras[camera].image_topic: camera
            for camera in self.settings.cameras
            if camera in config.cameras
        }
        self.connected = threading.Event()
        self.storage_errors = 0
        self._skipped_logged: set[str] = set()
        self._stopping = False
        self.client = self._client()
        self.flaps = FlapWatch(self.settings.client_id, "Bridge MQTT")

    def _client(self) -> mqtt.Client:
        # A persistent session with manual acknowledgements: see the module's docstring.
        client = make_client(
            self.mqtt,
            client_id=self.settings.client_id,
            will_topic=self.available_topic,
            queue_limit=QUEUE_LIMIT,
            persistent_session=True,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background (paho reconnects by itself)."""
        self.client.connect_async(self.mqtt.host, self.mqtt.port, self.mqtt.keepalive)
        self.client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish `offline`, disconnect (the session stays on the broker)."""
        self._stopping = True
        say_offline_and_disconnect(
            self.client, self.available_topic, connected=self.connected.is_set(), timeout=timeout
        )

    def topic(self, relative: str) -> str:
        """The full topic of a topic below the prefix."""
        return prefixed(self.prefix, relative)

    def publish(self, topic: str, payload: str | bytes, *, retain: bool, qos: int = 0) -> None:
        """Publish below the prefix (from any thread; queued while disconnected)."""
        self.publish_absolute(self.topic(topic), payload, retain=retain, qos=qos)

    def publish_absolute(
        self, topic: str, payload: str | bytes, *, retain: bool, qos: int = 0
    ) -> None:
        """Publish a full topic (discovery lives outside the prefix)."""
        result = self.client.publish(topic, payload, qos=qos, retain=retain)
        if result.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            _LOGGER.warning("Publish on %s failed: %s", topic, mqtt.error_string(result.rc))

    # -- callbacks (paho's network thread) -------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            _LOGGER.error("The broker refused the bridge: %s", reason)
            return
        _LOGGER.info(
            "Bridge connected to %s:%s (session %s)",
            self.mqtt.host,
            self.mqtt.port,
            "resumed" if flags.session_present else "new",
        )
        topics = [(self.ha_status_topic, 0)]
        if self.subscribe_detections:
            topics.append((self.topic(camera_topic("+", DETECTION)), 1))
        topics += [(topic, 0) for topic in self.image_topics]
        client.subscribe(topics)
        client.publish(self.available_topic, "online", qos=1, retain=True)
        self.flaps.connected()
        self.connected.set()
        self.on_connected()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if self.connected.is_set() and not self._stopping:
            _LOGGER.warning("Bridge disconnected from the broker (%s); reconnecting", reason)
            self.flaps.disconnected()
        self.connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            stored = self._handle(message.topic, bytes(message.payload))
        except Exception:  # a surprise must not kill paho's thread, nor be acknowledged
            _LOGGER.exception("Intake of a message on %s failed", message.topic)
            stored = False
        if stored:
            client.ack(message.mid, message.qos)
        else:
            self._redeliver_later()

    def _handle(self, topic: str, payload: bytes) -> bool:
        """Act on one message; False when it must not be acknowledged."""
        camera = self.image_topics.get(topic)
        if camera is not None:
            self.on_frame(camera, payload)
            return True
        if topic == self.ha_status_topic:
            if payload == b"online":
                self.on_ha_online()
            return True
        return self._intake(topic, payload)

    def _intake(self, topic: str, payload: bytes) -> bool:
        """Commit one detection to the outbox before paho may acknowledge it."""
        topic_camera = topic[len(self.prefix) + 1 : -len(f"/{DETECTION}")]
        try:
            # Bounded: a detection is 3 levels deep; no NaN, no 400-digit number.
            detection = DetectionMessage.from_json(parse_json(payload, max_depth=4))
            if detection.camera != topic_camera:
                raise ValueError(f"camera {detection.camera!r} published on {topic}")
        except (ValueError, TypeError, RecursionError, binascii.Error) as err:
            _LOGGER.warning("Refused a detection on %s: %s", topic, err)
            return self._count("rejected", topic_camera)
        return self.store(detection)

    def store(self, detection: DetectionMessage) -> bool:
        """Commit one detection to the outbox; False when it could not be stored (counted in
        `storage_errors`, logged): the caller must keep it and offer it again."""
        if detection.camera not in self.settings.cameras:
            if detection.camera not in self._skipped_logged:
                self._skipped_logged.add(detection.camera)
                _LOGGER.warning(
                    "Detections of camera %s are not forwarded: it has no token and pose_id"
                    " under bridge.cameras (counted as skipped)",
                    detection.camera,
                )
            return self._count("skipped", detection.camera)
        boxes = [[float(v) for v in box] for box in detection.bboxes]
        try:
            added = self.outbox.add(
                detection.id, detection.camera, detection.recorded_at, boxes, detection.jpeg
            )
            evicted = self.outbox.enforce_limits(self.settings.max_items, self.settings.max_bytes)
        except Exception as err:
            self.storage_errors += 1
            _LOGGER.error(
                "Cannot store detection %s in the outbox (%s): not acknowledged, the broker"
                " will send it again",
                detection.id,
                err,
            )
            return False
        if not added:
            _LOGGER.info("Detection %s received again (broker redelivery): ignored", detection.id)
        for item_id, camera in evicted:
            _LOGGER.warning(
                "Outbox over bridge.max_items/max_bytes: evicted the oldest undelivered"
                " detection %s of %s (counted in stats as evicted)",
                item_id,
                camera,
            )
        self.on_stored()
        return True

    def _count(self, name: str, camera: str) -> bool:
        try:
            self.outbox.count(name, camera)
        except Exception as err:
            self.storage_errors += 1
            _LOGGER.error("Cannot count a %s detection in the outbox: %s", name, err)
            return False
        self.on_stored()
        return True

    def _redeliver_later(self) -> None:
        """Drop the connection so the broker sends the unacknowledged message again."""
        shutdown = getattr(self.client.socket(), "shutdown", None)
        if shutdown is not None:
            # paho sees the closed stream and reconnects with its backoff (1 s, doubling).
            with contextlib.suppress(OSError):
                shutdown(socket.SHUT_RDWR)
