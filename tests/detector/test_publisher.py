"""The publisher (detector/service/publisher.py), alone on a fake bus: every topic it writes,
with its retain flag and QoS, and the detections a full client queue refused."""

from __future__ import annotations

import json

from detector.config import validate
from detector.contract import CAMERA_STATE_LEAVES
from detector.service.alerts import AlertChange, SmokeEvent
from detector.service.publisher import UNSENT_DETECTIONS_LIMIT, Publisher
from tests.detector.fake_comms import FakeComms


def publisher() -> tuple[Publisher, FakeComms]:
    comms = FakeComms()
    return Publisher(comms, validate({"cameras": {"a": {}}}).mqtt), comms


def test_an_alert_change_goes_out_score_attributes_state_then_event() -> None:
    publish, comms = publisher()
    change = AlertChange(True, SmokeEvent("started", False), {"score": 52.3}, 52.3)
    publish.alert("a", change)
    assert [(m.topic, m.retain, m.qos) for m in comms.messages] == [
        ("smokewatch/a/score", True, 0),
        ("smokewatch/a/smoke/attributes", True, 0),
        ("smokewatch/a/smoke", True, 1),
        ("smokewatch/a/smoke/event", False, 1),
    ]
    assert json.loads(comms.messages[-1].payload) == {"event_type": "started", "test": False}


def test_an_answer_is_qos_1_and_never_retained() -> None:
    publish, comms = publisher()
    publish.command_result("a", "reset", "r1", False, "no alert")
    (message,) = comms.messages
    assert (message.topic, message.retain, message.qos) == ("smokewatch/a/reset/result", False, 1)
    assert json.loads(message.payload) == {"request_id": "r1", "ok": False, "reason": "no alert"}


def test_refused_detections_are_kept_in_order_and_bounded() -> None:
    publish, comms = publisher()
    comms.accept = False
    for index in range(UNSENT_DETECTIONS_LIMIT + 2):
        assert not publish.detection("a", {"id": str(index)})
    assert publish.detections_waiting == UNSENT_DETECTIONS_LIMIT
    assert publish.detections_dropped == 2  # the two oldest
    comms.accept = True
    publish.send_unsent()
    sent = [json.loads(m.payload)["id"] for m in comms.on("a/detection")]
    assert sent == [str(i) for i in range(2, UNSENT_DETECTIONS_LIMIT + 2)]
    assert publish.detection("a", {"id": "now"})  # nothing waits: out at once


def test_removing_a_camera_empties_its_discovery_and_every_retained_leaf() -> None:
    publish, comms = publisher()
    publish.remove_camera("a", [("sensor", "smokewatch_a_score")])
    topics = {m.topic for m in comms.messages if m.payload == b"" and m.retain}
    assert "homeassistant/sensor/smokewatch_a_score/config" in topics
    assert {f"smokewatch/a/{leaf}" for leaf in CAMERA_STATE_LEAVES} <= topics
