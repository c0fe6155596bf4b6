"""A message bus without a broker, for in-process tests of the service (the Comms protocol).

It records every publish with its retain flag and QoS, keeps what a broker would retain, and
routes `deliver`ed messages to the handlers subscribed with MQTT's wildcards, as paho would.
A publish on a topic the service subscribes to comes back to it, as from a broker (the
start-up probe's echo ends the restore window).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detector.assembly import build_pipeline, load_model
from detector.config import load_config
from detector.mqtt import Handler, Inbound
from detector.service.detector_service import DetectorService
from tests.detector.tiny_model import make_tiny_model


@dataclass(frozen=True)
class Message:
    """One publish, with its full topic."""

    topic: str
    payload: bytes
    retain: bool
    qos: int


def _matches(pattern: str, topic: str) -> bool:
    """MQTT topic matching (`+` one level, `#` the rest)."""
    want, have = pattern.split("/"), topic.split("/")
    for index, part in enumerate(want):
        if part == "#":
            return True
        if index >= len(have) or (part != "+" and part != have[index]):
            return False
    return len(want) == len(have)


class FakeComms:
    """Records publishes; `accept = False` makes every publish refused (a full queue)."""

    def __init__(self, prefix: str = "smokewatch") -> None:
        self.prefix = prefix
        self.on_connected: Callable[[bool], None] | None = None
        self.messages: list[Message] = []
        self.retained: dict[str, bytes] = {}
        self.handlers: list[tuple[str, Handler]] = []
        self.accept = True
        self.echo = True  # False: a broker that never sends our own publishes back
        self.connected = threading.Event()

    def start(self) -> None:
        """Nothing to connect (`connect` says the service is connected)."""
        self.connected.set()

    def stop(self, *, timeout: float = 5.0) -> None:
        """Nothing to disconnect."""
        self.connected.clear()

    def connect(self) -> None:
        """As a broker at a connect: the retained messages of the subscriptions (flagged
        retained), then the service's on_connected."""
        for topic, payload in list(self.retained.items()):
            self.deliver(topic, payload, retain=True)
        if self.on_connected is not None:
            self.on_connected(False)

    def subscribe(
        self,
        topic: str,
        handler: Handler,
        *,
        qos: int = 0,
        absolute: bool = False,
    ) -> None:
        self.handlers.append((topic if absolute else f"{self.prefix}/{topic}", handler))

    def publish(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        return self.publish_absolute(f"{self.prefix}/{topic}", payload, retain=retain, qos=qos)

    def publish_absolute(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        if not self.accept:
            return False
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        self.messages.append(Message(topic, data, retain, qos))
        if retain:
            if data:
                self.retained[topic] = data
            else:
                self.retained.pop(topic, None)
        if self.echo:
            self.deliver(topic, data)
        return True

    def publish_and_wait(
        self, topic: str, payload: bytes | str, *, retain: bool = False, timeout: float = 10.0
    ) -> bool:
        return self.publish(topic, payload, retain=retain, qos=1)

    def deliver(self, topic: str, payload: bytes | str, *, retain: bool = False) -> int:
        """Hand a message to the first matching handler, as the session routes it on the
        network thread; 1, or 0 when no subscription matches. `retain`: a message the
        broker kept (sent at a connect)."""
        data = payload.encode() if isinstance(payload, str) else payload
        for pattern, handler in self.handlers:
            if _matches(pattern, topic):
                handler(Inbound(topic, data, retain))
                return 1
        return 0

    def last(self, leaf: str) -> Message | None:
        """The newest publish on `<prefix>/<leaf>`."""
        topic = f"{self.prefix}/{leaf}"
        return next((m for m in reversed(self.messages) if m.topic == topic), None)

    def on(self, leaf: str) -> list[Message]:
        """Every publish on `<prefix>/<leaf>`, oldest first."""
        topic = f"{self.prefix}/{leaf}"
        return [m for m in self.messages if m.topic == topic]

    def clear(self) -> None:
        """Forget the publishes so far (not the retained ones)."""
        self.messages.clear()


def in_process_service(config_path: Path) -> DetectorService:
    """A DetectorService of a config file, on a fresh FakeComms (not started: no threads)."""
    config = load_config(config_path)
    model = load_model(config.model, progress=False)
    return DetectorService(config, build_pipeline(config, model), comms=FakeComms())


def one_camera_service(folder: Path) -> DetectorService:
    """`in_process_service` of camera `a` on the tiny model, written in `folder`."""
    model = make_tiny_model(folder / "tiny.onnx")
    path = folder / "c.yaml"
    path.write_text(
        f"model: {{path: {model}}}\nfalse_alarms: {{dir: {folder / 'false_alarms'}}}\n"
        "cameras: {a: {}}\n"
    )
    return in_process_service(path)
