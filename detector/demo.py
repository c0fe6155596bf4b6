"""`smokewatch demo`: the whole chain on one machine, telling what Home Assistant would see.

Every line goes to the `say` callable of the caller (the command line prints it)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt

from detector.assembly import build_pipeline, load_model
from detector.config import MqttConfig, validate
from detector.contract import image_topic, prefixed
from detector.errors import ModelError
from detector.mqtt import make_client
from detector.replay import iter_frames
from detector.service.detector_service import DetectorService

_LOGGER = logging.getLogger(__name__)

CAMERA = "demo_camera"
# Its own prefix: on a real broker (--broker) the demo must not take over, or remove the cameras
# of, a detector that already runs there under the default prefix.
PREFIX = "smokewatch_demo"
DISCOVERY = "homeassistant"
# The demo's own clients (HA's view, the camera) queue little: frames are QoS 0.
DEMO_QUEUE = 100


def _cloudy_noise(height: int, width: int, seed: int, octaves: int = 6) -> np.ndarray:
    """Smooth fractal noise in [0, 1]: the texture of smoke and of a wooded hillside."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width), np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        rows = 2 ** (octave + 2)
        coarse = rng.random((rows, rows * width // height + 1)).astype(np.float32)
        out += amplitude * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        amplitude *= 0.5
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def synthetic_scene(clear: int = 4, smoke: int = 12, after: int = 6) -> Iterator[bytes]:
    """A wooded ridge under a clear sky where a smoke column rises and grows, then is gone.

    JPEG frames (1280x720, as a tower camera sends). The column is textured and widens as it
    rises, which trained smoke detectors take for smoke; a flat blob they ignore.
    """
    height, width = 720, 1280
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    zenith = np.array([235, 200, 150], np.float32)  # BGR: blue sky, paler at the horizon
    horizon = np.array([205, 195, 185], np.float32)
    scene = (zenith * (1 - rows) + horizon * rows) * np.ones((1, width, 1), np.float32)
    columns = np.linspace(0, 1, width, dtype=np.float32)
    ridge = (430 + 40 * np.sin(columns * 5) + 15 * np.sin(columns * 23)).astype(int)
    forest = _cloudy_noise(height, width, seed=1)
    below = np.arange(height)[:, None] >= ridge[None, :]
    green = np.array([40, 75, 55], np.float32) * (0.7 + 0.6 * forest[..., None])
    scene[below] = green[below]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base_x = 760
    base_y = float(ridge[base_x] + 5)
    rise = (base_y - yy).clip(0)
    smoke_colour = np.array([185, 185, 190], np.float32)  # grey-white, a little blue (BGR)
    # A live sensor's noise: no two frames are the same bytes (the same bytes again are a
    # frozen camera, which the detector reports and does not vote on).
    noise = np.random.default_rng(2)
    for index in range(clear + smoke + after):
        frame = scene
        step = index - clear + 1
        if 0 < step <= smoke:
            top = 60 + 28 * step
            width_at = 12 + 0.3 * rise
            drift = rise**1.3 * 0.08  # the wind bends the column
            column = np.exp(-(((xx - base_x - drift) / width_at) ** 2))
            column *= (yy <= base_y) & (yy >= base_y - top)
            texture = _cloudy_noise(height, width, seed=10 + index)
            fade = 1 - (rise / top).clip(0, 1) ** 3
            alpha = (column * (0.45 + 0.55 * texture) * fade * 0.85)[..., None]
            frame = scene * (1 - alpha) + smoke_colour * alpha
        frame = frame + noise.normal(0.0, 2.5, frame.shape).astype(np.float32)
        ok, encoded = cv2.imencode(
            ".jpg", frame.clip(0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        if not ok:
            raise RuntimeError("OpenCV could not encode a demo frame")
        yield bytes(encoded.tobytes())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_embedded_broker(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The pure-Python amqtt broker on 127.0.0.1 only, on a free port."""
    port = _free_port()
    config = directory / "broker.yaml"
    config.write_text(
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    log = (directory / "broker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(config)],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the embedded broker did not start; see {directory / 'broker.log'}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# The value templates SmokeWatch's discovery uses: a JSON field, or a choice on a boolean one.
_PLAIN = re.compile(r"\{\{ value_json\.([\w.]+) \}\}")
_CHOICE = re.compile(r"\{\{ '(\w+)' if value_json\.([\w.]+) else '(\w+)' \}\}")


@dataclass(frozen=True)
class _Reading:
    """How an entity reads its state topic: the JSON field (dotted), and for a choice template
    the states it gives when that field is true or false."""

    key: str = ""
    choice: tuple[str, str] | None = None  # (when true, when false)
    name: str = ""  # the entity's name in HA ("Alert image", "Scored frame")


class Observer:
    """Reads discovery and states like Home Assistant would, and tells `say` the changes."""

    def __init__(self, config: MqttConfig, say: Callable[[str], None]) -> None:
        self.say = say
        # state topic → {entity id: how it reads the payload} of every entity reading it (the
        # stats topic feeds several detector entities).
        self.entities: dict[str, dict[str, _Reading]] = {}
        self.attribute_topics: dict[str, str] = {}  # json_attributes_topic → entity id
        self.attributes: dict[str, dict[str, Any]] = {}
        self.states: dict[str, str] = {}
        self.alerts = 0
        self.discovered = threading.Event()
        self.lock = threading.Lock()
        self.client = make_client(config, client_id=None, will_topic=None, queue_limit=DEMO_QUEUE)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(prefixed(DISCOVERY, "#"), 0), (prefixed(PREFIX, "#"), 0)]
        )
        self.client.on_message = self._message
        self.client.connect(config.host, config.port)
        self.client.loop_start()

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic, payload = message.topic, bytes(message.payload)
        with self.lock:
            if topic.startswith(f"{DISCOVERY}/") and topic.endswith("/config"):
                # On a real broker this also sees every other integration's discovery.
                if f"/{PREFIX}_" in topic and payload:
                    try:
                        config = json.loads(payload)
                    except ValueError:
                        return
                    if isinstance(config, dict):
                        self._discovered(topic.split("/")[1], config)
                return
            if topic in self.attribute_topics:
                try:
                    attributes = json.loads(payload)
                except ValueError:
                    return
                if isinstance(attributes, dict):
                    self.attributes[self.attribute_topics[topic]] = attributes
                return
            for entity_id, reading in self.entities.get(topic, {}).items():
                self._show(entity_id, reading, payload)

    def _show(self, entity_id: str, reading: _Reading, payload: bytes) -> None:
        """Tell an entity's new state, as HA would derive it from a message, when it changed."""
        if entity_id.startswith(("image.", "camera.")):
            # Each image entity says what it shows: the alert image, or the scored frame.
            what = reading.name.lower() or "image"
            self.say(f"  {entity_id}: new {what} ({len(payload)} bytes JPEG)")
            return
        value = payload.decode("utf-8", "replace")
        if reading.key:
            try:
                found: Any = json.loads(value)
                for part in reading.key.split("."):  # value_json.model.healthy
                    found = found.get(part)
            except (ValueError, AttributeError):
                return
            if reading.choice is not None:
                value = reading.choice[0] if found else reading.choice[1]
            elif found is None:
                value = "unknown"  # HA shows a null value as unknown, not "None"
            else:
                value = str(found)
        if entity_id.startswith(("binary_sensor.", "switch.")):
            value = {"ON": "on", "OFF": "off"}.get(value, value)
        old = self.states.get(entity_id, "unknown")  # what HA shows before any state
        if value != old:
            self.states[entity_id] = value
            score = self.attributes.get(entity_id, {}).get("score")
            detail = "" if score is None else f" (score {score:.1f})"
            self.say(f"  {entity_id}: {old} → {value}{detail}")
            if entity_id.endswith("_smoke") and value == "on":
                self.alerts += 1

    def _discovered(self, component: str, config: dict[str, Any]) -> None:
        device = config.get("device", {}).get("name", "")
        name = config.get("name", "")
        entity_id = f"{component}.{_slug(f'{device} {name}')}"
        topic = config.get("state_topic") or config.get("image_topic") or config.get("topic")
        if not topic or component in {"button", "camera"}:
            return
        template = config.get("value_template", "")
        plain, choice = _PLAIN.fullmatch(template), _CHOICE.fullmatch(template)
        if choice is not None:
            reading = _Reading(choice.group(2), (choice.group(1), choice.group(3)), name)
        elif plain is not None or not template:
            reading = _Reading(plain.group(1) if plain else "", name=name)
        else:
            return  # a template this sketch of HA does not evaluate
        self.entities.setdefault(topic, {})[entity_id] = reading
        attributes = config.get("json_attributes_topic")
        if attributes and attributes != topic:
            self.attribute_topics[attributes] = entity_id
        if config.get("device_class") == "smoke":
            self.discovered.set()

    def close(self) -> None:
        """Disconnect (then the network thread ends at once, not at its next poll)."""
        self.client.disconnect()
        self.client.loop_stop()


def _frames(path: Path | None, interval: float) -> Iterator[bytes]:
    if path is None:
        yield from synthetic_scene()
        return
    # A video is sampled every `interval` seconds of its own time, so it plays at real speed.
    _count, frames = iter_frames(path, interval)
    for frame in frames:
        yield frame.data


def run_demo(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    """Run the demo, telling `say` what happens; returns 0 when it ran to the end."""
    with tempfile.TemporaryDirectory(prefix="smokewatch-demo-") as scratch:
        broker: subprocess.Popen[bytes] | None = None
        if args.broker:
            host, _, port_text = args.broker.rpartition(":")
            host, port = host or "127.0.0.1", int(port_text)
        else:
            broker, port = start_embedded_broker(Path(scratch))
            host = "127.0.0.1"
            say(f"Embedded MQTT broker (amqtt) on {host}:{port}")
        try:
            return _demo(args, host, port, say)
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(timeout=10)


def _demo(args: argparse.Namespace, host: str, port: int, say: Callable[[str], None]) -> int:
    config = validate(
        {
            "mqtt": {
                "host": host,
                "port": port,
                "client_id": f"smokewatch-demo-{port}",
                "topic_prefix": PREFIX,
            },
            "cameras": {
                CAMERA: {
                    "name": "Demo camera",
                    # Score every frame the demo camera sends.
                    "interval": max(0.05, args.interval * 0.5),
                    "nb_frames": args.nb_frames,
                    "threshold": args.threshold,
                    "stale_after": 5,
                    "offline_after": 10,
                }
            },
        }
    )
    try:
        model = load_model(config.model, override=args.model)
    except ModelError as err:
        raise ModelError(
            f"{err}\nWithout internet, give the demo a local model: "
            "smokewatch demo --model FILE.onnx"
        ) from None
    if not getattr(args, "verbose", False):
        # The demo's output is what Home Assistant sees; the detector's own log would drown it.
        logging.getLogger("detector").setLevel(logging.WARNING)
    service = DetectorService(config, build_pipeline(config, model), stats_interval=5.0)
    observer = Observer(config.mqtt, say)
    service.start()
    control = threading.Thread(target=service.serve, name="control", daemon=True)
    control.start()
    say(f"Detector running with model {model.name}; Home Assistant would see:")
    camera = make_client(config.mqtt, client_id=None, will_topic=None, queue_limit=DEMO_QUEUE)
    camera.connect(host, port)
    camera.loop_start()
    started = time.monotonic()
    sent = 0
    try:
        # HA acts on discovery before states: wait for it like HA would see it.
        if not observer.discovered.wait(15):
            say("No discovery seen from the detector; is the broker reachable?")
        for frame in _frames(args.frames, args.interval):
            if args.duration is not None and time.monotonic() - started > args.duration:
                break
            camera.publish(image_topic(PREFIX, CAMERA), frame, qos=0)
            sent += 1
            time.sleep(args.interval)
        time.sleep(min(3.0, args.interval * 3))
    finally:
        camera.disconnect()
        camera.loop_stop()
        service.stop()
        control.join(timeout=30)
        observer.close()
    say(
        f"Demo over: {sent} frames published, {observer.alerts} smoke alert(s) seen "
        "by Home Assistant."
    )
    return 0
