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
        self.on_connected: Callable[[], None] | None = None
        self.messages: list[Message] = []
        self.retained: dict[str, bytes] = {}
        self.handlers: list[tuple[str, Callable[[str, bytes], None]]] = []
        self.accept = True
        self.echo = True  # False: a broker that never sends our own publishes back
        self.connected = threading.Event()

    def start(self) -> None:
        """Nothing to connect: connected at once."""
        self.connected.set()

    def stop(self) -> None:
        """Nothing to disconnect."""
        self.connected.clear()

    def subscribe(
        self,
        topic: str,
        handler: Callable[[str, bytes], None],
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

    def deliver(self, topic: str, payload: bytes | str) -> int:
        """Hand a message to every matching handler, as the network thread would; how many."""
        data = payload.encode() if isinstance(payload, str) else payload
        handlers = [handler for pattern, handler in self.handlers if _matches(pattern, topic)]
        for handler in handlers:
            handler(topic, data)
        return len(handlers)

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
    path.write_text(f"model: {{path: {model}}}\ncameras: {{a: {{}}}}\n")
    return in_process_service(path)
