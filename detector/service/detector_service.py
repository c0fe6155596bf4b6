"""`smokewatch run`: the detector as a long-running MQTT service: threads and wiring only.

Threads: the bus's network thread only stores frames and queues commands; one inference worker
scores frames; the control thread (the caller of `run`) runs commands, tracks camera health
and publishes stats; a one-thread executor draws alert images off the scoring path.

What each part does lives in its own module: a camera's alert state machine (alerts.py), every
published topic (publisher.py), the commands (command_table.py) and what they do (actions.py),
the settings and their file-vs-run-time rule (settings.py), what is kept per camera and its
status (cameras.py), the refusal log (refusals.py), the discovery payloads (discovery.py), the
start-up reconciliation with the previous run (startup.py), what a scored frame sends out
(outputs.py) and the stats (stats.py).
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from detector import contract as wire
from detector.config import Config
from detector.contract import (
    camera_topic,
    command_leaf,
    detector_info,
    ha_status_topic,
)
from detector.errors import FrameError, InferenceError
from detector.healthcheck import HealthFile
from detector.inputs import FrameInputs, parse_frame_payload
from detector.mqtt import Inbound, is_birth
from detector.outputs.frigate import FrigateEvents
from detector.pipeline import Pipeline
from detector.service import discovery
from detector.service.actions import CameraActions
from detector.service.cameras import CameraWatch
from detector.service.command_router import CommandRouter
from detector.service.command_table import CommandTable
from detector.service.comms import Comms, detector_session
from detector.service.false_alarm_store import FalseAlarmStore
from detector.service.outputs import SCORED_FRAME_EVERY, FrameOutputs
from detector.service.publisher import Publisher
from detector.service.refusals import RefusalLog
from detector.service.scheduler import Job, Scheduler
from detector.service.settings import parse_enabled, parse_masks, parse_threshold
from detector.service.startup import Startup
from detector.service.stats import DetectorStats
from detector.supervise import Health, supervised_thread

_LOGGER = logging.getLogger(__name__)

# Seconds between two re-publishes of everything asked by HA's `online`: the first goes at
# once, those within this time are merged into one after it.
REPUBLISH_MIN_INTERVAL = 5.0


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
        self.health_file = (
            None
            if health_file is None
            else HealthFile(
                health_file,
                broker=f"{config.mqtt.host}:{config.mqtt.port}",
                stats_interval=stats_interval,
            )
        )
        self.mqtt = config.mqtt
        self.pipeline = pipeline
        self.stats_interval = stats_interval
        # Check health at least twice per shortest stale window (and at least every second)
        # so a silent camera's status changes close to when its config says it should.
        windows = [c.interval * c.stale_after for c in config.cameras.values()]
        self.health_interval = health_interval or max(0.05, min([1.0, *windows]) / 2)
        self.comms: Comms = comms or detector_session(config.mqtt)
        self.comms.on_connected = self._on_connected
        self.publisher = Publisher(self.comms, self.mqtt)
        self.scheduler = Scheduler()
        self.cameras: dict[str, CameraWatch] = {}
        for camera in config.cameras.values():
            self.cameras[camera.id] = CameraWatch.of(camera, pipeline.model.name)
            self.scheduler.add(camera.id, camera.interval)
        self.refusals = RefusalLog(self.cameras)
        self.control: queue.Queue[Callable[[], None]] = queue.Queue()
        self.stop_event = threading.Event()
        self._lock = threading.Lock()  # pipeline and alert state: worker vs commands
        self.health = Health("detector")
        self.false_alarms = FalseAlarmStore(config.false_alarms, self.health)
        self.actions = CameraActions(
            self.cameras,
            pipeline,
            self._lock,
            self.publisher,
            self.refusals,
            self.scheduler,
            self.control.put,
            self.false_alarms,
        )
        self.commands = CommandTable(self.cameras, self.refusals)
        self.commands.setting(wire.ENABLED, parse_enabled, self.actions.set_enabled)
        self.commands.setting(wire.THRESHOLD, parse_threshold, self.actions.set_threshold)
        self.commands.setting(wire.MASKS, parse_masks, self.actions.set_masks)
        self.commands.button(wire.RESET, self.actions.reset)
        self.commands.button(wire.TEST, self.actions.test_alert)
        self.commands.button(wire.FALSE_ALARM, self.actions.false_alarm)
        self.commands.button(wire.FILE_SETTINGS, self.actions.use_file_settings)
        self.router = CommandRouter(
            self.commands, self.cameras, self.publisher, self.refusals, self.control.put
        )
        self.inputs = FrameInputs(
            list(config.cameras.values()),
            max_bytes=config.detection.max_frame_bytes,
            store=self._accept_frame,
            reject=self.refusals.refuse,
            republish=self.comms.publish_absolute,
            health=self.health,
        )
        self.frigate = FrigateEvents(self.inputs.pollers, self.refusals.refuse)
        self.outputs = FrameOutputs(
            self.publisher,
            self.health,
            self.frigate,
            wake_control=self._wake,
            status_changed=lambda: self.control.put(self._update_health),
            scored_frame_every=scored_frame_every,
        )
        self.stats = DetectorStats(
            self.cameras, self.scheduler, self.refusals, self.publisher, pipeline, self.health
        )
        self.startup = Startup(
            self.mqtt,
            self.cameras,
            self.commands,
            self.actions,
            self.publisher,
            elsewhere=config.elsewhere,
        )
        self._worker = supervised_thread("inference", self._work, self.health, self.stop_event)
        # One re-publish of everything pending at most: HA announcing `online` a thousand
        # times must not queue a thousand copies of discovery in front of the detections.
        self._publish_all_pending = threading.Event()
        self._next_publish_all = 0.0
        self._subscribe()

    # -- wiring ----------------------------------------------------------------------------

    def _subscribe(self) -> None:
        prefix = self.mqtt.topic_prefix
        # One subscription per image topic: brokers such as amqtt deliver a message once per
        # matching subscription, and a frame delivered twice would be scored twice by the vote.
        # `+/image` also catches frames for cameras that are not configured.
        self.comms.subscribe(camera_topic("+", wire.IMAGE), self._image_message)
        for topic in sorted(self.inputs.image_topics):
            if not _is_default_image_topic(prefix, topic):
                self.comms.subscribe(topic, self._image_message, absolute=True)
        self.comms.subscribe(camera_topic("+", command_leaf("+")), self.router.message)
        self.comms.subscribe(
            camera_topic("+", wire.MASKS_REMOTE), self._remote_masks_message, qos=1
        )
        self.startup.subscribe(self.comms)
        self.comms.subscribe(ha_status_topic(self.mqtt), self._ha_status, absolute=True)
        _LOGGER.debug("Subscriptions set below %s", prefix)

    def _image_message(self, message: Inbound) -> None:
        self.inputs.message(message.topic, message.payload)

    def _accept_frame(self, camera: str, payload: bytes) -> None:
        """A frame the inputs' gate let in (the bus's or a poller's thread): only store it.

        A disabled camera's frames are still looked at (decoded, not scored): its status,
        and so the availability of its entities, the Detection switch included, stays true.
        """
        self.scheduler.put(camera, payload, check_only=not self.cameras[camera].settings.enabled)

    def _remote_masks_message(self, message: Inbound) -> None:
        camera = message.topic.split("/")[-3]
        self.control.put(lambda: self.actions.remote_masks(camera, message.payload))

    def _ha_status(self, message: Inbound) -> None:
        if is_birth(message.payload):
            self._request_publish_all()

    def _request_publish_all(self) -> None:
        """Ask for one re-publish of everything (any thread): the control loop does it once
        for any number of requests, at most every REPUBLISH_MIN_INTERVAL seconds."""
        if not self._publish_all_pending.is_set():
            self._publish_all_pending.set()
            self._wake()

    def _wake(self) -> None:
        self.control.put(lambda: None)  # the control loop looks at what is pending

    def _on_connected(self, resumed: bool = False) -> None:
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
            if self.publisher.detections_waiting:
                self._guarded("detections", self.publisher.send_unsent)
            # Wake at least twice a second so a stop request is seen promptly.
            timeout = max(0.0, min(next_health, next_stats, now + 0.5) - time.monotonic())
            try:
                task = self.control.get(timeout=timeout)
            except queue.Empty:
                continue
            self._guarded("control", task)
        self._shutdown()

    def run_pending(self) -> int:
        """Run what waits for the control thread now (commands, health, re-publishes), as the
        control loop does; how many tasks ran. For driving the service without its threads."""
        ran = 0
        while True:
            try:
                task = self.control.get_nowait()
            except queue.Empty:
                return ran
            self._guarded("control", task)
            ran += 1

    def _guarded(self, part: str, task: Callable[[], object]) -> None:
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
        self.outputs.shutdown()
        self.false_alarms.close()
        for watch in self.cameras.values():
            if watch.test_timer is not None:
                watch.test_timer.cancel()
        self.comms.stop()
        self._write_health_file()
        _LOGGER.info("Stopped")

    def _after_connect(self) -> None:
        if self.startup.collecting:
            # Whatever the broker held for us, discovery, info and states go out below.
            self.startup.collect(self.comms)
            self._guarded("restore states", self.startup.restore_settings)
            self._guarded("remove old cameras", self.startup.remove_old_cameras)
        self._publish_all()

    # -- publishing ------------------------------------------------------------------------

    def info(self) -> dict[str, object]:
        """The retained description of this detector (read by the HA integration)."""
        cameras = [watch.config for watch in self.cameras.values()]
        return {
            **detector_info(self.mqtt, cameras, self.pipeline.model.name),
            "backend": self.pipeline.model.describe(),
            "instance": self.mqtt.instance or None,
        }

    def _publish_all(self) -> None:
        """Discovery and every current state (after a (re)connect or HA's restart)."""
        self._publish_all_pending.clear()
        self.publisher.info(self.info())
        if self.mqtt.discovery:
            payloads = dict(discovery.detector_entities(self.mqtt))
            for watch in self.cameras.values():
                payloads.update(discovery.camera_entities(self.mqtt, watch.config))
            self.publisher.discovery(payloads)
        for camera, watch in self.cameras.items():
            self.actions.publish_settings(camera)
            self.publisher.status(camera, watch.status)
            if watch.view is not None:
                self.publisher.view(camera, watch.view)
            with self._lock:
                alert = watch.alert
                self.publisher.smoke_state(camera, alert.smoke)
                if alert.attributes is not None:
                    self.publisher.attributes(camera, alert.attributes)
                if alert.score is not None:
                    self.publisher.score(camera, alert.score)
            if watch.alert_image is not None:
                self.publisher.alert_image(camera, watch.alert_image)
        self._publish_stats()

    def _publish_stats(self) -> None:
        stats = self.stats.snapshot()
        self.publisher.stats(stats)
        self._write_health_file(stats)

    def _write_health_file(self, stats: dict[str, Any] | None = None) -> None:
        """The local copy of `available` and the stats' health (control thread only)."""
        if self.health_file is None:
            return
        snapshot = self.health.snapshot() if stats is None else stats
        try:
            self.health_file.write(
                online=self.comms.connected.is_set(),
                healthy=snapshot["healthy"],
                faults=snapshot["faults"],
            )
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
                self.publisher.status(camera, status)

    # -- the inference worker --------------------------------------------------------------

    def _work(self) -> None:
        """The inference worker's loop (supervised: restarted if anything escapes it)."""
        while not self.stop_event.is_set():
            self.work_once(timeout=0.5)
            self.health.ok("inference")

    def work_once(self, timeout: float | None = 0.0) -> bool:
        """Score the next due frame, as the worker does; False when none was due in time.
        For driving the service without its threads."""
        job = self.scheduler.next_job(timeout=timeout)
        if job is None:
            return False
        self._job(job)
        return True

    def _job(self, job: Job) -> None:
        """Score (or, for a disabled camera, only check) one frame."""
        watch = self.cameras[job.camera]
        status = watch.status
        try:
            data, frame_time = parse_frame_payload(
                job.payload,
                job.received_wall,
                on_bad_time=functools.partial(self.refusals.refuse, job.camera, "bad_ts"),
            )
            if job.check_only:
                self.pipeline.decode(data)
            else:
                # The lock spans scoring and publishing so that a reset or test alert on the
                # control thread cannot slip between a frame's vote and its published state.
                with self._lock:
                    result = self.pipeline.process(job.camera, data, frame_time)
                    self.stats.inferred(result.timings["model"])
                    watch.last_jpeg = data
                    watch.recent.append((result.frame_time, data))
                    watch.scored += 1
                    change = watch.alert.scored(result)
                    self.outputs.scored(watch, result, change, data)
            watch.last_good_at = time.monotonic()
        except (FrameError, InferenceError) as err:
            if isinstance(err, FrameError):
                # The camera's own frames were refused (an inference server down is the
                # detector's fault, shown by its Inference entity).
                watch.last_refused_at = time.monotonic()
            self.refusals.refuse(job.camera, err.reason, str(err))
        except Exception:  # the worker must survive anything one frame does
            _LOGGER.exception("Scoring a frame of %s failed", job.camera)
            self.refusals.refuse(job.camera, "internal", "scoring failed")
        if watch.status != "online" or status != "online":
            # The first outcome after arriving (or a change): the status follows at once.
            self.control.put(self._update_health)


def _is_default_image_topic(prefix: str, topic: str) -> bool:
    """True when `topic` is matched by the `<prefix>/+/image` subscription."""
    if not topic.startswith(f"{prefix}/"):
        return False
    parts = topic[len(prefix) + 1 :].split("/")
    return len(parts) == 2 and bool(parts[0]) and parts[1] == "image"


__all__ = ["Comms", "DetectorService"]
