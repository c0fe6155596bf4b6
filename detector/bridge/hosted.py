"""The bridge inside `smokewatch run`: whatever happens to it, the detector keeps detecting.

The bridge is started under supervision: an outbox that cannot be opened (corrupt, on a
read-only or full disk) is a fault shown in the detector's stats and retried with backoff,
never a reason for `smokewatch run` not to start. It takes the detector's detections over the
broker, on its own persistent session, exactly as `smokewatch bridge` does: the detector only
publishes them (it never waits on the bridge's disk), and the broker keeps them for the bridge
while it is starting, stalled or down, across a crash of either process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt_client

from detector.bridge.bridge_service import BridgeService
from detector.config import Config
from detector.contract import DETECTION, camera_topic, prefixed
from detector.mqtt import make_client
from detector.supervise import Health, supervised_thread

_LOGGER = logging.getLogger(__name__)

PART = "bridge"


class HostedBridge:
    """Starts the bridge in the background, in the detector's process."""

    def __init__(self, config: Config, health: Health, stop: threading.Event) -> None:
        self.config = config
        self.health = health
        self.bridge: BridgeService | None = None
        self._keeper: mqtt_client.Client | None = None
        self._lock = threading.Lock()
        # A failed start is the part's fault ("bridge"), retried with backoff.
        self._thread = supervised_thread(PART, self._start, health, stop, cap=60.0)

    def start(self) -> None:
        """Start the bridge in the background (retried with backoff until it starts)."""
        self._thread.start()

    def _start(self) -> None:
        try:
            bridge = BridgeService(self.config)
        except Exception:
            # Until the bridge starts, its broker session must exist, or the broker would
            # not keep the detections published meanwhile for it (on a first start).
            self._keep_session()
            raise
        self._release_session()
        bridge.start()
        with self._lock:
            self.bridge = bridge
        self.health.ok(PART)

    def _keep_session(self) -> None:
        """Hold the bridge's persistent session, subscribed to detections, acknowledging
        nothing: the broker keeps every detection for the bridge, which resumes the session
        (same client id) once it starts. It announces nothing: the bridge is not working."""
        if self._keeper is not None:
            return
        mqtt = self.config.mqtt
        topic = prefixed(mqtt.topic_prefix, camera_topic("+", DETECTION))
        client = make_client(
            mqtt,
            client_id=self.config.bridge.client_id,
            will_topic=None,
            queue_limit=10,
            persistent_session=True,
        )

        def connected(c: mqtt_client.Client, *args: Any) -> None:
            c.subscribe(topic, 1)

        client.on_connect = connected  # messages are neither handled nor acknowledged
        client.connect_async(mqtt.host, mqtt.port, mqtt.keepalive)
        client.loop_start()
        self._keeper = client
        _LOGGER.info("Holding the bridge's broker session: detections wait there for it")

    def _release_session(self) -> None:
        if self._keeper is not None:
            self._keeper.disconnect()
            self._keeper.loop_stop()
            self._keeper = None

    def stop(self) -> None:
        """Stop the bridge if it started (the supervisor stops with the detector)."""
        with self._lock:
            bridge = self.bridge
        if bridge is not None:
            bridge.stop()
        self._release_session()
