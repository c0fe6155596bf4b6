"""`smokewatch demo`: the whole chain on one machine, printing what Home Assistant would see."""

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from detector.assembly import build_pipeline, load_model
from detector.config import validate
from detector.replay import iter_frames
from detector.service.service import DetectorService

_LOGGER = logging.getLogger(__name__)

CAMERA = "demo_camera"
PREFIX = "smokewatch"
DISCOVERY = "homeassistant"


def synthetic_scene(clear: int = 6, smoke: int = 10, after: int = 8) -> Iterator[bytes]:
    """A dusk hillside where a grey-white plume rises, grows, then is gone: JPEG frames."""
    height, width = 360, 640
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    sky = np.stack([40 + 20 * ys, 30 + 10 * ys, 20 + 5 * ys], axis=-1) * np.ones((1, width, 1))
    scene = sky.astype(np.float32)
    ridge = (230 + 25 * np.sin(np.linspace(0, 6, width))).astype(int)
    for x, top in enumerate(ridge):
        scene[top:, x] = (25, 45, 30)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(clear + smoke + after):
        frame = scene.copy()
        step = index - clear
        if 0 <= step < smoke:
            radius = 60 + 60 * step / max(1, smoke - 1)
            plume = np.exp(-(((xx - 320) / radius) ** 2 + ((yy - 180) / (radius * 0.9)) ** 2))
            frame += (225 - frame) * plume[..., None] * 0.97
        ok, encoded = cv2.imencode(".jpg", frame.clip(0, 255).astype(np.uint8)[..., ::-1])
        assert ok
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


class Observer:
    """Reads discovery and states like Home Assistant would, and prints the changes."""

    def __init__(self, host: str, port: int) -> None:
        self.entities: dict[str, tuple[str, str]] = {}  # state topic → (entity id, template key)
        self.states: dict[str, str] = {}
        self.alerts = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311
        )
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{DISCOVERY}/#", 0), (f"{PREFIX}/#", 0)]
        )
        self.client.on_message = self._message
        self.client.connect(host, port)
        self.client.loop_start()

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic, payload = message.topic, bytes(message.payload)
        with self.lock:
            if topic.startswith(f"{DISCOVERY}/") and topic.endswith("/config") and payload:
                self._discovered(topic.split("/")[1], json.loads(payload))
                return
            entity = self.entities.get(topic)
            if entity is None:
                return
            entity_id, key = entity
            if entity_id.startswith(("image.", "camera.")):
                print(f"  {entity_id}: new alert image ({len(payload)} bytes JPEG)", flush=True)
                return
            value = payload.decode("utf-8", "replace")
            if key:
                try:
                    value = str(json.loads(value).get(key))
                except (ValueError, AttributeError):
                    return
            if entity_id.startswith("binary_sensor."):
                value = {"ON": "on", "OFF": "off"}.get(value, value)
            old = self.states.get(entity_id)
            if value != old:
                self.states[entity_id] = value
                print(f"  {entity_id}: {old or 'unknown'} → {value}", flush=True)
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
        match = re.search(r"value_json\.(\w+)", template)
        self.entities[topic] = (entity_id, match.group(1) if match else "")

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


def _frames(path: Path | None) -> Iterator[bytes]:
    if path is None:
        yield from synthetic_scene()
        return
    _count, frames = iter_frames(path, 0.0)
    for frame in frames:
        yield frame.data


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when it ran to the end."""
    with tempfile.TemporaryDirectory(prefix="smokewatch-demo-") as scratch:
        broker: subprocess.Popen[bytes] | None = None
        if args.broker:
            host, _, port_text = args.broker.rpartition(":")
            host, port = host or "127.0.0.1", int(port_text)
        else:
            broker, port = start_embedded_broker(Path(scratch))
            host = "127.0.0.1"
            print(f"Embedded MQTT broker (amqtt) on {host}:{port}", flush=True)
        try:
            return _demo(args, host, port)
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(timeout=10)


def _demo(args: argparse.Namespace, host: str, port: int) -> int:
    model_section: dict[str, Any] = {"path": args.model} if args.model else {}
    config = validate(
        {
            "model": model_section,
            "mqtt": {"host": host, "port": port, "client_id": f"smokewatch-demo-{port}"},
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
    model = load_model(config.model)
    service = DetectorService(config, build_pipeline(config, model), stats_interval=5.0)
    observer = Observer(host, port)
    service.start()
    control = threading.Thread(target=service.serve, name="control", daemon=True)
    control.start()
    print(f"Detector running with model {model.name}; Home Assistant would see:", flush=True)
    camera = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    camera.connect(host, port)
    camera.loop_start()
    started = time.monotonic()
    sent = 0
    try:
        time.sleep(1.5)  # let discovery arrive first
        for frame in _frames(args.frames):
            if args.duration is not None and time.monotonic() - started > args.duration:
                break
            camera.publish(f"{PREFIX}/{CAMERA}/image", frame, qos=0)
            sent += 1
            time.sleep(args.interval)
        time.sleep(min(3.0, args.interval * 3))
    finally:
        camera.loop_stop()
        camera.disconnect()
        service.stop()
        control.join(timeout=30)
        observer.close()
    print(
        f"Demo over: {sent} frames published, {observer.alerts} smoke alert(s) seen "
        f"by Home Assistant.",
        flush=True,
    )
    return 0
