"""The bridge's MQTT side: detections in (durably), camera frames for the duties, health out.

Detections arrive with QoS 1 on a persistent session (fixed client id, clean_session false), so
the broker keeps what is published while the bridge is down: the broker is the bounded queue
between the detector and the bridge, the same whether the bridge runs as `smokewatch bridge` or
inside `smokewatch run` (the detector never waits on the bridge's disk). Acknowledgements are
manual: a detection is acknowledged only once its outbox commit returned, so the broker never
forgets a detection that is not on disk.

Commits run on a storage thread of their own, never on paho's network thread: a stalled disk
(an SD card, another process holding the outbox's lock) delays acknowledgements, not the
session's keep-alive, its other messages or the health it publishes. The broker sends at most
its in-flight window of unacknowledged detections, so the storage queue stays small; a commit
that fails (disk full, I/O error) is retried with backoff, the detection kept in memory and
unacknowledged meanwhile, so a crash loses nothing: the broker still has it.
"""

from __future__ import annotations

import binascii
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from detector.bridge.outbox import Outbox
from detector.config import Config
from detector.contract import (
    BRIDGE_AVAILABLE,
    DETECTION,
    DetectionMessage,
    camera_topic,
    ha_status_topic,
)
from detector.mqtt import DEFERRED, Deferred, Inbound, MqttSession, is_birth
from detector.supervise import Health
from detector.untrusted import parse_json

_LOGGER = logging.getLogger(__name__)

# Health messages queue while the broker is away; the bound keeps memory flat.
QUEUE_LIMIT = 1000
# Detections received and not yet committed. A broker sends at most its in-flight window of
# unacknowledged QoS 1 messages (Mosquitto: 20); beyond this bound (a broker with a larger
# window and a stalled disk) the newest is left unacknowledged, and comes back after a
# reconnect.
STORAGE_QUEUE_LIMIT = 200
# Commit retries after a failure: from this, doubling, up to the cap (seconds).
RETRY_INITIAL, RETRY_CAP = 0.5, 30.0
# A commit that has not returned for this long is a stalled disk: shown as a fault.
STALL_AFTER = 10.0
PART = "outbox"


@dataclass(frozen=True)
class _Received:
    """A message waiting for the storage thread: a detection to commit, or (detection None)
    a refused one to count; with what acknowledges it."""

    camera: str
    detection: DetectionMessage | None
    mid: int
    qos: int


class Intake:
    """The bridge's own MQTT session and the storage thread behind it."""

    def __init__(
        self,
        config: Config,
        outbox: Outbox,
        *,
        on_stored: Callable[[], None],
        on_frame: Callable[[str, bytes], None],
        on_connected: Callable[[], None],
        on_ha_online: Callable[[], None] | None = None,
        health: Health | None = None,
    ) -> None:
        self.mqtt = config.mqtt
        self.bridge = config.bridge
        self.outbox = outbox
        self.on_stored = on_stored
        self.on_frame = on_frame
        self.on_connected = on_connected
        self.on_ha_online = on_ha_online or on_connected
        self.health = health or Health("bridge")
        self.storage_errors = 0
        self._skipped_logged: set[str] = set()
        self._queue: queue.Queue[_Received | None] = queue.Queue()
        self._busy_since: float | None = None  # monotonic start of the commit in progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._store_loop, name="outbox-writer", daemon=True)
        self.session = MqttSession(
            config.mqtt,
            client_id=self.bridge.client_id,
            will_topic=BRIDGE_AVAILABLE,
            queue_limit=QUEUE_LIMIT,
            what="Bridge MQTT",
            persistent=True,
        )
        self.session.on_connected = lambda _resumed: self.on_connected()
        self.session.subscribe(ha_status_topic(self.mqtt), self._ha_status, absolute=True)
        self.session.subscribe(camera_topic("+", DETECTION), self._detection, qos=1)
        for topic in {
            config.cameras[camera].image_topic
            for camera in self.bridge.cameras
            if camera in config.cameras
        }:
            self.session.subscribe(topic, self._frame, absolute=True)
        self.image_topics = {
            config.cameras[camera].image_topic: camera
            for camera in self.bridge.cameras
            if camera in config.cameras
        }

    @property
    def connected(self) -> threading.Event:
        """Set while the session is connected."""
        return self.session.connected

    def start(self) -> None:
        """Start the storage thread and connect in the background (paho reconnects)."""
        self._thread.start()
        self.session.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish `offline`, disconnect (the session stays on the broker), stop storing:
        what was received and not committed stays unacknowledged, so the broker keeps it."""
        self.session.stop(timeout=timeout)
        self._stop.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def publish(self, topic: str, payload: str | bytes, *, retain: bool, qos: int = 0) -> None:
        """Publish below the prefix (from any thread; queued while disconnected)."""
        self.session.publish(topic, payload, retain=retain, qos=qos)

    def publish_absolute(
        self, topic: str, payload: str | bytes, *, retain: bool, qos: int = 0
    ) -> None:
        """Publish a full topic (discovery lives outside the prefix)."""
        self.session.publish_absolute(topic, payload, retain=retain, qos=qos)

    def stalled_for(self) -> float:
        """Seconds the commit in progress has been running (0 when none is)."""
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    @property
    def waiting(self) -> int:
        """Detections received and not yet on disk (the one being written included)."""
        return self._queue.qsize() + (self._busy_since is not None)

    # -- handlers (paho's network thread: quick, never waiting on the disk) ----------------

    def _ha_status(self, message: Inbound) -> None:
        if is_birth(message.payload):
            self.on_ha_online()

    def _frame(self, message: Inbound) -> None:
        camera = self.image_topics.get(message.topic)
        if camera is not None:
            self.on_frame(camera, message.payload)

    def _detection(self, message: Inbound) -> bool | Deferred:
        """Validate a detection and hand it to the storage thread; it is acknowledged there,
        once committed (a refused one at once: sending it again would not make it valid)."""
        topic_camera = message.topic[len(self.mqtt.topic_prefix) + 1 : -len(f"/{DETECTION}")]
        try:
            # Bounded: a detection is 3 levels deep; no NaN, no 400-digit number.
            detection = DetectionMessage.from_json(parse_json(message.payload, max_depth=4))
            if detection.camera != topic_camera:
                raise ValueError(f"camera {detection.camera!r} published on {message.topic}")
        except (ValueError, TypeError, RecursionError, binascii.Error) as err:
            _LOGGER.warning("Refused a detection on %s: %s", message.topic, err)
            detection = None
        if self._queue.qsize() >= STORAGE_QUEUE_LIMIT:
            _LOGGER.warning(
                "A detection of %s left unacknowledged: %d wait for the disk already (the"
                " broker sends it again after a reconnect)",
                topic_camera,
                STORAGE_QUEUE_LIMIT,
            )
            return False
        self._queue.put(_Received(topic_camera, detection, message.mid, message.qos))
        return DEFERRED

    # -- the storage thread ----------------------------------------------------------------

    def _store_loop(self) -> None:
        delay = RETRY_INITIAL
        while True:
            received = self._queue.get()
            if received is None or self._stop.is_set():
                return
            while not self._store(received):
                if self._stop.wait(delay):
                    return  # unacknowledged: the broker keeps it for the next start
                delay = min(RETRY_CAP, delay * 2)
            delay = RETRY_INITIAL
            self.session.ack(received.mid, received.qos)

    def _store(self, received: _Received) -> bool:
        """Commit one detection (or count one refused or skipped); False when the outbox
        refused the write (retried; logged once per streak, shown as a fault)."""
        self._busy_since = time.monotonic()
        detection = received.detection
        try:
            if detection is None:
                self.outbox.count("rejected", received.camera)
            elif detection.camera not in self.bridge.cameras:
                self._skip(detection.camera)
            else:
                self._commit(detection)
        except Exception as err:
            self.storage_errors += 1
            self.health.fault(
                PART,
                f"cannot store detections in the outbox ({err}); kept unacknowledged and"
                " retried: the broker still has them",
                exc=err,
            )
            return False
        finally:
            self._busy_since = None
        self.health.ok(PART)
        self.on_stored()
        return True

    def _skip(self, camera: str) -> None:
        if camera not in self._skipped_logged:
            self._skipped_logged.add(camera)
            _LOGGER.warning(
                "Detections of camera %s are not forwarded: it has no token and pose_id"
                " under bridge.cameras (counted as skipped)",
                camera,
            )
        self.outbox.count("skipped", camera)

    def _commit(self, detection: DetectionMessage) -> None:
        boxes = [[float(v) for v in box] for box in detection.bboxes]
        added = self.outbox.add(
            detection.id, detection.camera, detection.recorded_at, boxes, detection.jpeg
        )
        evicted = self.outbox.enforce_limits(self.bridge.max_items, self.bridge.max_bytes)
        if not added:
            _LOGGER.debug("Detection %s received again (broker redelivery): ignored", detection.id)
        for item_id, camera in evicted:
            _LOGGER.warning(
                "Outbox over bridge.max_items/max_bytes: evicted the oldest undelivered"
                " detection %s of %s (counted in stats as evicted)",
                item_id,
                camera,
            )
