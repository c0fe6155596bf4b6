"""Start-up reconciliation: what the broker kept of the previous run, applied once.

Right after the first connect the broker sends the retained messages of the detector's own
topics: each camera's settings states (`<cam>/<setting>/state`) with their sources
(`<cam>/settings`), and the previous `info` (which cameras it had). They are collected until the
echo of the start-up probe comes back: the probe is published after the subscriptions were
made, so the broker sends it after every retained message of theirs, and no fixed wait is
needed. Then, once:

- the settings changed in Home Assistant are restored by the rule of settings.py (a change
  made at run time lasts until the file's value of that setting changes);
- the discovery and states of cameras that left the config are emptied (HA removes them).

And when the model cannot be loaded, `publish_model_error` tells Home Assistant so (the
retained info says `model_missing`, which the integration raises as a repair issue).

After that, messages on these topics (the detector's own publishes coming back) are ignored.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from detector import contract as wire
from detector.config import Config, MqttConfig
from detector.contract import (
    camera_device_id,
    camera_topic,
    detector_info,
    entity_unique_id,
    state_leaf,
)
from detector.mqtt import Inbound
from detector.service import discovery
from detector.service.actions import CameraActions
from detector.service.cameras import CameraWatch
from detector.service.command_table import CommandTable
from detector.service.comms import Comms, detector_session
from detector.service.publisher import Publisher
from detector.service.settings import FILE_KEYS, MASKS_MAX_BYTES
from detector.untrusted import parse_json

_LOGGER = logging.getLogger(__name__)

# The broker is expected to echo the probe at once; a broker whose ACL refuses it delays the
# start by this much, once, and a warning says the restore may be incomplete.
RESTORE_TIMEOUT = 5.0
# A previous info larger than this is not ours (a thousand cameras fit in a tenth of it).
INFO_MAX_BYTES = 1024 * 1024


class Startup:
    """Collects the previous run's retained states, then reconciles them once."""

    def __init__(
        self,
        mqtt: MqttConfig,
        cameras: dict[str, CameraWatch],
        commands: CommandTable,
        actions: CameraActions,
        publish: Publisher,
        *,
        elsewhere: frozenset[str] = frozenset(),
    ) -> None:
        self.mqtt = mqtt
        self.cameras = cameras
        self.commands = commands
        self.actions = actions
        self.publish = publish
        self.elsewhere = elsewhere  # cameras of the config that other instances score
        self.collecting = True
        self.previous_info: dict[str, Any] | None = None
        self._retained: dict[str, bytes] = {}
        self._probe = uuid.uuid4().hex.encode()
        self._echoed = threading.Event()

    def subscribe(self, comms: Comms) -> None:
        """The topics whose retained messages are the previous run's."""
        comms.subscribe(camera_topic("+", state_leaf("+")), self._state)
        comms.subscribe(camera_topic("+", wire.SETTINGS_SOURCES), self._state)
        comms.subscribe(self.mqtt.detector_topic(wire.INFO), self._info)
        comms.subscribe(self.mqtt.detector_topic(wire.PROBE), self._probe_echo)

    # -- the bus's thread ------------------------------------------------------------------

    def _state(self, message: Inbound) -> None:
        if self.collecting:
            self._retained[message.topic] = message.payload

    def _info(self, message: Inbound) -> None:
        if self.previous_info is None and self.collecting:
            try:
                info = parse_json(message.payload, max_bytes=INFO_MAX_BYTES)
            except ValueError:
                return
            if isinstance(info, dict):
                self.previous_info = info

    def _probe_echo(self, message: Inbound) -> None:
        if message.payload == self._probe:
            self._echoed.set()

    # -- the control thread ----------------------------------------------------------------

    def collect(self, comms: Comms, timeout: float = RESTORE_TIMEOUT) -> bool:
        """Publish the probe and wait for its echo; False when it did not come in time."""
        comms.publish(self.mqtt.detector_topic(wire.PROBE), self._probe, qos=1)
        echoed = self._echoed.wait(timeout)
        if not echoed:
            _LOGGER.warning(
                "The broker did not echo the start-up probe on %s within %.0f s (an ACL?):"
                " settings changed in Home Assistant may not be restored",
                self.mqtt.detector_topic(wire.PROBE),
                timeout,
            )
        self.collecting = False
        return echoed

    def restore_settings(self) -> None:
        """Apply the settings the retained states held, by the rule of settings.py."""
        prefix = self.mqtt.topic_prefix
        retained, self._retained = self._retained, {}
        for camera, watch in self.cameras.items():
            records = _json_object(
                retained.get(f"{prefix}/{camera_topic(camera, wire.SETTINGS_SOURCES)}")
            )
            for key in wire.SETTINGS:
                payload = retained.get(f"{prefix}/{camera_topic(camera, state_leaf(key))}")
                if payload is None:
                    continue
                text = payload.decode("utf-8", "replace").strip()
                if key not in FILE_KEYS:
                    self.commands.apply(camera, key, text, source="restored state")
                    continue
                ok, value = self.commands.parse(camera, key, text, source="restored state")
                record = None if records is None else records.get(key)
                if ok and watch.settings.restored(key, value, record):
                    self.actions.apply_live(camera)
                    _LOGGER.info("Camera %s: %s set to %s (restored state)", camera, key, text)

    def remove_old_cameras(self) -> list[str]:
        """Empty the retained discovery and states of cameras no longer configured; which.

        A camera that moved to another instance (instance.count changed) is not ours to
        remove: its new detector publishes its entities, perhaps already.
        """
        previous = self.previous_info or {}
        old = previous.get("cameras") if isinstance(previous.get("cameras"), dict) else {}
        gone = sorted(set(old or {}) - set(self.cameras) - self.elsewhere)
        for camera in gone:
            _LOGGER.info("Camera %s left the config: removing its entities", camera)
            device = camera_device_id(self.mqtt, camera)
            self.publish.remove_camera(
                camera,
                [
                    (component, entity_unique_id(device, key))
                    for component, key in discovery.CAMERA_DISCOVERY
                ],
            )
        return gone


def _json_object(payload: bytes | None) -> dict[str, Any] | None:
    """A retained JSON object of ours, or None (absent or not an object)."""
    if not payload:
        return None
    try:
        data = parse_json(payload, max_bytes=MASKS_MAX_BYTES)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def publish_model_error(config: Config, error: str, *, comms: Comms | None = None) -> None:
    """Tell Home Assistant (retained P/info) that the model is missing, then disconnect."""
    comms = comms or detector_session(config.mqtt)
    comms.start()
    info = detector_info(
        config.mqtt, list(config.cameras.values()), None, status="model_missing", error=error
    )
    topic = config.mqtt.detector_topic(wire.INFO)
    if not comms.publish_and_wait(topic, json.dumps(info), retain=True, timeout=15):
        _LOGGER.error("Broker unreachable: the model error is only in this log")
    comms.stop()
