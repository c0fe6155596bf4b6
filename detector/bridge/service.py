"""`smokewatch bridge`: MQTT detections → outbox → Pyronear API, and the periodic duties.

Intake runs on paho's thread with QoS 1 and a persistent session (fixed client id, no clean
session), and commits each detection to the outbox before the callback returns: the broker's
acknowledgement never precedes durability. Delivery runs on an asyncio loop in its own thread,
in order per camera, with exponential backoff and full jitter on temporary failures. Nothing
touches the network at start-up: the bridge starts and queues with the API unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from detector import __version__
from detector.bridge.api import PyronearClient, crops, fit_for_upload
from detector.bridge.bboxes import format_bboxes
from detector.bridge.outbox import Outbox
from detector.config import Config
from detector.pipeline import Detection, iso_utc

_LOGGER = logging.getLogger(__name__)


@dataclass
class CameraDuties:
    """What the periodic duties remember about one camera."""

    last_frame: bytes | None = None
    last_frame_at: float | None = None
    next_heartbeat: float = 0.0
    next_last_image: float = 0.0
    next_masks: float = 0.0
    pose_image_day: str | None = None
    backoff: float = 0.0
    retry_at: float = 0.0


class BridgeService:
    """The bridge process (or a part of `smokewatch run` when `bridge.enabled`)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = config.bridge
        self.prefix = config.mqtt.topic_prefix
        self.node_id = config.mqtt.node_id
        self.outbox = Outbox(self.settings.outbox)
        self.api = PyronearClient(self.settings.url, self.settings.timeout)
        self.duties = {camera: CameraDuties() for camera in self.settings.cameras}
        self._image_topics = {
            config.cameras[camera].image_topic: camera
            for camera in self.settings.cameras
            if camera in config.cameras
        }
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self.connected_api: bool | None = None
        self.rejected = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="bridge-delivery", daemon=True)
        self.client = self._mqtt_client()

    # -- MQTT ------------------------------------------------------------------------------

    def _mqtt_client(self) -> mqtt.Client:
        settings = self.config.mqtt
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.settings.client_id,
            clean_session=False,  # the broker keeps our QoS 1 messages while we are down
            protocol=mqtt.MQTTv311,
        )
        client.will_set(f"{self.prefix}/bridge/available", "offline", qos=1, retain=True)
        if settings.username is not None:
            client.username_pw_set(
                str(settings.username),
                None if settings.password is None else str(settings.password),
            )
        if settings.tls.enabled:
            client.tls_set(
                ca_certs=settings.tls.ca_certs,
                certfile=settings.tls.certfile,
                keyfile=settings.tls.keyfile,
            )
            client.tls_insecure_set(settings.tls.insecure)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            _LOGGER.error("Broker refused the bridge: %s", reason)
            return
        _LOGGER.info("Bridge connected to the broker")
        client.subscribe(f"{self.prefix}/+/detection", qos=1)
        for topic in self._image_topics:
            client.subscribe(topic, qos=0)
        client.publish(f"{self.prefix}/bridge/available", "online", qos=1, retain=True)
        self._publish_discovery()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        camera = self._image_topics.get(message.topic)
        if camera is not None:
            duties = self.duties[camera]
            duties.last_frame, duties.last_frame_at = bytes(message.payload), time.time()
            return
        self._intake(message.topic, bytes(message.payload))

    def _intake(self, topic: str, payload: bytes) -> None:
        """Commit one detection to the outbox; this returns before paho acknowledges it."""
        try:
            detection = Detection.from_json(json.loads(payload))
        except (ValueError, UnicodeDecodeError) as err:
            self.rejected += 1
            _LOGGER.warning("Refused a detection on %s: %s", topic, err)
            return
        boxes = [[float(v) for v in box] for box in detection.bboxes]
        if detection.camera not in self.settings.cameras:
            self.outbox.add_failed(
                detection.id, detection.camera, detection.recorded_at,
                f"no Pyronear token/pose configured for camera {detection.camera}",
            )  # fmt: skip
            _LOGGER.warning(
                "Detection of %s kept as failed: camera not in bridge.cameras", detection.camera
            )
            return
        if not self.outbox.add(
            detection.id, detection.camera, detection.recorded_at, boxes, detection.jpeg
        ):
            _LOGGER.info("Detection %s received again (broker redelivery): ignored", detection.id)
            return
        for evicted in self.outbox.enforce_limits(self.settings.max_items, self.settings.max_bytes):
            _LOGGER.warning("Outbox full: evicted undelivered detection %s (counted)", evicted)
        self._wake.set()

    def _publish_discovery(self) -> None:
        discovery = self.config.mqtt.discovery_prefix
        device = {
            "identifiers": [f"{self.node_id}_bridge"],
            "name": "SmokeWatch bridge",
            "manufacturer": "SmokeWatch",
            "model": "Pyronear bridge",
            "sw_version": __version__,
        }
        stats = f"{self.prefix}/bridge/stats"
        entities = {
            ("binary_sensor", "api"): {
                "name": "API connection",
                "device_class": "connectivity",
                "state_topic": stats,
                "value_template": "{{ 'ON' if value_json.api_connected else 'OFF' }}",
            },
            ("sensor", "outbox"): {
                "name": "Outbox",
                "state_topic": stats,
                "value_template": "{{ value_json.pending }}",
                "unit_of_measurement": "detections",
                "state_class": "measurement",
            },
            ("sensor", "last_delivery"): {
                "name": "Last delivery",
                "state_topic": stats,
                "device_class": "timestamp",
                "value_template": "{{ value_json.last_success or None }}",
            },
            ("sensor", "failed"): {
                "name": "Failed deliveries",
                "state_topic": stats,
                "value_template": "{{ value_json.failed }}",
                "state_class": "total",
                "entity_category": "diagnostic",
            },
        }
        for (component, key), payload in entities.items():
            unique_id = f"{self.node_id}_bridge_{key}"
            config = {
                **payload,
                "unique_id": unique_id,
                "device": device,
                "origin": {"name": "SmokeWatch", "sw_version": __version__},
                "availability": [{"topic": f"{self.prefix}/bridge/available"}],
            }
            self.client.publish(
                f"{discovery}/{component}/{unique_id}/config",
                json.dumps(config),
                qos=1,
                retain=True,
            )

    def stats(self) -> dict[str, Any]:
        """The bridge's health, as published on <prefix>/bridge/stats."""
        data = self.outbox.stats()
        if data["last_success"] is not None:
            data["last_success"] = iso_utc(data["last_success"])
        data["api_connected"] = bool(self.connected_api)
        data["rejected"] = self.rejected
        return data

    def _publish_stats(self) -> None:
        self.client.publish(
            f"{self.prefix}/bridge/stats", json.dumps(self.stats()), qos=0, retain=True
        )

    # -- delivery --------------------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._deliver_forever())

    async def _deliver_forever(self) -> None:
        try:
            while not self.stop_event.is_set():
                worked = False
                for camera in self.outbox.cameras_pending():
                    worked |= await self._deliver_one(camera)
                await self._periodic_duties()
                if not worked:
                    await asyncio.get_running_loop().run_in_executor(None, self._wake.wait, 0.5)
                    self._wake.clear()
        finally:
            await self.api.close()

    async def _deliver_one(self, camera: str) -> bool:
        """Try the oldest pending item of a camera (if its backoff allows); True if tried."""
        duties = self.duties.get(camera)
        identity = self.settings.cameras.get(camera)
        item = self.outbox.next_pending(camera)
        if item is None or duties is None or identity is None:
            return False
        if time.monotonic() < duties.retry_at:
            return False
        jpeg = fit_for_upload(
            item.jpeg, self.settings.upload_max_width, self.settings.upload_max_height
        )
        bboxes = format_bboxes(item.bboxes)
        crop_images = crops(jpeg, item.bboxes) if self.settings.send_crops and item.bboxes else None
        outcome = await self.api.post_detection(
            str(identity.token), identity.pose_id, bboxes, item.recorded_at, jpeg, crop_images
        )
        if outcome.kind == "ok":
            api_id = outcome.body.get("id") if isinstance(outcome.body, dict) else None
            self.outbox.delivered(
                item.seq, None if api_id is None else str(api_id), outcome.status or 0
            )
            self.connected_api, duties.backoff = True, 0.0
            _LOGGER.info("Delivered detection %s of %s (HTTP %s)", item.id, camera, outcome.status)
        elif outcome.kind == "fail":
            self.outbox.failed(item.seq, outcome.status, outcome.detail)
            self.connected_api = True
            _LOGGER.error(
                "The API refused detection %s of %s for good: %s", item.id, camera, outcome.detail
            )
        else:
            self.outbox.attempt_failed(item.seq, outcome.detail)
            self.connected_api = outcome.status is not None
            duties.backoff = min(
                self.settings.backoff_max,
                max(self.settings.backoff_initial, duties.backoff * 2),
            )
            delay = random.uniform(0, duties.backoff)
            duties.retry_at = time.monotonic() + delay
            _LOGGER.warning(
                "Delivery of %s for %s failed (%s); retry in %.1f s",
                item.id,
                camera,
                outcome.detail,
                delay,
            )
        self._publish_stats()
        return True

    async def _periodic_duties(self) -> None:
        now = time.time()
        for camera, duties in self.duties.items():
            identity = self.settings.cameras[camera]
            token = str(identity.token)
            flowing = (
                duties.last_frame_at is not None
                and now - duties.last_frame_at < 2 * self.settings.heartbeat_interval
            )
            if flowing and now >= duties.next_heartbeat:
                duties.next_heartbeat = now + self.settings.heartbeat_interval
                outcome = await self.api.heartbeat(token)
                self._log_duty(camera, "heartbeat", outcome.kind, outcome.detail)
            if flowing and duties.last_frame is not None and now >= duties.next_last_image:
                duties.next_last_image = now + self.settings.last_image_interval
                image = fit_for_upload(
                    duties.last_frame,
                    self.settings.upload_max_width,
                    self.settings.upload_max_height,
                )
                outcome = await self.api.last_image(token, image)
                self._log_duty(camera, "last image", outcome.kind, outcome.detail)
            today = datetime.now().strftime("%Y-%m-%d")
            if (
                flowing
                and duties.last_frame is not None
                and duties.pose_image_day != today
                and datetime.now().hour >= self.settings.pose_image_hour
            ):
                image = fit_for_upload(
                    duties.last_frame,
                    self.settings.upload_max_width,
                    self.settings.upload_max_height,
                )
                outcome = await self.api.pose_image(token, identity.pose_id, image)
                if outcome.ok:
                    duties.pose_image_day = today
                self._log_duty(camera, "pose image", outcome.kind, outcome.detail)
            if now >= duties.next_masks:
                duties.next_masks = now + self.settings.masks_interval
                outcome = await self.api.occlusion_masks(token, identity.pose_id)
                if outcome.ok:
                    self.client.publish(
                        f"{self.prefix}/{camera}/masks/remote",
                        json.dumps(outcome.body),
                        qos=1,
                        retain=True,
                    )
                else:
                    # A failed fetch is retried sooner than the hourly cadence.
                    duties.next_masks = now + min(60.0, self.settings.masks_interval)
                self._log_duty(camera, "occlusion masks", outcome.kind, outcome.detail)

    @staticmethod
    def _log_duty(camera: str, what: str, kind: str, detail: str) -> None:
        if kind == "ok":
            _LOGGER.debug("Camera %s: %s sent", camera, what)
        else:
            _LOGGER.warning("Camera %s: %s failed: %s", camera, what, detail)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the broker and start delivering (no API call happens here)."""
        self.client.connect_async(
            self.config.mqtt.host, self.config.mqtt.port, self.config.mqtt.keepalive
        )
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering, publish offline, disconnect."""
        self.stop_event.set()
        self._wake.set()
        self._thread.join(30)
        info = self.client.publish(f"{self.prefix}/bridge/available", "offline", qos=1, retain=True)
        try:
            info.wait_for_publish(5)
        except (RuntimeError, ValueError):
            _LOGGER.warning("Could not publish the bridge's offline state")
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        self.start()
        while not self.stop_event.wait(self.settings.stats_interval):
            self._publish_stats()
        self.stop()
        return 0
