"""A camera whose token or pose the API refuses: its delivery pauses, shows it, and resumes.

Between a real broker and the contract-enforcing API, the bridge in this process:
- the API refusing detections (403, a pose of another camera) while it takes heartbeats made
  the health flap at every heartbeat;
- a deactivated pose (422) marked every detection failed for good, with no fault shown;
- `failed` kept its lifetime count after `bridge retry` delivered everything, `last_error`
  had no time, `bridge status` did not say that delivery was paused;
- after the token was fixed, delivery waited for its backoff (up to backoff_max, 300 s).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.bridge import delivery as delivery_module
from detector.bridge.bridge_service import BridgeService
from detector.config import load_config
from tests.detector.broker import Broker
from tests.detector.fake_pyronear import SECRET
from tests.detector.mqtt_helpers import REPO
from tests.detector.test_bridge_service import Env, assert_no_token
from tests.detector.tiny_model import smoke_jpeg

FRAME = smoke_jpeg(120, 64)


@pytest.fixture
def env(broker: Broker, tmp_path: Path) -> Iterator[Env]:
    e = Env(broker, tmp_path, heartbeat_interval=0.2)
    try:
        yield e
    finally:
        e.close()


def start_bridge(env: Env) -> BridgeService:
    service = BridgeService(load_config(env.config))
    service.start()
    env.probe.wait_for(lambda: env.probe.last("smokewatch/bridge/available") == b"online", 15)
    return service


def with_frames(env: Env, check: Callable[[], Any], timeout: float = 20) -> Any:
    """Wait for `check()` while camera a sends frames (so the duties send heartbeats)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        env.probe.publish("smokewatch/a/image", FRAME, qos=0)
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


def all_stats(env: Env) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in env.probe.payloads("smokewatch/bridge/stats")]


def status_text(env: Env) -> str:
    return subprocess.run(
        [sys.executable, "-m", "detector", "bridge", "status", "-c", str(env.config)],
        capture_output=True, text=True, cwd=REPO, timeout=30, check=True,
    ).stdout  # fmt: skip


def test_refused_detections_beside_working_heartbeats_show_one_steady_fault(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = start_bridge(env)
    try:
        env.api.poses[11] = 2  # the pose now belongs to another camera: detections get 403
        env.publish("a")
        env.stats(lambda s: s.get("healthy") is False)
        first_unhealthy = len(all_stats(env)) - 1
        heartbeats = env.api.heartbeats.count(1)
        # Five heartbeats accepted while detections are refused.
        with_frames(env, lambda: env.api.heartbeats.count(1) >= heartbeats + 5)
        stats = env.stats(lambda s: True)
        seen = all_stats(env)[first_unhealthy:]
        assert [s["healthy"] for s in seen] == [False] * len(seen)
        assert list(stats["faults"]) == ["pose of a"], stats["faults"]
        assert "pose 11" in stats["faults"]["pose of a"]
        assert (stats["pending"], stats["failed"], stats["paused"]) == (1, 0, ["a"])
        # One fault, logged once: not one error and one "works again" per heartbeat.
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len([e for e in errors if "of a failed" in e]) == 1, errors
        assert "works again" not in caplog.text
        env.api.poses[11] = 1  # fixed on the platform: it resumes by itself
        stats = env.stats(lambda s: s["delivered"] == 1 and s["healthy"] is True)
        assert stats["paused"] == [] and stats["cameras"]["a"]["paused"] is None
    finally:
        bridge.stop()


def test_a_deactivated_pose_pauses_delivery_shows_it_and_resumes(env: Env) -> None:
    bridge = start_bridge(env)
    try:
        env.api.inactive.add(11)
        for _ in range(3):
            env.publish("a")
        # The outbox's record of the pause follows the fault by a moment: wait for both.
        stats = env.stats(
            lambda s: s["pending"] == 3 and "pose of a" in s.get("faults", {}) and s["paused"]
        )
        assert stats["failed"] == 0 and stats["failed_total"] == 0 and stats["paused"] == ["a"]
        camera = stats["cameras"]["a"]
        assert "not among the active poses" in camera["paused"]
        assert "HTTP 422" in camera["paused"] and camera["paused_since"].endswith("Z")
        text = status_text(env)
        assert "a: delivery PAUSED since" in text and "pose 11" in text
        env.api.inactive.discard(11)
        stats = env.stats(lambda s: s["delivered"] == 3 and s["healthy"] is True)
        assert stats["failed"] == 0 and stats["pending"] == 0
        assert env.received(1) == env.sent["a"]
        assert "PAUSED" not in status_text(env)
        assert_no_token(json.dumps(stats) + status_text(env))
    finally:
        bridge.stop()


def test_failed_is_what_is_failed_now_and_errors_carry_their_time(env: Env) -> None:
    bridge = start_bridge(env)
    try:
        env.api.reject_next = 2  # two permanent refusals (422) of items, the pose being fine
        for _ in range(3):
            env.publish("a")
        stats = env.stats(lambda s: s["failed"] == 2 and s["delivered"] == 1)
        assert stats["failed_total"] == 2 and stats["healthy"] is True
        assert stats["last_error_at"].endswith("Z") and stats["last_error"].startswith("HTTP 422")
        assert stats["cameras"]["a"]["last_error_at"] == stats["last_error_at"]
        subprocess.run(
            [sys.executable, "-m", "detector", "bridge", "retry", "-c", str(env.config)],
            capture_output=True, cwd=REPO, timeout=30, check=True,
        )  # fmt: skip
        stats = env.stats(lambda s: s["delivered"] == 3)
        assert (stats["failed"], stats["failed_total"], stats["pending"]) == (0, 2, 0)
        assert "failed 0" in status_text(env)
    finally:
        bridge.stop()


@pytest.fixture
def long_backoff(broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """backoff_max 300 s, and the jitter's first draw long (seeded): a retry that waited for
    its backoff would come after the test's time is up."""
    seeded = random.Random(2)
    monkeypatch.setattr(delivery_module.random, "Random", lambda: seeded)
    e = Env(broker, tmp_path, heartbeat_interval=0.2, backoff_initial=300, backoff_max=300)
    try:
        yield e
    finally:
        e.close()


def test_a_fixed_token_resumes_delivery_at_the_next_heartbeat(long_backoff: Env) -> None:
    env = long_backoff
    env.api.secret = b"a-new-secret-after-a-restart"  # every camera token refused (401)
    bridge = start_bridge(env)
    try:
        env.publish("a")
        with_frames(env, lambda: ("PATCH", "/api/v1/cameras/heartbeat", 401) in env.api.calls)
        env.stats(lambda s: "token of a" in s.get("faults", {}) and s["pending"] == 1)
        env.api.secret = SECRET
        with_frames(env, lambda: len(env.received(1)) == 1, timeout=15)
        env.stats(lambda s: s["delivered"] == 1 and s["healthy"] is True)
    finally:
        bridge.stop()


def test_a_paused_camera_looks_again_within_the_pause_cap_without_frames(
    long_backoff: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = long_backoff
    # The cap (30 s in use) made short, so that the test does not wait for it.
    monkeypatch.setattr(delivery_module, "PAUSED_RETRY_MAX", 0.3, raising=False)
    env.api.secret = b"a-new-secret-after-a-restart"
    bridge = start_bridge(env)
    try:
        env.publish("a")
        env.stats(lambda s: "token of a" in s.get("faults", {}) and s["pending"] == 1)
        env.api.secret = SECRET  # no frame flows: no heartbeat tells it
        env.stats(lambda s: s["delivered"] == 1 and s["healthy"] is True, timeout=15)
    finally:
        bridge.stop()
