"""`smokewatch run`: the detector as a long-running MQTT service: threads and wiring only.

Threads: paho's network thread only stores frames and enqueues commands; one inference worker
scores frames; the control thread (the caller of `run`) applies commands, tracks camera health
and publishes stats; a one-thread executor draws alert images off the scoring path.

Each concern has its own module: a camera's alert state machine (alerts.py), every published
topic (publisher.py), the commands (command_table.py) and what they do (actions.py), the
settings and their file-vs-run-time rule (settings.py), what is kept per camera and its status
(cameras.py), the refusal log (refusals.py), the discovery payloads (discovery.py).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import signal
import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from detector import contract as wire
from detector.annotate import annotate_jpeg
from detector.config import Config
from detector.contract import (
    DetectionMessage,
    camera_device_id,
    camera_topic,
    command_leaf,
    detector_info,
    entity_unique_id,
    iso_utc,
    state_leaf,
)
from detector.errors import FrameError, InferenceError
from detector.healthcheck import HealthReport, write_health_file
from detector.inputs import FrameInputs, parse_frame_payload
from detector.outputs.frigate import FrigateEvents
from detector.pipeline import FrameResult, Pipeline
from detector.service import discovery
from detector.service.actions import CameraActions
from detector.service.alerts import AlertChange
from detector.service.cameras import CameraWatch
from detector.service.command_table import CommandTable
from detector.service.comms import Comms, MqttComms
from detector.service.publisher import Publisher
from detector.service.refusals import RefusalLog
from detector.service.scheduler import Scheduler
from detector.service.settings import (
    FILE_KEYS,
    MASKS_MAX_BYTES,
    parse_enabled,
    parse_masks,
    parse_threshold,
)
from detector.supervise import Health, supervised_thread
from detector.untrusted import parse_json

_LOGGER = logging.getLogger(__name__)

# The retained states of the previous run are collected after the first connect until the
# echo of the start-up probe (wire.PROBE) comes back, or at most this many seconds (a broker
# whose ACL refuses the probe): a warning then says the restore may be incomplete.
RESTORE_TIMEOUT = 5.0
# Seconds between two re-publishes of everything asked by HA's `online`: the first goes at
# once, those within this time are merged into one after it.
REPUBLISH_MIN_INTERVAL = 5.0
# The latest scored frame goes to Home Assistant (the zone card's picture) at most this often
# per camera: enough to draw on, without a multi-megabyte retained publish at every interval.
SCORED_FRAME_EVERY = 30.0


class DetectorService:
    """Wires the pipeline, the alert machines, the commands and the publisher to MQTT."""

    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        *,
        comms: Comms | None = None,
        stats_interval: float = 10.0,
        health_interval: float | None = None,
        scored_frame_every: float = SCORED_FRAME_EVERY,
        health_file: Path | None = None,
    ) -> None:
        self.config = config
        # Where `available` and the stats' health are also written for `smokewatch health`.
        self.health_file = health_file
        self.mqtt = config.mqtt
        self.pipeline = pipeline
        self.stats_interval = stats_interval
        self.scored_frame_every = scored_frame_every
        # Check health at least twice per shortest stale window (and at least every second)
        # so a silent camera's status changes close to when its config says it should.
        windows = [c.interval * c.stale_after for c in config.cameras.values()]
        self.health_interval = health_interval or max(0.05, min([1.0, *windows]) / 2)
        self.comms: Comms = comms or MqttComms(config.mqtt)
        self.comms.on_connected = self._on_connected
        self.publish = Publisher(self.comms, self.mqtt)
        self.scheduler = Scheduler()
        self._model_name = pipeline.model.name
        self.cameras: dict[str, CameraWatch] = {}
        for camera in config.cameras.values():
            self.cameras[camera.id] = CameraWatch.of(camera, self._model_name)
            self.scheduler.add(camera.id, camera.interval)
        self.refusals = RefusalLog(self.cameras)
        self.control: queue.Queue[Callable[[], None]] = queue.Queue()
        self.stop_event = threading.Event()
        self._lock = threading.Lock()  # pipeline and alert state: worker vs commands
        self.actions = CameraActions(
            self.cameras,
            pipeline,
            self._lock,
            self.publish,
            self.refusals,
            self.scheduler,
            self.control.put,
        )
        self.commands = CommandTable(self.cameras, self.refusals)
        self.commands.setting(wire.ENABLED, parse_enabled, self.actions.set_enabled)
        self.commands.setting(wire.THRESHOLD, parse_threshold, self.actions.set_threshold)
        self.commands.setting(wire.MASKS, parse_masks, self.actions.set_masks)
        self.commands.button(wire.RESET, self.actions.reset)
        self.commands.button(wire.TEST, self.actions.test_alert)
        self.commands.button(wire.FALSE_ALARM, self.actions.false_alarm)
        self.commands.button(wire.FILE_SETTINGS, self.actions.use_file_settings)
        self._images = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-image")
        self.health = Health("detector")
        self._worker = supervised_thread("inference", self._work, self.health, self.stop_event)
        # Detections also go here (the bridge hosted in this process) besides MQTT.
        self.on_detection: Callable[[DetectionMessage], None] | None = None
        # One re-publish of everything pending at most: HA announcing `online` a thousand
        # times must not queue a thousand copies of discovery in front of the detections.
        self._publish_all_pending = threading.Event()
        self._next_publish_all = 0.0
        self._inference_ms: deque[float] = deque(maxlen=20)
        self._restored: dict[str, bytes] = {}
        self._restoring = True
        self._probe = uuid.uuid4().hex.encode()
        self._probe_echoed = threading.Event()
        self._previous_info: dict[str, Any] | None = None
        self._started = time.monotonic()
        self.inputs = FrameInputs(
            list(config.cameras.values()),
            max_bytes=config.detection.max_frame_bytes,
            store=self._accept_frame,
            reject=self.refusals.refuse,
            publish=self.comms.publish_absolute,
            health=self.health,
        )
        self.frigate = FrigateEvents(self.inputs.pollers, self.refusals.refuse)
        self._subscribe()

    # -- wiring ----------------------------------------------------------------------------

    def _subscribe(self) -> None:
        prefix = self.mqtt.topic_prefix
        # One subscription per image topic: brokers such as amqtt deliver a message once per
        # matching subscription, and a frame delivered twice would be scored twice by the vote.
        # `+/image` also catches frames for cameras that are not configured.
        self.comms.subscribe(camera_topic("+", wire.IMAGE), self.inputs.message)
        for topic in sorted(self.inputs.image_topics):
            if not _is_default_image_topic(prefix, topic):
                self.comms.subscribe(topic, self.inputs.message, absolute=True)
        self.comms.subscribe(camera_topic("+", command_leaf("+")), self._command_message)
        self.comms.subscribe(
            camera_topic("+", wire.MASKS_REMOTE), self._remote_masks_message, qos=1
        )
        self.comms.subscribe(camera_topic("+", state_leaf("+")), self._state_message)
        self.comms.subscribe(camera_topic("+", wire.SETTINGS_SOURCES), self._state_message)
        self.comms.subscribe(self.mqtt.detector_topic(wire.INFO), self._info_message)
        self.comms.subscribe(self.mqtt.detector_topic(wire.PROBE), self._probe_message)
        self.comms.subscribe(f"{self.mqtt.discovery_prefix}/status", self._ha_status, absolute=True)
        _LOGGER.debug("Subscriptions set below %s", prefix)

    def _accept_frame(self, camera: str, payload: bytes) -> None:
        """A frame the inputs' gate let in (paho's or a poller's thread): only store it."""
        watch = self.cameras[camera]
        if watch.settings.enabled:
            self.scheduler.put(camera, payload)
        else:
            # A disabled camera is still watched: its status (and so the availability of its
            # entities, the Detection switch included) must not drop to offline.
            self.scheduler.seen(camera)
        if watch.status in ("stale", "offline"):
            # Back online at once, not at the next health check (on the control thread).
            self.control.put(self._update_health)

    def _command_message(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        camera, name = parts[-3], parts[-2]
        self.control.put(lambda: self._command(camera, name, payload))

    def _remote_masks_message(self, topic: str, payload: bytes) -> None:
        camera = topic.split("/")[-3]
        self.control.put(lambda: self.actions.remote_masks(camera, payload))

    def _state_message(self, topic: str, payload: bytes) -> None:
        if self._restoring:
            self._restored[topic] = payload

    def _info_message(self, topic: str, payload: bytes) -> None:
        if self._previous_info is None and self._restoring:
            try:
                info = json.loads(payload)
            except (ValueError, UnicodeDecodeError):
                return
            if isinstance(info, dict):
                self._previous_info = info

    def _probe_message(self, topic: str, payload: bytes) -> None:
        if payload == self._probe:
            self._probe_echoed.set()

    def _ha_status(self, topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            self._request_publish_all()

    def _request_publish_all(self) -> None:
        """Ask for one re-publish of everything (any thread): the control loop does it once
        for any number of requests, at most every REPUBLISH_MIN_INTERVAL seconds."""
        if not self._publish_all_pending.is_set():
            self._publish_all_pending.set()
            self.control.put(lambda: None)  # wake the control loop

    def _on_connected(self) -> None:
        self.control.put(self._after_connect)

    # -- the control thread ----------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or stop()); returns the exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        self.start()
        self.serve()
        return 0

    def start(self) -> None:
        """Connect and start the worker."""
        self.comms.start()
        self._worker.start()
        self.inputs.start()

    def serve(self) -> None:
        """Run the control loop until stop(), then shut down cleanly."""
        next_stats = time.monotonic() + self.stats_interval
        next_health = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_health:
                self._guarded("camera health", self._update_health)
                next_health = now + self.health_interval
            if now >= next_stats:
                self._guarded("stats", self._publish_stats)
                next_stats = now + self.stats_interval
            if self._publish_all_pending.is_set() and now >= self._next_publish_all:
                # Only HA's requests count toward the window: the first one after a quiet
                # spell (even right after a connect) is answered at once.
                self._next_publish_all = now + REPUBLISH_MIN_INTERVAL
                self._guarded("publish", self._publish_all)
            if self.publish.detections_waiting:
                self._guarded("detections", self.publish.send_unsent)
            # Wake at least twice a second so a stop request is seen promptly.
            timeout = max(0.0, min(next_health, next_stats, now + 0.5) - time.monotonic())
            try:
                task = self.control.get(timeout=timeout)
            except queue.Empty:
                continue
            self._guarded("control", task)
        self._shutdown()

    def _guarded(self, part: str, task: Callable[[], None]) -> None:
        """Run one step of the control loop: a failure is logged once, counted and shown in
        stats (`healthy`, `faults`), and the loop goes on."""
        try:
            task()
        except Exception as err:  # one failed step must not stop the service
            self.health.failed(part, err)
        else:
            self.health.ok(part)

    def stop(self) -> None:
        """Ask the service to stop (safe from signal handlers and other threads)."""
        self.stop_event.set()

    def _shutdown(self) -> None:
        _LOGGER.info("Stopping: finishing the frame in flight")
        self.inputs.stop()
        self.scheduler.close()
        if self._worker.is_alive():
            self._worker.join(timeout=60)
        self._images.shutdown(wait=True)
        for watch in self.cameras.values():
            if watch.test_timer is not None:
                watch.test_timer.cancel()
        self.comms.stop()
        self._write_health_file()
        _LOGGER.info("Stopped")

    def _after_connect(self) -> None:
        if self._restoring:
            # The broker sends the retained messages of our subscriptions, then the probe's
            # echo: once it is back, every retained state of the previous run is here.
            self.comms.publish(self.mqtt.detector_topic(wire.PROBE), self._probe, qos=1)
            if not self._probe_echoed.wait(RESTORE_TIMEOUT):
                _LOGGER.warning(
                    "The broker did not echo the start-up probe on %s within %.0f s (an ACL?):"
                    " settings changed in Home Assistant may not be restored",
                    self.mqtt.detector_topic(wire.PROBE),
                    RESTORE_TIMEOUT,
                )
            self._restoring = False
            # Whatever the broker held for us, discovery, info and states go out below.
            self._guarded("restore states", self._restore_states)
            self._guarded("remove old cameras", self._remove_old_cameras)
        self._publish_all()

    def _restore_states(self) -> None:
        """Apply the settings our retained state topics held before this start, by the rule
        of settings.py: a change made at run time lasts until the file's value changes."""
        prefix = self.mqtt.topic_prefix
        for camera, watch in self.cameras.items():
            records = _json_object(
                self._restored.get(f"{prefix}/{camera_topic(camera, wire.SETTINGS_SOURCES)}")
            )
            for key in wire.SETTINGS:
                payload = self._restored.get(f"{prefix}/{camera_topic(camera, state_leaf(key))}")
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
        self._restored.clear()

    def _remove_old_cameras(self) -> None:
        """Empty the retained discovery and states of cameras no longer configured.

        A camera that moved to another instance (instance.count changed) is not ours to remove:
        its new detector publishes its entities, perhaps already.
        """
        previous = self._previous_info or {}
        old = previous.get("cameras") if isinstance(previous.get("cameras"), dict) else {}
        for camera in sorted(set(old or {}) - set(self.cameras) - self.config.elsewhere):
            _LOGGER.info("Camera %s left the config: removing its entities", camera)
            device = camera_device_id(self.mqtt, camera)
            self.publish.remove_camera(
                camera,
                [
                    (component, entity_unique_id(device, key))
                    for component, key in discovery.CAMERA_DISCOVERY
                ],
            )

    # -- publishing ------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The retained description of this detector (read by the HA integration)."""
        cameras = [watch.config for watch in self.cameras.values()]
        return {
            **detector_info(self.mqtt, cameras, self._model_name),
            "backend": self.pipeline.model.describe(),
            "instance": self.mqtt.instance or None,
        }

    def _publish_all(self) -> None:
        """Discovery and every current state (after a (re)connect or HA's restart)."""
        self._publish_all_pending.clear()
        self.publish.info(self.info())
        if self.mqtt.discovery:
            payloads = dict(discovery.detector_entities(self.mqtt))
            for watch in self.cameras.values():
                payloads.update(discovery.camera_entities(self.mqtt, watch.config))
            self.publish.discovery(payloads)
        for camera, watch in self.cameras.items():
            self.actions.publish_settings(camera)
            self.publish.status(camera, watch.status)
            if watch.view is not None:
                self.publish.view(camera, watch.view)
            with self._lock:
                alert = watch.alert
                self.publish.smoke_state(camera, alert.smoke)
                if alert.attributes is not None:
                    self.publish.attributes(camera, alert.attributes)
                if alert.score is not None:
                    self.publish.score(camera, alert.score)
            if watch.alert_image is not None:
                self.publish.alert_image(camera, watch.alert_image)
        self._publish_stats()

    def stats(self) -> dict[str, Any]:
        """The stats JSON published on <prefix>/stats."""
        cameras = {}
        for camera, watch in self.cameras.items():
            slot = self.scheduler.slots[camera]
            scored_at = watch.alert.scored_at
            cameras[camera] = {
                "frames_in": slot.frames_in,
                "scored": slot.scored,
                "dropped": slot.dropped,
                "errors": self.refusals.camera_counts(camera),
                "last_score": watch.alert.score,
                "last_scored_at": None if scored_at is None else iso_utc(scored_at),
                "status": watch.status,
            }
        timings = list(self._inference_ms)
        return {
            "uptime": round(time.monotonic() - self._started, 1),
            "inference_ms": round(statistics.median(timings), 1) if timings else None,
            "frames_dropped": sum(slot.dropped for slot in self.scheduler.slots.values()),
            "cameras": cameras,
            "rejected": self.refusals.total_counts(),
            "detections_waiting": self.publish.detections_waiting,
            "detections_dropped": self.publish.detections_dropped,
            "model": self.pipeline.model.health(),
            **self.health.snapshot(),
        }

    def _publish_stats(self) -> None:
        stats = self.stats()
        self.publish.stats(stats)
        self._write_health_file(stats)

    def _write_health_file(self, stats: dict[str, Any] | None = None) -> None:
        """The local copy of `available` and the stats' health (control thread only)."""
        if self.health_file is None:
            return
        snapshot = self.health.snapshot() if stats is None else stats
        report = HealthReport(
            written_at=time.time(),
            pid=os.getpid(),
            available="online" if self.comms.connected.is_set() else "offline",
            broker=f"{self.mqtt.host}:{self.mqtt.port}",
            healthy=snapshot["healthy"],
            faults=snapshot["faults"],
            stats_interval=self.stats_interval,
        )
        try:
            write_health_file(self.health_file, report)
        except OSError as err:
            self.health.failed("health file", err)
        else:
            self.health.ok("health file")

    def _update_health(self) -> None:
        now = time.monotonic()
        for camera, watch in self.cameras.items():
            status = watch.status_at(now, self.scheduler.slots[camera].last_frame_at)
            if status != watch.status:
                watch.status = status
                self.publish.status(camera, status)

    # -- commands (the control thread) -----------------------------------------------------

    def _command(self, camera: str, name: str, payload: bytes) -> None:
        self.commands.command(camera, name, payload)

    # -- the inference worker --------------------------------------------------------------

    def _work(self) -> None:
        """The inference worker's loop (supervised: restarted if anything escapes it)."""
        while not self.stop_event.is_set():
            job = self.scheduler.next_job(timeout=0.5)
            self.health.ok("inference")
            if job is None:
                continue
            watch = self.cameras[job.camera]
            try:
                data, frame_time = parse_frame_payload(
                    job.payload,
                    job.received_wall,
                    on_bad_time=functools.partial(self.refusals.refuse, job.camera, "bad_ts"),
                )
                # The lock spans scoring and publishing so that a reset or test alert on the
                # control thread cannot slip between a frame's vote and its published state.
                with self._lock:
                    result = self.pipeline.process(job.camera, data, frame_time)
                    self._inference_ms.append(result.timings["model"])
                    watch.last_jpeg = data
                    watch.last_good_at = time.monotonic()
                    self._scored(watch, result, data)
            except (FrameError, InferenceError) as err:
                if isinstance(err, FrameError):
                    # The camera's own frames were refused (an inference server down is the
                    # detector's fault, shown by its Inference entity).
                    watch.last_refused_at = time.monotonic()
                self.refusals.refuse(job.camera, err.reason, str(err))
                continue
            except Exception:  # the worker must survive anything one frame does
                _LOGGER.exception("Scoring a frame of %s failed", job.camera)
                self.refusals.refuse(job.camera, "internal", "scoring failed")

    def _scored(self, watch: CameraWatch, result: FrameResult, data: bytes) -> None:
        """Publish what a scored frame changed (called with the lock held)."""
        camera = result.camera
        vote = result.vote
        change: AlertChange = watch.alert.scored(result)
        if result.view is not None and result.view.state != watch.view:
            watch.view = result.view.state
            self.publish.view(camera, watch.view)
            _LOGGER.info("Camera %s: view %s", camera, watch.view)
            # The status follows a frozen view at once, not at the next health check.
            self.control.put(self._update_health)
        assert watch.alert.score is not None
        self.publish.score(camera, watch.alert.score)
        if change.attributes is not None:
            self.publish.attributes(camera, change.attributes)
        if vote.ongoing:
            self._images.submit(self._publish_alert_image, camera, data, vote.boxes)
        self._publish_scored_frame(watch, data)
        if change.smoke is not None:
            self.publish.alert(camera, AlertChange(change.smoke, change.event))
            if change.smoke:
                _LOGGER.info("Camera %s: SMOKE (score %.1f)", camera, watch.alert.score)
            else:
                _LOGGER.info("Camera %s: smoke alert ended", camera)
            if watch.config.frigate_events is not None:
                self.frigate.alert(camera, watch.config.frigate_events, change.smoke, vote.score)
        for detection in result.detections:
            if not self.publish.detection(camera, detection.to_json()):
                self.control.put(lambda: None)  # wake the control loop to offer it again
            if self.on_detection is not None:
                try:
                    self.on_detection(detection)
                except Exception as err:  # whatever the bridge does, detection goes on
                    self.health.failed("bridge", err)

    def _publish_scored_frame(self, watch: CameraWatch, data: bytes) -> None:
        """The frame just scored, unannotated, for the zone card: at most once per period."""
        now = time.monotonic()
        last = watch.frame_published_at
        if last is not None and now - last < self.scored_frame_every:
            return
        watch.frame_published_at = now
        self.publish.frame(watch.config.id, data)

    def _publish_alert_image(self, camera: str, data: bytes, boxes: Any) -> None:
        try:
            image = annotate_jpeg(data, boxes)
        except FrameError as err:
            _LOGGER.warning("Alert image of %s not drawn: %s", camera, err)
            return
        except Exception as err:  # runs in an executor: an exception would vanish in its future
            self.health.failed("alert image", err)
            return
        self.health.ok("alert image")
        self.cameras[camera].alert_image = image
        self.publish.alert_image(camera, image)


def _json_object(payload: bytes | None) -> dict[str, Any] | None:
    """A retained JSON object of ours, or None (absent or not an object)."""
    if not payload:
        return None
    try:
        data = parse_json(payload, max_bytes=MASKS_MAX_BYTES)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _is_default_image_topic(prefix: str, topic: str) -> bool:
    """True when `topic` is matched by the `<prefix>/+/image` subscription."""
    if not topic.startswith(f"{prefix}/"):
        return False
    parts = topic[len(prefix) + 1 :].split("/")
    return len(parts) == 2 and bool(parts[0]) and parts[1] == "image"


def publish_model_error(config: Config, error: str, *, comms: Comms | None = None) -> None:
    """Tell Home Assistant (retained P/info) that the model is missing, then disconnect."""
    comms = comms or MqttComms(config.mqtt)
    comms.start()
    info = detector_info(
        config.mqtt, list(config.cameras.values()), None, status="model_missing", error=error
    )
    topic = config.mqtt.detector_topic(wire.INFO)
    if not comms.publish_and_wait(topic, json.dumps(info), retain=True, timeout=15):
        _LOGGER.error("Broker unreachable: the model error is only in this log")
    comms.stop()


__all__ = ["Comms", "DetectorService", "publish_model_error"]
