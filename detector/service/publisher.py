"""The one place that publishes the detector's topics: every `<cam>/…` leaf, the detector's
info and stats, and the discovery payloads, each with its retain flag and QoS.

Retained: what HA must see again after it restarts or reconnects (states, settings, images,
attributes, info). Not retained: events and detections (a replay would fire a trigger twice or
forward an old frame). QoS 1 where losing one message loses a transition; QoS 0 for what the
next message repeats anyway (scores, attributes, stats, frames).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from typing import Any

from detector import contract as wire
from detector.config import MqttConfig
from detector.contract import (
    camera_topic,
    command_result,
    config_topic,
    result_leaf,
    state_leaf,
)
from detector.service.alerts import AlertChange
from detector.service.comms import Comms

_LOGGER = logging.getLogger(__name__)

# Detections the MQTT client could not take (its queue full): kept and offered again from
# the control thread, up to this many (beyond it the oldest goes, counted and logged).
UNSENT_DETECTIONS_LIMIT = 1000


def _json(data: Any) -> str:
    return json.dumps(data)


class Publisher:
    """Publishes through a Comms; safe to call from any thread."""

    def __init__(self, comms: Comms, mqtt: MqttConfig) -> None:
        self.comms = comms
        self.mqtt = mqtt
        self._unsent: deque[tuple[str, str]] = deque()
        self._unsent_lock = threading.Lock()
        self.detections_dropped = 0

    # -- a camera's alert ------------------------------------------------------------------

    def alert(self, camera: str, change: AlertChange) -> None:
        """What an alert transition changed: score and attributes, then the state, then the
        event."""
        if change.score is not None:
            self.score(camera, change.score)
        if change.attributes is not None:
            self.attributes(camera, change.attributes)
        if change.smoke is not None:
            self.comms.publish(
                camera_topic(camera, wire.SMOKE),
                "ON" if change.smoke else "OFF",
                retain=True,
                qos=1,
            )
        if change.event is not None:
            # One message per transition, never retained: a device trigger fires once per
            # alert and never on a replayed state (see discovery.py).
            self.comms.publish(
                camera_topic(camera, wire.SMOKE_EVENT), _json(change.event.to_json()), qos=1
            )

    def smoke_state(self, camera: str, on: bool) -> None:
        """The retained smoke state alone (a re-publish: no event)."""
        self.comms.publish(
            camera_topic(camera, wire.SMOKE), "ON" if on else "OFF", retain=True, qos=1
        )

    def attributes(self, camera: str, attributes: dict[str, Any]) -> None:
        """The smoke sensor's attributes (the latest frame's score, boxes, drops, alert)."""
        self.comms.publish(
            camera_topic(camera, wire.SMOKE_ATTRIBUTES), _json(attributes), retain=True
        )

    def score(self, camera: str, score: float) -> None:
        """The latest vote score, in %."""
        self.comms.publish(camera_topic(camera, wire.SCORE), f"{score:.1f}", retain=True)

    def alert_image(self, camera: str, image: bytes) -> None:
        """The latest alert frame with its boxes drawn."""
        self.comms.publish(camera_topic(camera, wire.ALERT_IMAGE), image, retain=True, qos=1)

    def frame(self, camera: str, data: bytes) -> None:
        """The latest scored frame as it came (the zone card draws on it)."""
        self.comms.publish(camera_topic(camera, wire.FRAME), data, retain=True)

    # -- a camera's health -----------------------------------------------------------------

    def status(self, camera: str, status: str) -> None:
        """online, frozen, refused, stale or offline (the availability of its entities)."""
        self.comms.publish(camera_topic(camera, wire.STATUS), status, retain=True, qos=1)

    def view(self, camera: str, view: str) -> None:
        """What the camera can see: clear, night, frozen or obscured."""
        self.comms.publish(camera_topic(camera, wire.VIEW), view, retain=True, qos=1)

    # -- a camera's settings ---------------------------------------------------------------

    def setting_states(
        self,
        camera: str,
        *,
        enabled: bool,
        threshold: float,
        masks: list[dict[str, Any]],
        sources: dict[str, Any],
    ) -> None:
        """The settings' states (what HA's switch, number and zone card show), and where each
        value comes from (the file or a change at run time) on `<cam>/settings`."""
        state = "ON" if enabled else "OFF"
        self.comms.publish(
            camera_topic(camera, state_leaf(wire.ENABLED)), state, retain=True, qos=1
        )
        self.comms.publish(
            camera_topic(camera, state_leaf(wire.THRESHOLD)), f"{threshold:g}", retain=True, qos=1
        )
        self.comms.publish(
            camera_topic(camera, state_leaf(wire.MASKS)), _json(masks), retain=True, qos=1
        )
        self.comms.publish(
            camera_topic(camera, wire.SETTINGS_SOURCES), _json(sources), retain=True, qos=1
        )

    def command_result(
        self, camera: str, command: str, request_id: str | None, ok: bool, reason: str | None
    ) -> None:
        """The outcome of one command (QoS 1, not retained: it answers one request)."""
        self.comms.publish(
            camera_topic(camera, result_leaf(command)),
            _json(command_result(request_id, ok, reason)),
            qos=1,
        )

    def masks_attributes(self, camera: str, attributes: dict[str, Any]) -> None:
        """Every mask of the camera (local, the API's, false alarms) for the zone card."""
        self.comms.publish(
            camera_topic(camera, wire.MASKS_ATTRIBUTES), _json(attributes), retain=True
        )

    # -- detections ------------------------------------------------------------------------

    def detection(self, camera: str, detection: dict[str, Any]) -> bool:
        """A frame to forward to the Pyronear API: QoS 1, never dropped by a full client queue
        (kept and offered again by `send_unsent` instead). True when it went out at once."""
        payload = _json(detection)
        with self._unsent_lock:
            if not self._unsent and self.comms.publish(
                camera_topic(camera, wire.DETECTION), payload, qos=1
            ):
                return True
            self._unsent.append((camera, payload))
            if len(self._unsent) > UNSENT_DETECTIONS_LIMIT:
                self._unsent.popleft()
                self.detections_dropped += 1
                _LOGGER.error("A detection of %s was dropped: the MQTT queue stayed full", camera)
        return False

    def send_unsent(self) -> None:
        """Offer the detections the client refused again, oldest first, in order."""
        with self._unsent_lock:
            while self._unsent:
                camera, payload = self._unsent[0]
                if not self.comms.publish(camera_topic(camera, wire.DETECTION), payload, qos=1):
                    return
                self._unsent.popleft()

    @property
    def detections_waiting(self) -> int:
        """Detections kept because the client's queue was full."""
        return len(self._unsent)

    # -- the detector ----------------------------------------------------------------------

    def info(self, info: dict[str, Any]) -> None:
        """The retained description of this detector (read by the HA integration)."""
        self.comms.publish(self.mqtt.detector_topic(wire.INFO), _json(info), retain=True, qos=1)

    def stats(self, stats: dict[str, Any]) -> None:
        """The detector's stats (its health entities read them)."""
        self.comms.publish(self.mqtt.detector_topic(wire.STATS), _json(stats))

    def discovery(self, payloads: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Home Assistant discovery payloads, by (component, unique id)."""
        for (component, unique_id), payload in payloads.items():
            topic = config_topic(self.mqtt, component, unique_id)
            self.comms.publish_absolute(topic, _json(payload), retain=True, qos=1)

    def remove_camera(self, camera: str, unique_ids: list[tuple[str, str]]) -> None:
        """Empty a camera's retained discovery and states: HA deletes its entities."""
        for component, unique_id in unique_ids:
            topic = config_topic(self.mqtt, component, unique_id)
            self.comms.publish_absolute(topic, b"", retain=True, qos=1)
        for leaf in wire.CAMERA_STATE_LEAVES:
            self.comms.publish(camera_topic(camera, leaf), b"", retain=True, qos=1)
