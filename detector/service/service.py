"""`smokewatch run`: the detector as a long-running MQTT service.

Threads: paho's network thread only stores frames and enqueues commands; one inference worker
scores frames; the control thread (the caller of `run`) applies commands, tracks camera health
and publishes stats; a one-thread executor draws alert images off the scoring path.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import signal
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from detector import __version__
from detector.annotate import annotate_jpeg
from detector.assembly import camera_settings
from detector.config import CameraConfig, Config, MqttConfig
from detector.config.detection import THRESHOLD_MAX, THRESHOLD_MIN
from detector.contract import (
    Detection,
    camera_device_id,
    config_topic,
    entity_unique_id,
    iso_utc,
)
from detector.errors import FrameError, InferenceError
from detector.inputs import FrameInputs, parse_frame_payload
from detector.masks import masks_from_json, masks_to_json
from detector.outputs.frigate import FrigateEvents
from detector.pipeline import FrameResult, Pipeline
from detector.redact import redact_text
from detector.service import discovery
from detector.service.comms import Comms, MqttComms
from detector.service.false_alarm import (
    MAX_EVENTS_SHOWN,
    FalseAlarm,
    false_alarm_masks,
    masks_attributes,
)
from detector.service.scheduler import Scheduler
from detector.supervise import Health, supervised_thread
from detector.untrusted import parse_json

_LOGGER = logging.getLogger(__name__)

TEST_ALERT_SECONDS = 30.0
RESTORE_WAIT = 1.0  # seconds to collect our own retained states after the first connect
# Seconds between two re-publishes of everything asked by HA's `online`: the first goes at
# once, those within this time are merged into one after it.
REPUBLISH_MIN_INTERVAL = 5.0
# Detections the MQTT client could not take (its queue full): kept and offered again from
# the control thread, up to this many (beyond it the oldest goes, counted and logged).
UNSENT_DETECTIONS_LIMIT = 1000
# A refused input is logged at once, then summarised at most this often per (camera, reason).
REJECT_LOG_EVERY = 300.0
# Distinct (camera, reason) pairs remembered for that; beyond it (a flood of made-up camera
# names) refusals are only counted, so the bookkeeping cannot grow without bound.
REJECT_LOG_KEYS = 1000
PRESS = "PRESS"
MAX_DROPS_SHOWN = 10
# A masks command or state larger than this is refused before it is parsed (a few hundred
# masks of a dozen points fit in a tenth of it).
MASKS_MAX_BYTES = 64 * 1024
STATE_KEYS = ("enabled", "threshold", "masks")
# A masks/remote payload retained by a bridge older than the mask JSON (the API's own mask
# strings) is refused with this; the upgraded bridge replaces it at its first masks fetch.
REMOTE_MASKS_HINT = (
    "; the previous remote masks stay (a payload from an older bridge is replaced at the"
    " upgraded bridge's first masks fetch)"
)
# The latest scored frame goes to Home Assistant (the zone card's picture) at most this often
# per camera: enough to draw on, without a multi-megabyte retained publish at every interval.
SCORED_FRAME_EVERY = 30.0
CAMERA_STATE_TOPICS = (
    "smoke",
    "smoke/attributes",
    "score",
    "alert/image",
    "status",
    "view",
    "enabled/state",
    "threshold/state",
    "masks/state",
    "masks/attributes",
    "frame",
)


@dataclass
class CameraRuntime:
    """What the service tracks per camera beside the pipeline's state."""

    config: CameraConfig
    smoke: bool = False
    status: str = "offline"
    alert_started: float | None = None
    last_jpeg: bytes | None = None
    alert_image: bytes | None = None  # kept to publish again to a broker that lost it
    last_attributes: dict[str, Any] | None = None
    view: str | None = None  # the view state last published (clear, night, frozen, obscured)
    last_score: float | None = None
    last_scored_at: float | None = None
    # time.monotonic() of the last frame scored and of the last one refused (health)
    last_good_at: float | None = None
    last_refused_at: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    testing: bool = False
    test_timer: threading.Timer | None = None
    # The boxes of the latest frame of the latest real alert: what "Not smoke" masks.
    alert_boxes: list[list[float]] = field(default_factory=list)
    alert_boxes_started: float | None = None
    false_alarms: deque[FalseAlarm] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS_SHOWN))
    frame_published_at: float | None = None  # monotonic


class DetectorService:
    """Wires the pipeline to MQTT."""

    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        *,
        comms: Comms | None = None,
        stats_interval: float = 10.0,
        health_interval: float | None = None,
        scored_frame_every: float = SCORED_FRAME_EVERY,
    ) -> None:
        self.config = config
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
        self.scheduler = Scheduler()
        self.cameras: dict[str, CameraRuntime] = {}
        for camera in config.cameras.values():
            self.cameras[camera.id] = CameraRuntime(camera)
            self.scheduler.add(camera.id, camera.interval)
        self.control: queue.Queue[Callable[[], None]] = queue.Queue()
        self.stop_event = threading.Event()
        self._lock = threading.Lock()  # pipeline state: worker vs commands
        self._images = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-image")
        self.health = Health("detector")
        self._worker = supervised_thread("inference", self._work, self.health, self.stop_event)
        # Detections also go here (the bridge hosted in this process) besides MQTT.
        self.on_detection: Callable[[Detection], None] | None = None
        # One re-publish of everything pending at most: HA announcing `online` a thousand
        # times must not queue a thousand copies of discovery in front of the detections.
        self._publish_all_pending = threading.Event()
        self._next_publish_all = 0.0
        self._unsent: deque[tuple[str, str]] = deque()
        self._unsent_lock = threading.Lock()
        self.detections_dropped = 0
        self._inference_ms: deque[float] = deque(maxlen=20)
        self.rejected: Counter[str] = Counter()
        # (camera, reason) → [monotonic time of the last warning, refusals since then]
        self._reject_log: dict[tuple[str, str], list[float]] = {}
        self._reject_lock = threading.Lock()
        self._restored: dict[str, bytes] = {}
        self._restoring = True
        self._previous_info: dict[str, Any] | None = None
        self._started = time.monotonic()
        self._model_name = pipeline.model.name
        self.inputs = FrameInputs(
            list(config.cameras.values()),
            max_bytes=config.detection.max_frame_bytes,
            store=self._accept_frame,
            reject=self._reject,
            publish=self.comms.publish_absolute,
            health=self.health,
        )
        self.frigate = FrigateEvents(self.inputs.pollers, self._reject)
        self._subscribe()

    # -- wiring ----------------------------------------------------------------------------

    def _subscribe(self) -> None:
        prefix = self.mqtt.topic_prefix
        # One subscription per image topic: brokers such as amqtt deliver a message once per
        # matching subscription, and a frame delivered twice would be scored twice by the vote.
        # `+/image` also catches frames for cameras that are not configured.
        self.comms.subscribe("+/image", self.inputs.message)
        for topic in sorted(self.inputs.image_topics):
            if not _is_default_image_topic(prefix, topic):
                self.comms.subscribe(topic, self.inputs.message, absolute=True)
        self.comms.subscribe("+/+/set", self._command_message)
        self.comms.subscribe("+/masks/remote", self._remote_masks_message, qos=1)
        self.comms.subscribe("+/+/state", self._state_message)
        self.comms.subscribe(self.mqtt.detector_topic("info"), self._info_message)
        self.comms.subscribe(f"{self.mqtt.discovery_prefix}/status", self._ha_status, absolute=True)
        _LOGGER.debug("Subscriptions set below %s", prefix)

    def _accept_frame(self, camera: str, payload: bytes) -> None:
        """A frame the inputs' gate let in (paho's or a poller's thread): only store it."""
        runtime = self.cameras[camera]
        if runtime.config.enabled:
            self.scheduler.put(camera, payload)
        else:
            # A disabled camera is still watched: its status (and so the availability of its
            # entities, the Detection switch included) must not drop to offline.
            self.scheduler.seen(camera)
        if runtime.status in ("stale", "offline"):
            # Back online at once, not at the next health check (on the control thread).
            self.control.put(self._update_health)

    def _command_message(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        camera, setting = parts[-3], parts[-2]
        self.control.put(lambda: self._command(camera, setting, payload))

    def _remote_masks_message(self, topic: str, payload: bytes) -> None:
        camera = topic.split("/")[-3]
        self.control.put(lambda: self._remote_masks(camera, payload))

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
            if self._unsent:
                self._guarded("detections", self._send_unsent)
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
        for runtime in self.cameras.values():
            if runtime.test_timer is not None:
                runtime.test_timer.cancel()
        self.comms.stop()
        _LOGGER.info("Stopped")

    def _after_connect(self) -> None:
        if self._restoring:
            time.sleep(RESTORE_WAIT)  # retained states and info arrive right after subscribing
            self._restoring = False
            # Whatever the broker held for us, discovery, info and states go out below.
            self._guarded("restore states", self._restore_states)
            self._guarded("remove old cameras", self._remove_old_cameras)
        self._publish_all()

    def _restore_states(self) -> None:
        """Apply the settings our retained state topics held before this start."""
        prefix = self.mqtt.topic_prefix
        for camera in self.cameras:
            for key in STATE_KEYS:
                payload = self._restored.get(f"{prefix}/{camera}/{key}/state")
                if payload is not None:
                    self._apply(camera, key, payload, source="restored state")
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
            for component, key in discovery.CAMERA_DISCOVERY:
                unique_id = entity_unique_id(camera_device_id(self.mqtt, camera), key)
                topic = config_topic(self.mqtt, component, unique_id)
                self.comms.publish_absolute(topic, b"", retain=True, qos=1)
            for leaf in CAMERA_STATE_TOPICS:
                self.comms.publish(f"{camera}/{leaf}", b"", retain=True, qos=1)

    # -- publishing ------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The retained description of this detector (read by the HA integration)."""
        cameras = [runtime.config for runtime in self.cameras.values()]
        return {
            **detector_info(self.mqtt, cameras, self._model_name),
            "backend": self.pipeline.model.describe(),
            "instance": self.mqtt.instance or None,
        }

    def _publish_all(self) -> None:
        """Discovery and every current state (after a (re)connect or HA's restart)."""
        self._publish_all_pending.clear()
        self.comms.publish(
            self.mqtt.detector_topic("info"), json.dumps(self.info()), retain=True, qos=1
        )
        if self.mqtt.discovery:
            payloads = dict(discovery.detector_entities(self.mqtt))
            for runtime in self.cameras.values():
                payloads.update(discovery.camera_entities(self.mqtt, runtime.config))
            for (component, unique_id), payload in payloads.items():
                topic = config_topic(self.mqtt, component, unique_id)
                self.comms.publish_absolute(topic, json.dumps(payload), retain=True, qos=1)
        for camera, runtime in self.cameras.items():
            self._publish_settings(camera)
            self.comms.publish(f"{camera}/status", runtime.status, retain=True, qos=1)
            if runtime.view is not None:
                self.comms.publish(f"{camera}/view", runtime.view, retain=True, qos=1)
            self._publish_smoke(camera, runtime.smoke, event=False)
            if runtime.last_attributes is not None:
                self.comms.publish(
                    f"{camera}/smoke/attributes", json.dumps(runtime.last_attributes), retain=True
                )
            if runtime.last_score is not None:
                self.comms.publish(f"{camera}/score", f"{runtime.last_score:.1f}", retain=True)
            if runtime.alert_image is not None:
                self.comms.publish(f"{camera}/alert/image", runtime.alert_image, retain=True)
        self._publish_stats()

    def _publish_settings(self, camera: str) -> None:
        runtime = self.cameras[camera]
        state = self.pipeline.camera(camera)
        self.comms.publish(
            f"{camera}/enabled/state", "ON" if runtime.config.enabled else "OFF", retain=True, qos=1
        )
        self.comms.publish(
            f"{camera}/threshold/state", f"{state.settings.threshold:g}", retain=True, qos=1
        )
        self.comms.publish(
            f"{camera}/masks/state",
            json.dumps(masks_to_json(state.masks("local"))),
            retain=True,
            qos=1,
        )
        self._publish_masks_attributes(camera)

    def _publish_masks_attributes(self, camera: str) -> None:
        state = self.pipeline.camera(camera)
        attributes = masks_attributes(
            state.masks("local"), state.masks("remote"), list(self.cameras[camera].false_alarms)
        )
        self.comms.publish(f"{camera}/masks/attributes", json.dumps(attributes), retain=True)

    def stats(self) -> dict[str, Any]:
        """The stats JSON published on <prefix>/stats."""
        cameras = {}
        for camera, runtime in self.cameras.items():
            slot = self.scheduler.slots[camera]
            cameras[camera] = {
                "frames_in": slot.frames_in,
                "scored": slot.scored,
                "dropped": slot.dropped,
                "errors": dict(runtime.errors),
                "last_score": runtime.last_score,
                "last_scored_at": None
                if runtime.last_scored_at is None
                else iso_utc(runtime.last_scored_at),
                "status": runtime.status,
            }
        timings = list(self._inference_ms)
        return {
            "uptime": round(time.monotonic() - self._started, 1),
            "inference_ms": round(statistics.median(timings), 1) if timings else None,
            "frames_dropped": sum(slot.dropped for slot in self.scheduler.slots.values()),
            "cameras": cameras,
            "rejected": dict(self.rejected),
            "detections_waiting": len(self._unsent),
            "detections_dropped": self.detections_dropped,
            "model": self.pipeline.model.health(),
            **self.health.snapshot(),
        }

    def _publish_stats(self) -> None:
        self.comms.publish(self.mqtt.detector_topic("stats"), json.dumps(self.stats()))

    def _update_health(self) -> None:
        now = time.monotonic()
        for camera, runtime in self.cameras.items():
            slot = self.scheduler.slots[camera]
            status = "offline"
            if slot.last_frame_at is not None:
                silence = now - slot.last_frame_at
                interval = runtime.config.interval
                window = runtime.config.stale_after * interval
                if silence <= window:
                    if _blind(runtime, now, window):
                        status = "refused"
                    elif runtime.view == "frozen":
                        # Frames that keep arriving with the same bytes show nothing new.
                        status = "frozen"
                    else:
                        status = "online"
                elif silence <= runtime.config.offline_after * interval:
                    status = "stale"
            if status != runtime.status:
                runtime.status = status
                self.comms.publish(f"{camera}/status", status, retain=True, qos=1)

    # -- bad input -------------------------------------------------------------------------

    def _reject(self, camera: str, reason: str, message: str, *, detail: str = "") -> None:
        """Count a refused input; log it once per camera and reason, then rate-limited.

        `detail` refines what counts as the same reason in the log (each command topic is
        logged on its own) without splitting the counters.
        """
        now = time.monotonic()
        # Messages may quote a source URL or a server's answer: never its credentials.
        message = redact_text(message)
        with self._reject_lock:
            self.rejected[reason] += 1
            runtime = self.cameras.get(camera)
            if runtime is not None:
                runtime.errors[reason] += 1
            key = (camera, f"{reason}:{detail}" if detail else reason)
            entry = self._reject_log.get(key)
            if entry is None:
                if len(self._reject_log) < REJECT_LOG_KEYS:
                    self._reject_log[key] = [now, 0]
                    _LOGGER.warning("Refused input for %s (%s): %s", camera, reason, message)
                else:
                    _LOGGER.debug("Refused input for %s (%s): %s", camera, reason, message)
                return
            if now - entry[0] < REJECT_LOG_EVERY:
                entry[1] += 1
                _LOGGER.debug("Refused input for %s (%s): %s", camera, reason, message)
                return
            _LOGGER.warning(
                "Refused input for %s (%s) again, %d time(s) in the last %.0f s; latest: %s",
                camera,
                reason,
                entry[1] + 1,
                now - entry[0],
                message,
            )
            entry[0], entry[1] = now, 0

    # -- commands --------------------------------------------------------------------------

    def _command(self, camera: str, setting: str, payload: bytes) -> None:
        if camera not in self.cameras:
            self._reject(camera, "unknown_camera", f"command {setting} for an unknown camera")
            return
        if setting in ("reset", "test"):
            text = payload.decode("utf-8", "replace").strip()
            if text.upper() != PRESS:
                self._reject(
                    camera,
                    "bad_command",
                    f"{setting}: expected {PRESS}, got {text[:40]!r}",
                    detail=setting,
                )
            elif setting == "reset":
                self._reset(camera)
            else:
                self._test_alert(camera)
        elif setting == "false_alarm":
            self._false_alarm(camera, payload)
        elif setting in STATE_KEYS:
            if self._apply(camera, setting, payload, source="command"):
                self._publish_settings(camera)
        else:
            self._reject(
                camera, "bad_command", f"unknown command topic {setting}/set", detail=setting
            )

    def _apply(self, camera: str, key: str, payload: bytes, *, source: str) -> bool:
        """Apply a setting from a command or a restored state; False (logged) when invalid."""
        runtime = self.cameras[camera]
        text = payload.decode("utf-8", "replace").strip()
        try:
            if key == "enabled":
                if text.upper() not in ("ON", "OFF"):
                    raise ValueError(f"expected ON or OFF, got {text[:40]!r}")
                enabled = text.upper() == "ON"
                runtime.config = replace(runtime.config, enabled=enabled)
                if not enabled:
                    self.scheduler.discard(camera)
            elif key == "threshold":
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError(f"expected a number, got {text[:40]!r}") from None
                if not THRESHOLD_MIN <= value <= THRESHOLD_MAX:
                    raise ValueError(
                        f"threshold {value} is outside {THRESHOLD_MIN}..{THRESHOLD_MAX}"
                    )
                runtime.config = replace(runtime.config, threshold=value)
                with self._lock:
                    self.pipeline.add_camera(camera_settings(runtime.config))
            elif key == "masks":
                try:
                    data = parse_json(text, max_bytes=MASKS_MAX_BYTES) if text else []
                except ValueError as err:
                    raise ValueError(f"masks are not valid JSON: {err}") from None
                masks = masks_from_json(data)
                with self._lock:
                    self.pipeline.camera(camera).set_masks("local", masks)
        except ValueError as err:
            self._reject(camera, "bad_command", f"{key} ({source}): {err}", detail=key)
            return False
        _LOGGER.info("Camera %s: %s set to %s (%s)", camera, key, text[:200], source)
        return True

    def _remote_masks(self, camera: str, payload: bytes) -> None:
        if camera not in self.cameras:
            return
        try:
            data = parse_json(payload, max_bytes=MASKS_MAX_BYTES) if payload else []
            # The bridge translates the API's masks into the masks command's JSON.
            masks = masks_from_json(data)
        except ValueError as err:
            self._reject(camera, "bad_remote_masks", f"{err}{REMOTE_MASKS_HINT}")
            return
        with self._lock:
            self.pipeline.camera(camera).set_masks("remote", masks)
        self._publish_masks_attributes(camera)
        _LOGGER.info("Camera %s: %d occlusion mask(s) from the Pyronear API", camera, len(masks))

    def _reset(self, camera: str) -> None:
        runtime = self.cameras[camera]
        with self._lock:
            self.pipeline.camera(camera).reset()
            was_on, was_test = runtime.smoke, runtime.testing
            runtime.smoke, runtime.alert_started, runtime.testing = False, None, False
            if runtime.last_attributes is not None:
                runtime.last_attributes = {
                    **runtime.last_attributes,
                    "alert_started": None,
                    "test": False,
                }
                self.comms.publish(
                    f"{camera}/smoke/attributes", json.dumps(runtime.last_attributes), retain=True
                )
            self._publish_smoke(camera, False, test=was_test, event=was_on)
        _LOGGER.info("Camera %s: alert reset", camera)

    def _false_alarm(self, camera: str, payload: bytes) -> None:
        """ "Not smoke": mask the latest alert's boxes (IoU rule), then end the alert."""
        text = payload.decode("utf-8", "replace").strip()
        if text.upper() != PRESS:
            self._reject(
                camera,
                "bad_command",
                f"false_alarm: expected {PRESS}, got {text[:40]!r}",
                detail="false_alarm",
            )
            return
        runtime = self.cameras[camera]
        with self._lock:
            state = self.pipeline.camera(camera)
            local = state.masks("local")
            added = false_alarm_masks(runtime.alert_boxes, [mask.name for mask in local])
            if not added:
                self._reject(
                    camera,
                    "bad_command",
                    "false_alarm: no alert on this camera has boxes to mask yet",
                    detail="false_alarm",
                )
                return
            state.set_masks("local", (*local, *added))
            event = FalseAlarm(
                at=time.time(),
                alert_started=runtime.alert_boxes_started,
                masks=tuple(mask.name for mask in added),
                boxes=tuple(mask.bounds for mask in added),
            )
            runtime.false_alarms.append(event)
            runtime.alert_boxes = []
            if runtime.last_attributes is not None:
                runtime.last_attributes = {
                    **runtime.last_attributes,
                    "false_alarm": event.to_json(),
                }
        _LOGGER.info(
            "Camera %s: false alarm, %d box(es) masked as %s",
            camera,
            len(added),
            ", ".join(event.masks),
        )
        self._publish_settings(camera)
        # The alert ends as an acknowledged one does (the reset publishes the attributes).
        self._reset(camera)

    def _test_alert(self, camera: str) -> None:
        """A synthetic alert through the real outputs; never forwarded to the Pyronear API."""
        runtime = self.cameras[camera]
        source = runtime.last_jpeg or _blank_jpeg()
        boxes = np.array([[0.4, 0.4, 0.6, 0.6, 1.0]], dtype=np.float32)
        image = annotate_jpeg(source, boxes, label="test", banner="SMOKEWATCH TEST ALERT")
        attributes = {
            "score": 100.0,
            "boxes": boxes.tolist(),
            "model": self._model_name,
            "frame_time": iso_utc(time.time()),
            "alert_started": iso_utc(time.time()),
            "test": True,
        }
        with self._lock:
            if runtime.smoke:
                _LOGGER.info("Camera %s: a test alert is refused while an alert is on", camera)
                return
            runtime.alert_image = image
            self.comms.publish(f"{camera}/alert/image", image, retain=True, qos=1)
            self.comms.publish(f"{camera}/smoke/attributes", json.dumps(attributes), retain=True)
            self._publish_smoke(camera, True, test=True)
            runtime.smoke = runtime.testing = True
            runtime.alert_started = time.time()
        _LOGGER.info("Camera %s: test alert for %.0f s", camera, TEST_ALERT_SECONDS)

        def end() -> None:
            with self._lock:
                if runtime.testing:  # neither reset nor a real alert took over meanwhile
                    runtime.smoke = runtime.testing = False
                    runtime.alert_started = None
                    if runtime.last_attributes is not None:
                        runtime.last_attributes = {
                            **runtime.last_attributes,
                            "alert_started": None,
                            "test": False,
                        }
                        self.comms.publish(
                            f"{camera}/smoke/attributes",
                            json.dumps(runtime.last_attributes),
                            retain=True,
                        )
                    self._publish_smoke(camera, False, test=True)

        runtime.test_timer = threading.Timer(TEST_ALERT_SECONDS, lambda: self.control.put(end))
        runtime.test_timer.daemon = True
        runtime.test_timer.start()

    # -- the inference worker --------------------------------------------------------------

    def _work(self) -> None:
        """The inference worker's loop (supervised: restarted if anything escapes it)."""
        while not self.stop_event.is_set():
            job = self.scheduler.next_job(timeout=0.5)
            self.health.ok("inference")
            if job is None:
                continue
            runtime = self.cameras[job.camera]
            try:
                data, frame_time = parse_frame_payload(
                    job.payload,
                    job.received_wall,
                    on_bad_time=functools.partial(self._reject, job.camera, "bad_ts"),
                )
                # The lock spans scoring and publishing so that a reset or test alert on the
                # control thread cannot slip between a frame's vote and its published state.
                with self._lock:
                    result = self.pipeline.process(job.camera, data, frame_time)
                    self._inference_ms.append(result.timings["model"])
                    runtime.last_jpeg = data
                    runtime.last_good_at = time.monotonic()
                    self._publish_result(runtime, result, data)
            except (FrameError, InferenceError) as err:
                if isinstance(err, FrameError):
                    # The camera's own frames were refused (an inference server down is the
                    # detector's fault, shown by its Inference entity).
                    runtime.last_refused_at = time.monotonic()
                self._reject(job.camera, err.reason, str(err))
                continue
            except Exception:  # the worker must survive anything one frame does
                _LOGGER.exception("Scoring a frame of %s failed", job.camera)
                self._reject(job.camera, "internal", "scoring failed")

    def _publish_result(self, runtime: CameraRuntime, result: FrameResult, data: bytes) -> None:
        camera = result.camera
        vote = result.vote
        runtime.last_score = round(vote.score * 100, 1)
        runtime.last_scored_at = result.frame_time
        # Smoke confirmed during a test alert is a real alert: it starts as one.
        real_over_test = vote.event == "start" and runtime.testing
        if vote.event == "start":
            runtime.alert_started = result.frame_time
            runtime.testing = False
        elif not vote.ongoing and not runtime.testing:  # a test alert keeps its start time
            runtime.alert_started = None
        attributes = {
            "score": runtime.last_score,
            "boxes": [[round(float(v), 4) for v in box] for box in vote.boxes],
            "model": self._model_name,
            "frame_time": iso_utc(result.frame_time),
            "alert_started": None
            if runtime.alert_started is None
            else iso_utc(runtime.alert_started),
            "test": runtime.testing,  # frames scored during a test alert keep it a test
            "view": None if result.view is None else result.view.state,
            "paused": result.paused,
            # Why boxes did not become alert boxes (README, "Why no alert"); capped so the
            # attributes stay small whatever the model outputs.
            "dropped": [drop.to_json() for drop in result.dropped[:MAX_DROPS_SHOWN]],
            # The latest "Not smoke" on this camera (its masks are in masks/attributes).
            "false_alarm": runtime.false_alarms[-1].to_json() if runtime.false_alarms else None,
        }
        runtime.last_attributes = attributes
        if result.view is not None and result.view.state != runtime.view:
            runtime.view = result.view.state
            self.comms.publish(f"{camera}/view", runtime.view, retain=True, qos=1)
            _LOGGER.info("Camera %s: view %s", camera, runtime.view)
            # The status follows a frozen view at once, not at the next health check.
            self.control.put(self._update_health)
        self.comms.publish(f"{camera}/score", f"{runtime.last_score:.1f}", retain=True)
        self.comms.publish(f"{camera}/smoke/attributes", json.dumps(attributes), retain=True)
        if vote.ongoing:
            boxes = vote.boxes
            self._images.submit(self._publish_alert_image, camera, data, boxes)
            if len(boxes):
                runtime.alert_boxes = [[float(v) for v in box[:4]] for box in boxes]
                runtime.alert_boxes_started = runtime.alert_started
        self._publish_scored_frame(runtime, data)
        if (vote.ongoing and not runtime.smoke) or real_over_test:
            runtime.smoke = True
            self._publish_smoke(camera, True)
            _LOGGER.info("Camera %s: SMOKE (score %.1f)", camera, runtime.last_score)
            if runtime.config.frigate_events is not None:
                self.frigate.alert(camera, runtime.config.frigate_events, True, vote.score)
        elif not vote.ongoing and runtime.smoke and not runtime.testing:
            runtime.smoke = False
            self._publish_smoke(camera, False)
            _LOGGER.info("Camera %s: smoke alert ended", camera)
            if runtime.config.frigate_events is not None:
                self.frigate.alert(camera, runtime.config.frigate_events, False, vote.score)
        for detection in result.detections:
            self._publish_detection(camera, json.dumps(detection.to_json()))
            if self.on_detection is not None:
                try:
                    self.on_detection(detection)
                except Exception as err:  # whatever the bridge does, detection goes on
                    self.health.failed("bridge", err)

    def _publish_detection(self, camera: str, payload: str) -> None:
        """QoS 1, never dropped by a full client queue: kept and offered again instead."""
        with self._unsent_lock:
            if not self._unsent and self.comms.publish(f"{camera}/detection", payload, qos=1):
                return
            self._unsent.append((camera, payload))
            if len(self._unsent) > UNSENT_DETECTIONS_LIMIT:
                self._unsent.popleft()
                self.detections_dropped += 1
                _LOGGER.error("A detection of %s was dropped: the MQTT queue stayed full", camera)
        self.control.put(lambda: None)  # wake the control loop to offer it again

    def _send_unsent(self) -> None:
        """Offer the detections the client refused again, oldest first, in order."""
        with self._unsent_lock:
            while self._unsent:
                camera, payload = self._unsent[0]
                if not self.comms.publish(f"{camera}/detection", payload, qos=1):
                    return
                self._unsent.popleft()

    def _publish_smoke(
        self, camera: str, on: bool, *, test: bool = False, event: bool = True
    ) -> None:
        """The smoke state (retained) and the alert's start / end event (not retained).

        The event feeds HA's device triggers and event entity (see discovery.py): one message
        per transition, so a trigger fires once per alert and never on a replayed state.
        """
        self.comms.publish(f"{camera}/smoke", "ON" if on else "OFF", retain=True, qos=1)
        if event:
            payload = {"event_type": "started" if on else "ended", "test": test}
            self.comms.publish(discovery.smoke_event_topic(camera), json.dumps(payload), qos=1)

    def _publish_scored_frame(self, runtime: CameraRuntime, data: bytes) -> None:
        """The frame just scored, unannotated, for the zone card: at most once per period."""
        now = time.monotonic()
        last = runtime.frame_published_at
        if last is not None and now - last < self.scored_frame_every:
            return
        runtime.frame_published_at = now
        self.comms.publish(f"{runtime.config.id}/frame", data, retain=True)

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
        self.comms.publish(f"{camera}/alert/image", image, retain=True, qos=1)


def _blind(runtime: CameraRuntime, now: float, window: float) -> bool:
    """Frames arrive but none could be scored within the stale window: the camera sends
    something, yet the detector sees nothing (a wrong format, a broken encoder)."""
    refused, good = runtime.last_refused_at, runtime.last_good_at
    if refused is None or now - refused > window:
        return False
    return good is None or now - good > window


def _is_default_image_topic(prefix: str, topic: str) -> bool:
    """True when `topic` is matched by the `<prefix>/+/image` subscription."""
    if not topic.startswith(f"{prefix}/"):
        return False
    parts = topic[len(prefix) + 1 :].split("/")
    return len(parts) == 2 and bool(parts[0]) and parts[1] == "image"


def _blank_jpeg() -> bytes:
    """A grey frame for a test alert on a camera that has not sent one yet."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", np.full((360, 640, 3), 96, np.uint8))
    assert ok
    return bytes(encoded.tobytes())


def detector_info(
    mqtt: MqttConfig,
    cameras: list[CameraConfig],
    model: str | None,
    *,
    status: str = "ok",
    error: str | None = None,
) -> dict[str, Any]:
    """The retained `<prefix>/info` JSON: what the HA integration reads to find cameras."""
    return {
        "version": __version__,
        "prefix": mqtt.topic_prefix,
        "node_id": mqtt.node_id,
        "discovery_prefix": mqtt.discovery_prefix,
        "model": model,
        "status": status,
        "error": error,
        "cameras": {
            camera.id: {
                "name": camera.name,
                "device_id": camera_device_id(mqtt, camera.id),
                "image_topic": camera.image_topic,
            }
            for camera in cameras
        },
    }


def publish_model_error(config: Config, error: str, *, comms: Comms | None = None) -> None:
    """Tell Home Assistant (retained P/info) that the model is missing, then disconnect."""
    comms = comms or MqttComms(config.mqtt)
    comms.start()
    info = detector_info(
        config.mqtt, list(config.cameras.values()), None, status="model_missing", error=error
    )
    topic = config.mqtt.detector_topic("info")
    if not comms.publish_and_wait(topic, json.dumps(info), retain=True, timeout=15):
        _LOGGER.error("Broker unreachable: the model error is only in this log")
    comms.stop()


__all__ = ["Comms", "DetectorService", "publish_model_error"]
