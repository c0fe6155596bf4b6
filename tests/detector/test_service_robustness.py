"""Single inputs and faults that used to silence `smokewatch run`, on a real broker.

Each test here failed on the code before the fix: a retained frame with a NaN `ts` killed the
detector at every start; a retained malformed masks state kept discovery from being
published; a re-publish storm dropped QoS 1 detections; a corrupt outbox kept `run` from
starting; a camera whose every frame is refused looked `online`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.detector.broker import Broker
from tests.detector.fake_pyronear import FakePyronear, write_bridge_section
from tests.detector.mqtt_helpers import (
    Probe,
    ServiceProcess,
    SmokewatchProcess,
    newest_stats,
    score_frame,
    write_config,
)
from tests.detector.tiny_model import smoke_jpeg

P = "smokewatch"
SMOKE, CLEAR = smoke_jpeg(200), smoke_jpeg(0)
B64 = base64.b64encode(SMOKE).decode()


@pytest.fixture
def probe(broker: Broker) -> Iterator[Probe]:
    p = Probe(broker.host, broker.port, ("smokewatch/#", "homeassistant/#"))
    try:
        yield p
    finally:
        p.close()


def test_retained_impossible_timestamps_do_not_stop_the_detector(
    broker: Broker, probe: Probe, tiny: Path, tmp_path: Path
) -> None:
    # Retained: each of them used to kill the detector again at every restart.
    refused = {
        "nan": f'{{"image": "{B64}", "ts": NaN}}',
        "inf": f'{{"image": "{B64}", "ts": Infinity}}',
        "huge": f'{{"image": "{B64}", "ts": 1{"0" * 400}}}',
        "deep": '{"image": ' + "[" * 100_000 + "]" * 100_000 + "}",
    }
    # A number but no plausible time (killed it too): scored at its arrival time instead.
    past = f'{{"image": "{B64}", "ts": -1e11}}'
    for camera, payload in [*refused.items(), ("past", past)]:
        probe.publish(f"{P}/{camera}/image", payload, retain=True)
    cameras = {camera: "{}" for camera in [*refused, "past", "good"]}
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, cameras)
    service = ServiceProcess(config, tmp_path / "s.log")
    try:
        data = newest_stats(
            probe,
            lambda s: (
                s["rejected"].get("bad_envelope", 0) >= len(refused)
                and s["cameras"]["past"]["scored"] == 1
            ),
        )
        assert data["rejected"]["bad_ts"] == 1
        for _ in range(3):  # more stats publishes: the ones that used to raise
            assert score_frame(probe, "good", CLEAR)["score"] == 0.0
        data = newest_stats(probe, lambda s: s["cameras"]["good"]["scored"] >= 3)
        assert data["healthy"] is True and data["rejected"].get("internal", 0) == 0
        assert service.process.poll() is None
        assert "Traceback" not in service.log()
        # Every frame of those cameras is refused: they are not shown as working.
        probe.wait_for(lambda: probe.last(f"{P}/nan/status") == b"refused", 10, "nan refused")
    finally:
        service.close()


def test_malformed_retained_states_and_masks_commands(
    broker: Broker, probe: Probe, tiny: Path, tmp_path: Path
) -> None:
    probe.publish(f"{P}/a/masks/state", "[" * 50_000 + "]" * 50_000, retain=True)
    polygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
    # A 401-digit coordinate: float() of it overflowed deep inside the masks code.
    huge = json.dumps([{"name": "z", "polygon": polygon}]).replace("0.9]]", "1" + "0" * 400 + "]]")
    probe.publish(f"{P}/b/masks/state", huge, retain=True)
    probe.publish(f"{P}/b/threshold/state", "NaN", retain=True)
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}", "b": "{}"})
    service = ServiceProcess(config, tmp_path / "s.log")
    try:
        # Discovery, info and states go out although the retained states were garbage.
        probe.wait_for(lambda: probe.last(f"{P}/info"), 20, "info")
        probe.wait_for(
            lambda: probe.last("homeassistant/binary_sensor/smokewatch_a_smoke/config"), 10
        )
        probe.wait_for(lambda: probe.last(f"{P}/a/masks/state") == b"[]", 10, "masks state")
        probe.wait_for(lambda: probe.last(f"{P}/b/threshold/state") == b"0.25", 10, "threshold")
        # Malformed masks commands: refused and counted, no traceback.
        big = json.dumps([{"name": "m", "polygon": [[0.5, 0.5]] * 200_000}])
        refused = 3
        for payload in (huge, "[" * 10_000, big, '[{"name": "x", "rect": [0, 0, NaN, 1]}]'):
            # One at a time: a newer masks command replaces one still waiting to run.
            probe.publish(f"{P}/a/masks/set", payload)
            refused += 1
            data = newest_stats(
                probe, lambda s, n=refused: s["rejected"].get("bad_command", 0) >= n
            )
        assert data["rejected"]["bad_command"] == 7  # 3 restored states + 4 commands
        assert data["healthy"] is True
        log = service.log()
        assert "Traceback" not in log and "Control task failed" not in log
        assert score_frame(probe, "a", CLEAR)["score"] == 0.0
    finally:
        service.close()


def test_republish_storm_during_an_alert_loses_no_detection(
    broker: Broker, probe: Probe, tiny: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}", "b": "{}", "c": "{}"})
    service = ServiceProcess(config, tmp_path / "s.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/c/masks/state"), 30, "started")
        for _ in range(1000):
            probe.publish("homeassistant/status", "online")
        scored = [score_frame(probe, "a", SMOKE) for _ in range(12)]
        assert scored[-1]["alert_started"] is not None
        # Every frame of this all-smoke sequence is a detection: the lead-up at the onset,
        # then one per frame while the alert lasts.
        detections = probe.wait_count(f"{P}/a/detection", len(scored), timeout=30)
        time.sleep(1.0)
        detections = probe.payloads(f"{P}/a/detection")
        ids = [json.loads(d)["id"] for d in detections]
        assert len(ids) == len(set(ids)) == len(scored)
        assert "Message queue full" not in service.log()
    finally:
        service.close()


def test_a_corrupt_outbox_does_not_stop_detection(
    broker: Broker, probe: Probe, tiny: Path, tmp_path: Path, api: FakePyronear
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    outbox.write_bytes(b"this is not a database" * 100)
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"})
    write_bridge_section(config, api, outbox)
    service = ServiceProcess(config, tmp_path / "s.log")
    try:
        data = newest_stats(probe, lambda s: "bridge" in s.get("faults", {}), timeout=30)
        assert data["healthy"] is False and "outbox" in data["faults"]["bridge"]
        scored = [score_frame(probe, "a", SMOKE) for _ in range(3)]
        assert scored[-1]["alert_started"] is not None  # detection goes on
        # The outbox becomes usable: the bridge starts by itself and the detections that
        # waited in memory are delivered.
        outbox.unlink()
        newest_stats(probe, lambda s: "bridge" not in s.get("faults", {}), timeout=90)
        probe.wait_for(lambda: len(api.detections) >= 3, 30, "detections delivered")
        assert service.process.poll() is None
    finally:
        service.close()


def test_the_hosted_bridge_delivers_each_detection_once_after_a_standalone_one_ran(
    broker: Broker, probe: Probe, tiny: Path, tmp_path: Path, api: FakePyronear
) -> None:
    """The hosted bridge once resumed the session a standalone bridge had left on the broker
    (same client id) and received every detection twice (273 "received again"), while that
    session kept queueing them. Now both take detections over the broker on that one session:
    each detection is stored and delivered once."""
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"})
    write_bridge_section(config, api, tmp_path / "outbox.sqlite3")
    standalone = SmokewatchProcess(["bridge", "-c", str(config)], tmp_path / "bridge.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/bridge/available") == b"online", 30, "bridge")
    finally:
        assert standalone.terminate() == 0
        standalone.close()
    probe.wait_for(lambda: probe.last(f"{P}/bridge/available") == b"offline", 10, "stopped")
    service = ServiceProcess(config, tmp_path / "s.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/bridge/available") == b"online", 30, "bridge")
        scored = [score_frame(probe, "a", SMOKE) for _ in range(4)]
        assert scored[-1]["alert_started"] is not None
        probe.wait_for(lambda: len(api.detections) == 4, 30, "4 detections delivered")

        def bridge_stats() -> dict[str, Any] | None:
            raw = probe.last(f"{P}/bridge/stats")
            data = json.loads(raw) if raw else None
            return data if data and data["delivered"] == 4 else None

        data = probe.wait_for(bridge_stats, 10, "bridge stats")
        assert data["duplicates"] == 0 and data["healthy"] is True
        assert len(api.detections) == 4
        assert "received again" not in service.log()
    finally:
        service.close()
