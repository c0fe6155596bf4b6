"""Faults that used to silence the bridge or lose alerts, between a real broker and the fake API.

- storage that refuses writes (disk full) ended the thread that carries delivery, duties and
  stats while the bridge still said `online`;
- a refused token (401/403/406) marked every queued detection failed for good;
- credentials in `bridge.url` ended the same thread;
- a failed detection could never be sent again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from detector.bridge import bridge_service as bridge_module
from detector.bridge.bridge_service import BridgeService
from detector.config import load_config
from detector.errors import ConfigError
from tests.detector.fake_pyronear import SECRET
from tests.detector.mqtt_helpers import REPO
from tests.detector.test_bridge_service import (
    TOKENS,
    Env,
    assert_no_token,
    bridge_env,
    hosted_bridge,
)

env = pytest.fixture(name="env")(bridge_env)
bridge = pytest.fixture(name="bridge")(hosted_bridge)


def _refuse_writes(bridge: BridgeService, refuse: bool) -> None:
    """Make SQLite itself refuse every write of the bridge's outbox (or accept them again).

    `query_only` turns each INSERT/UPDATE into sqlite3.OperationalError, as a full disk does:
    the same exception class, raised by the same calls, from the real database.
    """
    with bridge.outbox._file.lock:
        bridge.outbox._file.db.execute(f"PRAGMA query_only={int(refuse)}")


def test_storage_refusing_writes_pauses_delivery_then_it_resumes_nothing_lost(
    env: Env, bridge: BridgeService, caplog: pytest.LogCaptureFixture
) -> None:
    env.api.mode = "down"
    for _ in range(3):
        env.publish("a")
    env.stats(lambda s: s["pending"] == 3)
    _refuse_writes(bridge, True)
    env.api.mode = "ok"
    # Shown as unhealthy, with the reason, while the bridge is still `online`.
    stats = env.stats(lambda s: s.get("healthy") is False and "delivery of a" in s["faults"])
    assert "readonly" in stats["faults"]["delivery of a"]
    assert env.probe.last("smokewatch/bridge/available") == b"online"
    _refuse_writes(bridge, False)
    stats = env.stats(lambda s: s["delivered"] == 3 and s["healthy"] is True, timeout=30)
    assert stats["pending"] == 0 and stats["failed"] == 0
    assert env.received(1) == env.sent["a"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    # Logged once with the reason, not once per retry.
    assert len([e for e in errors if "delivery of a failed" in e]) == 1, errors


def test_refused_token_pauses_then_resumes_by_itself(env: Env, bridge: BridgeService) -> None:
    # A pyro-api restarted without a fixed JWT_SECRET refuses every camera token (401).
    env.api.secret = b"a-new-secret-after-a-restart"
    for _ in range(4):
        env.publish("a")
    stats = env.stats(lambda s: "token of a" in s.get("faults", {}) and s["pending"] == 4)
    assert stats["failed"] == 0 and stats["healthy"] is False
    assert "HTTP 401" in stats["faults"]["token of a"]
    assert_no_token(json.dumps(stats))
    env.api.secret = SECRET  # the server is fixed: nothing to do on our side
    stats = env.stats(lambda s: s["delivered"] == 4 and s["healthy"] is True, timeout=30)
    assert stats["failed"] == 0 and stats["pending"] == 0
    assert env.received(1) == env.sent["a"]


def test_bridge_retry_requeues_failed_detections(env: Env, bridge: BridgeService) -> None:
    env.api.reject_next = 2  # two permanent refusals (422)
    for _ in range(3):
        env.publish("a")
    env.stats(lambda s: s["failed"] == 2 and s["delivered"] == 1)
    out = subprocess.run(
        [sys.executable, "-m", "detector", "bridge", "retry", "-c", str(env.config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=True,
    )
    assert "2 failed detection(s) back in line" in out.stdout
    env.stats(lambda s: s["delivered"] == 3 and s["pending"] == 0)
    assert sorted(env.received(1)) == env.sent["a"]


def test_credentials_in_the_bridge_url_are_refused_without_echoing_them(env: Env) -> None:
    text = env.config.read_text().replace("http://", "http://buser:BridgeP4ss@")
    env.config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(env.config)
    message = str(caught.value)
    assert "bridge.url" in message and "without user:password@" in message
    assert "BridgeP4ss" not in message


def test_api_error_bodies_are_redacted_in_stats(env: Env, bridge: BridgeService) -> None:
    # A server that echoes the request's headers in its error body.
    token = TOKENS["a"]
    env.api.script = [500]
    env.api.echo_headers = True
    env.publish("a")
    stats = env.stats(lambda s: s["last_error"] is not None)
    assert_no_token(json.dumps(stats))
    assert token not in json.dumps(bridge.outbox.items())


def test_ha_online_storm_gives_few_discovery_republishes(
    env: Env, bridge: BridgeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The window is wider than the storm takes to arrive even on a loaded 2-core machine (at
    # 0.5 s a slow storm spanned two windows and gave a third re-publish, rightly).
    window = 3.0
    monkeypatch.setattr(bridge_module, "REPUBLISH_MIN_INTERVAL", window)
    topic = "homeassistant/sensor/smokewatch_bridge_outbox/config"
    env.probe.wait_for(lambda: env.probe.payloads(topic), 10, "discovery")
    before = len(env.probe.payloads(topic))
    for _ in range(300):
        env.probe.publish("homeassistant/status", "online")
    env.publish("a")
    env.stats(lambda s: s["delivered"] == 1)

    def republished() -> int:
        return len(env.probe.payloads(topic)) - before

    # One re-publish at once, one merged for the rest of the storm after the window.
    env.probe.wait_for(lambda: republished() == 2, 15, "the deferred re-publish")
    time.sleep(1.5 * window)  # more than a window: nothing else comes
    assert republished() == 2
