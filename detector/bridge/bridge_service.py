"""`smokewatch bridge`: MQTT detections → durable outbox → Pyronear API, plus camera duties.

Three parts around the outbox: intake (paho's thread) commits detections before acknowledging
them; delivery and the periodic duties run as asyncio tasks on a loop in a thread of their own;
health (stats and discovery) is published from that loop. Nothing calls the API at start-up:
the bridge starts, and queues, with the API unreachable. `BridgeService(config).start()` and
`.stop()` let `smokewatch run` host the bridge too; hosted, it takes detections over the broker
exactly as it does standalone (the broker is the durable, bounded queue between the detector
and the bridge: the detector never waits on the bridge's disk).

Every loop runs supervised (detector.supervise): a failure (disk full, a surprise) is logged
once, counted, retried with backoff and published as `healthy: false` with its reason in
`faults`, until the part works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from typing import Any

from detector import __version__
from detector.bridge.access import ApiAccess
from detector.bridge.api import Outcome, PyronearClient
from detector.bridge.delivery import Delivery
from detector.bridge.duties import Duties
from detector.bridge.intake import PART as OUTBOX_PART
from detector.bridge.intake import STALL_AFTER, Intake
from detector.bridge.outbox import Outbox
from detector.bridge.outbox_figures import TIME_FACTS
from detector.bridge.spacing import UploadSpacing
from detector.config import Config
from detector.contract import (
    BRIDGE_AVAILABLE,
    BRIDGE_STATS,
    MASKS_REMOTE,
    ORIGIN,
    bridge_device_id,
    camera_topic,
    config_topic,
    entity_unique_id,
    iso_utc,
    prefixed,
)
from detector.redact import redact_url
from detector.supervise import Health, supervise

_LOGGER = logging.getLogger(__name__)

# Several delivery changes within this many seconds give one stats message.
STATS_COALESCE = 0.2
# Discovery is re-published at most this often: HA announcing `online` a thousand times
# gives one re-publish now and one after this delay, not a thousand in the client's queue.
REPUBLISH_MIN_INTERVAL = 5.0


def stats_payload(data: dict[str, Any]) -> dict[str, Any]:
    """Outbox figures with their times as ISO 8601 (the stats topic and `bridge status`)."""
    out = dict(data)
    for key in TIME_FACTS:
        if out.get(key) is not None:
            out[key] = iso_utc(out[key])
    if "cameras" in out:
        out["cameras"] = {
            camera: stats_payload(figures) for camera, figures in data["cameras"].items()
        }
    return out


class BridgeService:
    """The bridge process, or a part of `smokewatch run` when `bridge.enabled`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.health = Health("bridge")
        self._stall_shown = False  # the latest stats said the outbox is stalled
        self._announce_lock = threading.Lock()
        self._next_announce = 0.0
        self._announce_pending = False
        self.settings = config.bridge
        for camera in self.settings.cameras:
            if camera not in config.cameras:
                _LOGGER.warning(
                    "bridge.cameras.%s is not under cameras: no frames, so no heartbeat or"
                    " camera image for it (detections are still forwarded)",
                    camera,
                )
        self.outbox = Outbox(self.settings.outbox)
        self.api = PyronearClient(self.settings.url, self.settings.timeout)
        self.api_connected: bool | None = None
        self.started_at = time.monotonic()
        spacing = UploadSpacing()
        access = ApiAccess(self.health)
        self.delivery = Delivery(
            self.settings,
            self.outbox,
            self.api,
            on_outcome=self._api_outcome,
            on_change=self._stats_changed,
            health=self.health,
            spacing=spacing,
            access=access,
        )
        self.duties = Duties(
            self.settings,
            self.api,
            publish_masks=self._publish_masks,
            on_outcome=self._api_outcome,
            health=self.health,
            spacing=spacing,
            outbox=self.outbox,
            access=access,
        )
        self.intake = Intake(
            config,
            self.outbox,
            on_stored=self._stored,
            on_frame=self.duties.frame,
            on_connected=self._announce,
            on_ha_online=self._announce_requested,
            health=self.health,
        )
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._stats_due: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="bridge-loop", daemon=True)
        self._stopped = threading.Event()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the broker and start delivering (no API call happens here)."""
        _LOGGER.info(
            "Bridge to %s for %s; outbox %s",
            redact_url(self.settings.url),
            ", ".join(sorted(self.settings.cameras)) or "no camera",
            self.outbox.path,
        )
        for camera, figures in self.outbox.stats()["cameras"].items():
            if figures["pending"] and camera not in self.settings.cameras:
                _LOGGER.warning(
                    "The outbox holds %s detections of camera %s, which is no longer under"
                    " bridge.cameras: they wait there until it is configured again",
                    figures["pending"],
                    camera,
                )
        self._thread.start()
        self.intake.start()

    def stop(self) -> None:
        """Stop delivering (an upload in flight is abandoned and retried at the next start),
        publish `offline`, disconnect, close the outbox."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._request_stop)
            self._thread.join(self.settings.timeout + 10)
        self._publish_stats()
        self.intake.stop()
        self.outbox.close()

    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        done.wait()
        _LOGGER.info("Bridge stopping")
        self.stop()
        return 0

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._stats_due = asyncio.Event()
        if self._stopped.is_set():
            return
        stop = self._stop
        cap = min(60.0, self.settings.backoff_max)
        try:
            await asyncio.gather(
                supervise("delivery", lambda: self.delivery.run(stop), self.health, stop, cap=cap),
                supervise("duties", lambda: self.duties.run(stop), self.health, stop, cap=cap),
                supervise("stats", lambda: self._stats_loop(stop), self.health, stop, cap=cap),
            )
        finally:
            await self.api.close()

    # -- health ----------------------------------------------------------------------------

    def _api_outcome(self, outcome: Outcome) -> None:
        """Connected: the API server answered, even with an error status. No answer, or a
        2xx that is not the API's (a captive portal), is not connected."""
        connected = outcome.status is not None and (
            outcome.kind != "retry" or outcome.status >= 300
        )
        if connected != self.api_connected:
            self.api_connected = connected
            _LOGGER.info(
                "Pyronear API %s", "reachable" if connected else f"unreachable: {outcome.detail}"
            )
            self._stats_changed()

    def _stored(self) -> None:
        self.delivery.wake()
        self._stats_changed()

    def _stats_changed(self) -> None:
        """Publish the stats soon (from any thread)."""
        if self._stats_due is not None and not self._loop.is_closed():
            # RuntimeError: the loop closed in between, while stopping.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stats_due.set)

    async def _stats_loop(self, stop: asyncio.Event) -> None:
        assert self._stats_due is not None
        while not stop.is_set():
            if self._announce_pending and time.monotonic() >= self._next_announce:
                await asyncio.to_thread(self._announce_requested)
            await asyncio.to_thread(self._publish_stats)
            await asyncio.sleep(STATS_COALESCE)
            self._stats_due.clear()
            waiters = {
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._stats_due.wait()),
            }
            # Wake often enough to see a stalled outbox soon, publish at the interval.
            deadline = time.monotonic() + self.settings.stats_interval
            while not stop.is_set() and not self._stats_due.is_set():
                remaining = deadline - time.monotonic()
                stalled = self.intake.stalled_for() >= STALL_AFTER
                if remaining <= 0 or stalled != self._stall_shown:
                    break
                await asyncio.wait(
                    waiters,
                    timeout=min(remaining, STALL_AFTER / 4),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            for waiter in waiters:
                waiter.cancel()

    def stats(self) -> dict[str, Any]:
        """The bridge's health, as published on <prefix>/bridge/stats."""
        data = stats_payload(self.outbox.stats())
        data["api_connected"] = self.api_connected
        data["storage_errors"] = self.intake.storage_errors
        data["uptime"] = round(time.monotonic() - self.started_at)
        # Received, not yet on disk (unacknowledged: the broker keeps them meanwhile).
        data["waiting_for_disk"] = self.intake.waiting
        # API masks the detector would refuse, left out by the bridge (per camera).
        data["masks_skipped"] = dict(self.duties.masks_skipped)
        data.update(self.health.snapshot())
        return data

    def _stalled(self) -> bool:
        """A write to the outbox has not returned for STALL_AFTER seconds: say so (the
        outbox's figures cannot be read meanwhile: its lock is held)."""
        stalled = self.intake.stalled_for()
        self._stall_shown = stalled >= STALL_AFTER
        if not self._stall_shown:
            return False
        self.health.fault(
            OUTBOX_PART,
            f"a write to the outbox has not returned for {stalled:.0f} s (a stalled disk, or"
            " another process holding the outbox's lock); detections wait on the broker",
        )
        return True

    def _publish_stats(self) -> None:
        try:
            if self._stalled():
                raise TimeoutError("the outbox is stalled")
            payload = json.dumps(self.stats())
        except Exception as err:  # the outbox unreadable: still say that something is wrong
            if self._stopped.is_set():
                return
            if not isinstance(err, TimeoutError):
                self.health.failed("stats", err)
            payload = json.dumps(
                {
                    "api_connected": self.api_connected,
                    "storage_errors": self.intake.storage_errors,
                    "waiting_for_disk": self.intake.waiting,
                    **self.health.snapshot(),
                }
            )
        else:
            self.health.ok("stats")
        self.intake.publish(BRIDGE_STATS, payload, retain=True)

    def _publish_masks(self, camera: str, payload: str) -> None:
        self.intake.publish(camera_topic(camera, MASKS_REMOTE), payload, retain=True, qos=1)

    def _announce_requested(self) -> None:
        """HA came back online (paho's thread): announce now, or once after the window when
        it keeps saying so (requests within REPUBLISH_MIN_INTERVAL are merged into one)."""
        with self._announce_lock:
            now = time.monotonic()
            if now < self._next_announce:
                self._announce_pending = True
                return
            self._next_announce = now + REPUBLISH_MIN_INTERVAL
        self._announce()

    def _announce(self) -> None:
        """(Re)publish discovery and stats: on connect, and for HA's requests."""
        self._announce_pending = False
        if self.config.mqtt.discovery:
            for topic, payload in discovery_payloads(self.config).items():
                self.intake.publish_absolute(topic, json.dumps(payload), retain=True, qos=1)
        self._stats_changed()


def discovery_payloads(config: Config) -> dict[str, dict[str, Any]]:
    """Home Assistant discovery of the bridge device, by config topic."""
    mqtt = config.mqtt
    device_id = bridge_device_id(mqtt)
    stats = prefixed(mqtt.topic_prefix, BRIDGE_STATS)
    device = {
        "identifiers": [device_id],
        "name": "SmokeWatch bridge",
        "manufacturer": "SmokeWatch",
        "model": "Pyronear bridge",
        "sw_version": __version__,
    }
    entities: dict[tuple[str, str], dict[str, Any]] = {
        ("binary_sensor", "api"): {
            "name": "API connection",
            "device_class": "connectivity",
            "entity_category": "diagnostic",
            "value_template": (
                "{{ 'None' if value_json.api_connected is none"
                " else ('ON' if value_json.api_connected else 'OFF') }}"
            ),
        },
        ("sensor", "outbox"): {
            "name": "Outbox",
            "icon": "mdi:tray-full",
            "unit_of_measurement": "detections",
            "state_class": "measurement",
            "value_template": "{{ value_json.pending }}",
            "json_attributes_topic": stats,
            "json_attributes_template": (
                "{{ {'oldest_pending_age': value_json.oldest_pending_age,"
                " 'evicted': value_json.evicted, 'duplicates': value_json.duplicates,"
                " 'resent': value_json.resent, 'last_error': value_json.last_error,"
                " 'last_error_at': value_json.last_error_at, 'paused': value_json.paused}"
                " | tojson }}"
            ),
        },
        ("sensor", "last_delivery"): {
            "name": "Last delivery",
            "device_class": "timestamp",
            "value_template": "{{ value_json.last_success or 'None' }}",
        },
        ("binary_sensor", "problem"): {
            "name": "Problem",
            "device_class": "problem",
            "entity_category": "diagnostic",
            "value_template": "{{ 'OFF' if value_json.healthy else 'ON' }}",
            "payload_on": "ON",
            "payload_off": "OFF",
            "json_attributes_topic": stats,
            "json_attributes_template": "{{ {'faults': value_json.faults} | tojson }}",
        },
        ("sensor", "failed"): {
            "name": "Failed deliveries",
            "icon": "mdi:alert-circle-outline",
            # Refused for good and not sent again yet: `bridge retry` brings it down.
            "state_class": "measurement",
            "entity_category": "diagnostic",
            "value_template": "{{ value_json.failed }}",
        },
    }
    payloads = {}
    for (component, key), entity in entities.items():
        unique_id = entity_unique_id(device_id, key)
        payloads[config_topic(mqtt, component, unique_id)] = {
            **entity,
            "unique_id": unique_id,
            "state_topic": stats,
            "device": device,
            "origin": ORIGIN,
            "availability": [{"topic": prefixed(mqtt.topic_prefix, BRIDGE_AVAILABLE)}],
        }
    return payloads
