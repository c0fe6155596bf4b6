"""`smokewatch health`: the detector's own health (available, stats.healthy, faults) read from
the file `smokewatch run --health-file` writes, for a container's HEALTHCHECK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from detector.healthcheck import (
    HealthFileError,
    HealthReport,
    judge,
    read_health_file,
    write_health_file,
)
from tests.detector.broker import Broker
from tests.detector.mqtt_helpers import REPO, Probe, ServiceProcess, write_config
from tests.detector.tiny_model import make_tiny_model

P = "smokewatch"


def report(**changes: object) -> HealthReport:
    fields: dict[str, object] = {
        "written_at": time.time(),
        "pid": os.getpid(),
        "available": "online",
        "broker": "core-mosquitto:1883",
        "healthy": True,
        "faults": {},
        "stats_interval": 10.0,
    }
    fields.update(changes)
    return HealthReport(**fields)  # type: ignore[arg-type]


def test_judge_follows_the_detectors_own_signals() -> None:
    assert judge(report()) == (
        True,
        "online, no faults (broker core-mosquitto:1883, report 0 s old)",
    )
    assert judge(report(available="offline")) == (
        False,
        "offline: not connected to the MQTT broker core-mosquitto:1883",
    )
    healthy, why = judge(report(healthy=False, faults={"inference": "RuntimeError: boom"}))
    assert not healthy and why == "online, faults: inference: RuntimeError: boom"
    healthy, why = judge(report(written_at=time.time() - 31))
    assert not healthy and "no health report for 31 s" in why
    # A longer stats interval allows an older report.
    assert judge(report(written_at=time.time() - 31, stats_interval=30.0))[0]
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    healthy, why = judge(report(pid=int(dead.stdout)))
    assert not healthy and why == f"the detector (pid {int(dead.stdout)}) is not running"


def test_the_file_round_trips_and_bad_files_are_said(tmp_path: Path) -> None:
    path = tmp_path / "run" / "health.json"
    with pytest.raises(HealthFileError, match="has not started"):
        read_health_file(path)
    written = report(healthy=False, faults={"bridge": "outbox: not a database"})
    write_health_file(path, written)
    assert read_health_file(path) == written
    assert [p.name for p in path.parent.iterdir()] == ["health.json"]
    path.write_text("{half")
    with pytest.raises(HealthFileError, match="cannot be read"):
        read_health_file(path)
    path.write_text(json.dumps({"pid": 1}))
    with pytest.raises(HealthFileError, match="is not one"):
        read_health_file(path)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check()` until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def health(path: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "detector", "health", "--file", str(path)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout.strip()


def test_a_running_detector_reports_its_health(tmp_path: Path) -> None:
    """Online and healthy; offline while the broker is down; a fault (a corrupt outbox)
    shows; after SIGTERM the report says the detector is gone."""
    broker = Broker(kind="mosquitto").start()
    probe = Probe(broker.host, broker.port, (f"{P}/#",))
    tiny = make_tiny_model(tmp_path / "tiny.onnx")
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"})
    health_file = tmp_path / "run" / "health.json"
    health_file.parent.mkdir()
    health_file.write_text(json.dumps(report(pid=1).__dict__))  # left by an earlier process
    service = ServiceProcess(config, tmp_path / "s.log", "--health-file", str(health_file))
    try:
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 30, "online")
        code, said = wait_until(lambda: (h := health(health_file))[0] == 0 and h, 20, "healthy")
        assert said.startswith(f"healthy: online, no faults (broker 127.0.0.1:{broker.port}")
        assert read_health_file(health_file).pid == service.pid

        broker.stop()
        code, said = wait_until(lambda: (h := health(health_file))[0] == 1 and h, 20, "offline")
        assert (
            said == f"unhealthy: offline: not connected to the MQTT broker 127.0.0.1:{broker.port}"
        )
        broker.start()
        wait_until(lambda: health(health_file)[0] == 0, 30, "healthy again")
    finally:
        assert service.terminate() == 0
        service.close()
        probe.close()
        broker.close()
    code, said = health(health_file)
    assert code == 1 and said.startswith("unhealthy: the detector (pid")


def test_a_fault_makes_the_detector_unhealthy(broker: Broker, tmp_path: Path) -> None:
    tiny = make_tiny_model(tmp_path / "tiny.onnx")
    outbox = tmp_path / "outbox.sqlite3"
    outbox.write_bytes(b"this is not a database" * 100)
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"})
    with config.open("a") as stream:
        stream.write(
            f"bridge: {{enabled: true, outbox: {outbox}, url: http://127.0.0.1:9,"
            " backoff_initial: 0.05, backoff_max: 0.5, cameras: {a: {token: t, pose_id: 1}}}\n"
        )
    health_file = tmp_path / "health.json"
    service = ServiceProcess(config, tmp_path / "s.log", "--health-file", str(health_file))
    try:
        code, said = wait_until(
            lambda: (h := health(health_file))[1].startswith("unhealthy: online, faults") and h,
            30,
            "the bridge fault",
        )
        assert code == 1 and "bridge: " in said and "outbox" in said
    finally:
        service.close()
