"""The real bridge process between a real broker and the contract-enforcing API, with faults."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.bridge.bridge_service import BridgeService
from detector.config import load_config
from detector.contract import iso_utc
from detector.masks import masks_from_json
from tests.detector.broker import Broker
from tests.detector.fake_pyronear import FakePyronear, make_token
from tests.detector.mqtt_helpers import REPO, Probe, SmokewatchProcess
from tests.detector.tiny_model import smoke_jpeg

BASE_TIME = 1_790_000_000
TOKENS = {"a": make_token(1), "b": make_token(2)}


class BridgeProcess(SmokewatchProcess):
    """`python -m detector -v bridge -c CONFIG` as a real process."""

    def __init__(self, config: Path, log: Path) -> None:
        super().__init__(["-v", "bridge", "-c", str(config)], log)
        self.config = config


class Env:
    """Broker, fake API, a probe and the bridge config of one test."""

    def __init__(self, broker: Broker, tmp_path: Path, **bridge: Any) -> None:
        self.broker = broker
        self.tmp = tmp_path
        self.api = FakePyronear().start()
        self.probe = Probe(broker.host, broker.port, ("smokewatch/#", "homeassistant/#"))
        self.processes: list[BridgeProcess] = []
        self.sent: dict[str, list[int]] = {"a": [], "b": []}
        self.count = 0
        settings = {
            "url": self.api.url,
            "outbox": str(tmp_path / "outbox.sqlite3"),
            "timeout": 2,
            "backoff_initial": 0.05,
            "backoff_max": 0.5,
            "heartbeat_interval": 1,
            "masks_interval": 1,
            "stats_interval": 0.5,
            **bridge,
            "cameras": {
                "a": {"token": "!secret token_a", "pose_id": 11},
                "b": {"token": "!secret token_b", "pose_id": 22},
            },
        }
        (tmp_path / "secrets.yaml").write_text(f"token_a: {TOKENS['a']}\ntoken_b: {TOKENS['b']}\n")
        bridge_yaml = json.dumps(settings).replace('"!secret token_a"', "!secret token_a")
        bridge_yaml = bridge_yaml.replace('"!secret token_b"', "!secret token_b")
        self.config = tmp_path / "config.yaml"
        self.config.write_text(
            f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
            "cameras:\n  a: {}\n  b: {}\n"
            f"bridge: {bridge_yaml}\n"
        )

    def start_bridge(self) -> BridgeProcess:
        process = BridgeProcess(self.config, self.tmp / "bridge.log")
        self.processes.append(process)
        return process

    def publish(self, camera: str, boxes: list[list[float]] | None = None) -> int:
        self.count += 1
        detection = {
            "id": uuid.uuid4().hex,
            "camera": camera,
            "recorded_at": iso_utc(BASE_TIME + self.count),
            "bboxes": [[0.1, 0.1, 0.3, 0.3, 0.6]] if boxes is None else boxes,
            "jpeg": base64.b64encode(smoke_jpeg(200, 64)).decode(),
            "alert": True,
        }
        self.probe.publish(f"smokewatch/{camera}/detection", json.dumps(detection))
        self.sent[camera].append(self.count)
        return self.count

    def received(self, camera_id: int) -> list[int]:
        """Sequence numbers of what the API stored for a camera, in arrival order."""
        return [
            round(_epoch(d.recorded_at or "") - BASE_TIME)
            for d in list(self.api.detections)
            if d.camera_id == camera_id
        ]

    def stats(
        self, check: Callable[[dict[str, Any]], Any] = bool, timeout: float = 20
    ) -> dict[str, Any]:
        def newest() -> dict[str, Any] | None:
            raw = self.probe.last("smokewatch/bridge/stats")
            data = None if raw is None else json.loads(raw)
            return data if data is not None and check(data) else None

        return self.probe.wait_for(newest, timeout, "bridge stats")  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "detector",
                "bridge",
                "status",
                "-c",
                str(self.config),
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=30,
            check=True,
        )
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def close(self) -> None:
        for process in self.processes:
            process.close()
        self.probe.close()
        self.api.stop()


def _epoch(text: str) -> float:
    from detector.contract import parse_iso

    return parse_iso(text)


def bridge_env(broker: Broker, tmp_path: Path) -> Iterator[Env]:
    """An Env closed after the test (other modules use it as their `env` fixture)."""
    e = Env(broker, tmp_path)
    try:
        yield e
    finally:
        e.close()


def hosted_bridge(env: Env) -> Iterator[BridgeService]:
    """The bridge in this process, as `smokewatch run` hosts it (its outbox reachable), online
    on the broker; stopped after the test (other modules use it as their `bridge` fixture)."""
    service = BridgeService(load_config(env.config))
    service.start()
    try:
        env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"online", 15)
        yield service
    finally:
        service.stop()


env = pytest.fixture(name="env")(bridge_env)


def assert_all_delivered_in_order(env: Env) -> None:
    for camera, camera_id in (("a", 1), ("b", 2)):
        received = env.received(camera_id)
        assert sorted(set(received)) == env.sent[camera], (camera, received)
        assert received == sorted(received), (camera, received)


def assert_no_token(text: str) -> None:
    for token in TOKENS.values():
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature


def test_api_down_then_back_with_health_discovery_and_status(env: Env) -> None:
    env.api.mode = "down"
    bridge = env.start_bridge()
    env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"online", 15)
    for index in range(10):
        env.publish("a" if index % 2 else "b")
    stats = env.stats(lambda s: s["pending"] == 10 and s["api_connected"] is True)
    assert stats["last_error"].startswith("HTTP 503") and stats["delivered"] == 0
    assert stats["oldest_pending_age"] is not None
    assert env.api.detections == []
    time.sleep(1.0)  # the API stays down a while: retries back off, nothing is lost
    env.api.mode = "ok"
    stats = env.stats(lambda s: s["delivered"] == 10, timeout=20)
    assert stats["pending"] == 0 and stats["failed"] == 0 and stats["last_success"].endswith("Z")
    assert stats["cameras"]["a"]["delivered"] == 5
    assert_all_delivered_in_order(env)
    # Occlusion masks of the pose, retained for the detector in its own mask JSON.
    masks = env.probe.wait_for(lambda: env.probe.last("smokewatch/a/masks/remote"), 10)
    assert json.loads(masks) == [{"name": "remote-5", "rect": [0.1, 0.1, 0.3, 0.3], "rule": "iou"}]
    assert masks_from_json(json.loads(masks))[0].bounds == (0.1, 0.1, 0.3, 0.3)
    # Discovery of the bridge device.
    configs = {
        topic: json.loads(payload)
        for topic, payload, _ in list(env.probe.messages)
        if topic.startswith("homeassistant/") and "_bridge_" in topic
    }
    assert set(configs) == {
        "homeassistant/binary_sensor/smokewatch_bridge_api/config",
        "homeassistant/binary_sensor/smokewatch_bridge_problem/config",
        "homeassistant/sensor/smokewatch_bridge_outbox/config",
        "homeassistant/sensor/smokewatch_bridge_last_delivery/config",
        "homeassistant/sensor/smokewatch_bridge_failed/config",
    }
    for topic, config in configs.items():
        assert config["unique_id"] == topic.split("/")[2] and "object_id" not in config
        assert config["device"]["identifiers"] == ["smokewatch_bridge"]
        assert config["device"]["name"] == "SmokeWatch bridge"
        assert config["availability"] == [{"topic": "smokewatch/bridge/available"}]
        assert config["origin"]["name"] == "SmokeWatch"
    assert (
        configs["homeassistant/sensor/smokewatch_bridge_last_delivery/config"]["device_class"]
        == "timestamp"
    )
    assert bridge.terminate() == 0
    assert env.probe.last("smokewatch/bridge/available") == b"offline"
    status = env.status()
    assert (status["pending"], status["delivered"], status["failed"]) == (0, 10, 0)
    text = subprocess.run(
        [sys.executable, "-m", "detector", "bridge", "status", "-c", str(env.config)],
        capture_output=True, text=True, cwd=REPO, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "pending 0, delivered 10, failed 0" in text and "a: pending 0, delivered 5" in text
    assert_no_token(bridge.log() + text + json.dumps(stats))


def test_sigkill_during_delivery_loses_nothing(env: Env) -> None:
    # The server stores each detection at once but answers a second late: killing the bridge
    # right after the second one is stored kills it during that upload.
    env.api.mode, env.api.slow_seconds = "slow", 1.0
    bridge = env.start_bridge()
    env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"online", 15)
    for _ in range(8):
        env.publish("a")
    env.probe.wait_for(lambda: len(env.received(1)) >= 2, 20, "two detections stored")
    bridge.kill()
    env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"offline", 15)
    for _ in range(2):  # published while the bridge is down: the broker keeps them
        env.publish("b")
    env.api.mode = "ok"
    second = env.start_bridge()
    stats = env.stats(lambda s: s["delivered"] == 10 and s["pending"] == 0, timeout=30)
    assert_all_delivered_in_order_or_dup(env)
    # Only the upload in flight reached the API twice, and the bridge counted it.
    assert len(env.received(1)) + len(env.received(2)) - 10 == 1
    assert stats["resent"] == 1 and stats["duplicates"] == 0
    assert second.terminate() == 0


def assert_all_delivered_in_order_or_dup(env: Env) -> None:
    for camera, camera_id in (("a", 1), ("b", 2)):
        received = env.received(camera_id)
        assert sorted(set(received)) == env.sent[camera], (camera, received)
        deduplicated = [n for i, n in enumerate(received) if n not in received[:i]]
        assert deduplicated == sorted(deduplicated)


def test_broker_restart_and_rejected_items(env: Env) -> None:
    bridge = env.start_bridge()
    env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"online", 15)
    env.api.script = [422]  # the API refuses the first detection for good
    env.publish("a")
    env.publish("a")
    env.probe.publish("smokewatch/a/detection", "{not json")
    env.probe.publish("smokewatch/b/detection", json.dumps({"id": "x", "camera": "b"}))
    stats = env.stats(lambda s: s["delivered"] == 1 and s["failed"] == 1 and s["rejected"] == 2)
    assert "scripted 422" in stats["last_error"]
    assert env.received(1) == [2]
    env.broker.restart()
    env.probe.wait_for(env.probe.client.is_connected, 15)
    env.publish("b")
    env.stats(lambda s: s["delivered"] == 2)
    assert env.received(2) == [3]
    assert bridge.terminate() == 0
    log = bridge.log()
    assert "Refused a detection on smokewatch/a/detection" in log
    assert "refused detection" in log and "for good" in log
    assert_no_token(log)


def test_bounded_outbox_evicts_with_a_count_and_a_warning(broker: Broker, tmp_path: Path) -> None:
    env = Env(broker, tmp_path, max_items=10)
    try:
        env.api.stop()  # connection refused the whole time
        bridge = env.start_bridge()
        env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"online", 15)
        for _ in range(14):
            env.publish("a")
        stats = env.stats(lambda s: s["evicted"] == 4 and s["pending"] == 10)
        assert stats["api_connected"] is False and "cannot connect" in stats["last_error"]
        assert bridge.log().count("evicted the oldest undelivered detection") == 4
        assert bridge.terminate() == 0
        assert env.status()["evicted"] == 4
    finally:
        env.close()


def test_heartbeat_and_camera_image_while_frames_flow(env: Env) -> None:
    bridge = env.start_bridge()
    env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"online", 15)
    assert env.api.heartbeats == []  # no frames yet, no heartbeat
    frame = smoke_jpeg(120, 64)
    deadline = time.monotonic() + 10
    while env.api.heartbeats.count(1) < 2 and time.monotonic() < deadline:
        env.probe.publish("smokewatch/a/image", frame, qos=0)
        time.sleep(0.3)
    assert env.api.heartbeats.count(1) >= 2 and 2 not in env.api.heartbeats
    assert ("camera", 1) in env.api.images
    # Home Assistant restarting: discovery is published again.
    topic = "homeassistant/sensor/smokewatch_bridge_outbox/config"
    before = len(env.probe.payloads(topic))
    env.probe.publish("homeassistant/status", "online")
    env.probe.wait_for(lambda: len(env.probe.payloads(topic)) > before, 10, "discovery again")
    assert bridge.terminate() == 0


def test_in_process_start_stop_as_smokewatch_run_hosts_it(env: Env) -> None:
    from detector.bridge.bridge_service import BridgeService
    from detector.config import load_config

    service = BridgeService(load_config(env.config))
    service.start()  # returns at once: no network call to the API here
    try:
        env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"online", 15)
        env.publish("a")
        env.stats(lambda s: s["delivered"] == 1)
    finally:
        started = time.monotonic()
        service.stop()
        service.stop()  # idempotent
    assert time.monotonic() - started < 5
    assert env.probe.wait_for(
        lambda: env.probe.last("smokewatch/bridge/available") == b"offline", 5
    )
    assert env.received(1) == [1]
