"""Test helpers: a probe client that records every message, and the real service process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from detector.contract import parse_iso
from tests.detector.tiny_model import live

REPO = Path(__file__).resolve().parents[2]


class Probe:
    """An MQTT client that records what it receives and can wait for a condition."""

    def __init__(self, host: str, port: int, topics: tuple[str, ...] = ("#",)) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))
            self.cond.notify_all()

    def payloads(self, topic: str) -> list[bytes]:
        """Every payload received on a topic, oldest first."""
        with self.cond:
            return [payload for t, payload, _ in self.messages if t == topic]

    def last(self, topic: str) -> bytes | None:
        """The newest payload of a topic."""
        found = self.payloads(topic)
        return found[-1] if found else None

    def wait_for(self, check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Wait until check() is truthy and return its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                self.cond.release()
                try:
                    value = check()
                finally:
                    self.cond.acquire()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
                self.cond.wait(min(remaining, 0.2))

    def sync(self, timeout: float = 10.0) -> None:
        """Wait until this probe holds everything the broker had routed to it before now,
        the retained messages of its subscriptions included: a token it publishes on a topic
        of its own comes back after them (the broker keeps one connection's order)."""
        assert self.subscribed.wait(timeout), "the probe did not subscribe"
        token = uuid.uuid4().hex
        topic = f"probe-sync/{token}"
        self.client.subscribe(topic, 1)
        self.publish(topic, token)
        self.wait_for(lambda: self.last(topic) is not None, timeout, "the probe's own token")

    def wait_count(self, topic: str, count: int, timeout: float = 10.0) -> list[bytes]:
        """Wait until `count` payloads arrived on a topic."""
        return self.wait_for(  # type: ignore[no-any-return]
            lambda: (p := self.payloads(topic)) and len(p) >= count and p,
            timeout,
            f"{count} messages on {topic}",
        )

    def publish(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 1
    ) -> None:
        """Publish and wait until the broker has it."""
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def write_config(path: Path, port: int, model: Path, cameras: dict[str, str], **extra: str) -> Path:
    """A service config for tests: cameras as {id: yaml-flow-mapping}."""
    lines = [
        f"model: {{path: {model}}}",
        f"mqtt: {{host: 127.0.0.1, port: {port}, client_id: {extra.get('client_id', 'sw-test')}}}",
        "detection: {interval: 0.2, nb_frames: 3, threshold: 0.25,"
        " stale_after: 10, offline_after: 50}",
        # Dismissed alerts' frames stay in the test's folder, not the user's home.
        f"false_alarms: {{dir: {path.parent / 'false_alarms'}}}",
        "cameras:",
        *(f"  {name}: {settings}" for name, settings in cameras.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


class SmokewatchProcess:
    """`python -m detector ARGS...` as a real process, its output in a log file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "detector", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def log(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text(errors="replace")

    def rss_kib(self) -> int:
        """Resident memory of the process."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL."""
        self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        """Make sure the process is gone."""
        if self.process.poll() is None:
            self.kill()
        self._log.close()


class ServiceProcess(SmokewatchProcess):
    """`python -m detector run -c CONFIG` (stats every 0.5 s)."""

    def __init__(self, config: Path, log: Path, *args: str) -> None:
        super().__init__(["run", "-c", str(config), "--stats-interval", "0.5", *args], log)


def score_frame(
    probe: Probe,
    camera: str,
    payload: bytes,
    prefix: str = "smokewatch",
    *,
    ts: float | None = None,
    new_capture: bool = True,
) -> dict[str, Any]:
    """Publish one frame and wait for the attributes of its scoring.

    Attributes are also published for other reasons (masks from the Pyronear API, a
    re-publish for Home Assistant): only those of a frame received after this publish count,
    by their `frame_time` (the service stamps a raw frame with its arrival; the attributes
    carry it to the millisecond). A frame whose envelope gives its own time (`"ts"`) is
    matched by that time, `ts`. A raw JPEG is sent as a live camera's new capture (`live`:
    the same pixels in new bytes), so that sending one picture several times is several
    observations, not a frozen camera's repeats (which the pipeline does not vote on);
    `new_capture=False` sends the bytes as they are.
    """
    if new_capture and payload.startswith(b"\xff\xd8"):
        payload = live(payload)
    topic = f"{prefix}/{camera}/smoke/attributes"
    sent = time.time() - 0.001

    def ours(frame_time: float) -> bool:
        return abs(frame_time - ts) < 0.001 if ts is not None else frame_time >= sent

    def scored() -> dict[str, Any] | None:
        for raw in reversed(probe.payloads(topic)):
            data = json.loads(raw) if raw else None
            if data and ours(parse_iso(data["frame_time"])):
                return data  # type: ignore[no-any-return]
        return None

    probe.publish(f"{prefix}/{camera}/image", payload)
    return probe.wait_for(scored, 30, f"the attributes of a frame of {camera}")  # type: ignore[no-any-return]


def newest_stats(
    probe: Probe,
    check: Callable[[dict[str, Any]], Any] = bool,
    timeout: float = 20.0,
    topic: str = "smokewatch/stats",
) -> dict[str, Any]:
    """The newest stats message (a JSON object) that satisfies `check`, waiting for it."""

    def newest() -> dict[str, Any] | None:
        last = probe.last(topic)
        data = json.loads(last) if last else None
        return data if isinstance(data, dict) and check(data) else None

    return probe.wait_for(newest, timeout, f"{topic} satisfying {check}")  # type: ignore[no-any-return]
