"""The bridge inside `smokewatch run` with a stalled outbox, on a real broker and processes.

Detections used to be committed to SQLite on the inference thread under the pipeline lock:
another process holding the outbox's lock for 40 s cut scoring to 5-6 frames on every camera
while stats said healthy. Now the detector only publishes detections; the bridge commits them
on its own storage thread and acknowledges each once on disk, so a stalled disk delays the
bridge alone, shows as a fault, and a kill -9 of the whole process loses nothing (the broker
keeps every unacknowledged detection).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.bridge import bridge_service as bridge_module
from detector.bridge import intake as intake_module
from detector.bridge.bridge_service import BridgeService
from detector.config import load_config
from tests.detector.broker import Broker
from tests.detector.fake_pyronear import FakePyronear, write_bridge_section
from tests.detector.mqtt_helpers import Probe, ServiceProcess, score_frame, write_config
from tests.detector.tiny_model import smoke_jpeg

P = "smokewatch"
SMOKE = smoke_jpeg(200)


@pytest.fixture
def probe(broker: Broker) -> Iterator[Probe]:
    p = Probe(broker.host, broker.port, ("smokewatch/#",))
    try:
        yield p
    finally:
        p.close()


def hold_lock(outbox: Path) -> sqlite3.Connection:
    """Another process's write lock on the outbox, as the attack held it for 40 s."""
    db = sqlite3.connect(str(outbox), isolation_level=None, timeout=30)
    db.execute("BEGIN EXCLUSIVE")
    return db


def published(probe: Probe) -> set[str]:
    """The recorded_at of every detection the detector published."""
    return {json.loads(p)["recorded_at"] for p in probe.payloads(f"{P}/a/detection")}


def delivered(api: FakePyronear) -> set[str]:
    return {d.recorded_at or "" for d in api.detections}


def test_a_stalled_outbox_does_not_slow_detection_and_kill_9_loses_nothing(
    broker: Broker, probe: Probe, tiny: Path, tmp_path: Path, api: FakePyronear
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    config = write_bridge_section(
        write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"}), api, outbox
    )
    service = ServiceProcess(config, tmp_path / "s1.log")
    locker: sqlite3.Connection | None = None
    try:
        probe.wait_for(lambda: probe.last(f"{P}/bridge/available") == b"online", 30, "bridge")
        locker = hold_lock(outbox)
        # Every frame is scored while another process holds the outbox's lock: the detector
        # does not wait on the bridge's disk.
        scored = [score_frame(probe, "a", SMOKE) for _ in range(8)]
        assert scored[2]["alert_started"] is not None
        sent = probe.wait_for(lambda: len(published(probe)) >= 8 and published(probe), 10)
        assert not delivered(api)  # nothing could be stored, so nothing went out yet
        service.kill()  # kill -9 while the detections wait for the disk
    finally:
        service.close()
        if locker is not None:
            locker.execute("ROLLBACK")
            locker.close()
    again = ServiceProcess(config, tmp_path / "s2.log")
    try:
        # The broker kept every unacknowledged detection for the bridge's session.
        probe.wait_for(lambda: delivered(api) >= sent, 30, "every detection delivered")
    finally:
        again.close()


@pytest.fixture
def env(broker: Broker, tmp_path: Path, api: FakePyronear) -> Path:
    config = write_config(tmp_path / "c.yaml", broker.port, tmp_path / "none.onnx", {"a": "{}"})
    return write_bridge_section(config, api, tmp_path / "outbox.sqlite3")


def detection(recorded_at: str) -> str:
    import base64
    import uuid

    return json.dumps(
        {
            "id": uuid.uuid4().hex,
            "camera": "a",
            "recorded_at": recorded_at,
            "bboxes": [[0.1, 0.1, 0.2, 0.2, 0.5]],
            "jpeg": base64.b64encode(SMOKE).decode(),
        }
    )


def test_a_stalled_outbox_is_a_fault_then_it_clears(
    env: Path, broker: Broker, probe: Probe, api: FakePyronear, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake_module, "STALL_AFTER", 0.3)
    monkeypatch.setattr(bridge_module, "STALL_AFTER", 0.3)
    bridge = BridgeService(load_config(env))
    bridge.start()
    locker: sqlite3.Connection | None = None
    try:
        probe.wait_for(lambda: probe.last(f"{P}/bridge/available") == b"online", 15)
        locker = hold_lock(bridge.outbox.path)
        probe.publish(f"{P}/a/detection", detection("2026-01-01T00:00:00.000Z"))

        def stats(check: Any, timeout: float = 20) -> Any:
            def newest() -> dict[str, Any] | None:
                raw = probe.last(f"{P}/bridge/stats")
                data = json.loads(raw) if raw else None
                return data if data and check(data) else None

            return probe.wait_for(newest, timeout, "bridge stats")

        stalled = stats(lambda s: "outbox" in s["faults"])
        assert "has not returned" in stalled["faults"]["outbox"] and not stalled["healthy"]
        assert stalled["waiting_for_disk"] == 1
        locker.execute("ROLLBACK")
        locker.close()
        locker = None
        # On a loaded machine the delivery loop may have met the lock too (past SQLite's 10 s
        # busy timeout): it tries again on its backoff, so the fault can take a while to clear.
        stats(lambda s: s["healthy"] and s["delivered"] == 1, 45)
        assert delivered(api) == {"2026-01-01T00:00:00.000Z"}
    finally:
        if locker is not None:
            locker.execute("ROLLBACK")
            locker.close()
        bridge.stop()
