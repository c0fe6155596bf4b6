"""Commands left retained on the broker, against a real Mosquitto and `smokewatch run`.

A retained reset closed a real alert at every reconnect, a retained "Not smoke" turned a real
plume into a mask, a retained test fired a test alert at every start: a command acts only when
it is sent; one the broker kept is refused (counted, logged once), at the start and at every
reconnect.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.detector.broker import Broker
from tests.detector.mqtt_helpers import (
    Probe,
    ServiceProcess,
    newest_stats,
    score_frame,
    write_config,
)
from tests.detector.tiny_model import smoke_jpeg

P = "smokewatch"
SMOKE = smoke_jpeg(200)
RETAINED = {
    "a/reset/set": "PRESS",
    "a/false_alarm/set": "PRESS",
    "a/test/set": "PRESS",
    "a/enabled/set": "OFF",
    "a/threshold/set": "0.9",
}


def test_commands_left_retained_never_act(broker: Broker, tiny: Path, tmp_path: Path) -> None:
    probe = Probe(broker.host, broker.port)
    for leaf, payload in RETAINED.items():
        probe.publish(f"{P}/{leaf}", payload, retain=True)
    service = ServiceProcess(
        write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"}), tmp_path / "s.log"
    )
    try:
        probe.wait_for(lambda: probe.last(f"{P}/a/threshold/state"), 30, "started")
        newest_stats(probe, lambda s: s["rejected"].get("retained_command", 0) >= len(RETAINED))
        # At the start: no test alert, the settings are the file's.
        assert probe.payloads(f"{P}/a/smoke/event") == []
        assert probe.last(f"{P}/a/enabled/state") == b"ON"
        assert probe.last(f"{P}/a/threshold/state") == b"0.25"
        scored = [score_frame(probe, "a", SMOKE) for _ in range(3)]
        assert scored[-1]["alert_started"] is not None
        # A reconnect during the alert: the broker hands the retained commands over again.
        broker.restart()
        newest_stats(probe, lambda s: s["rejected"].get("retained_command", 0) >= 2 * len(RETAINED))
        attributes = score_frame(probe, "a", SMOKE)
        assert attributes["alert_started"] == scored[-1]["alert_started"]  # still the same alert
        assert probe.last(f"{P}/a/smoke") == b"ON"
        events = [json.loads(p)["event_type"] for p in probe.payloads(f"{P}/a/smoke/event")]
        assert events == ["started"]  # never ended, never a test
        assert json.loads(probe.last(f"{P}/a/masks/state") or b"[]") == []  # no "Not smoke"
        log = service.log()
        for leaf in RETAINED:
            command = leaf.split("/")[1]
            assert log.count(f"Refused input for a (retained_command): {command}/set") == 1
        # Sent now, the same command acts.
        probe.publish(f"{P}/a/reset/set", "PRESS")
        probe.wait_for(lambda: probe.last(f"{P}/a/smoke") == b"OFF", 10, "reset")
    finally:
        service.close()
        probe.close()
