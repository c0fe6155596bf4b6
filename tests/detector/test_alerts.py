"""The per-camera alert state machine (detector/service/alerts.py): pure, no broker, no clock."""

from __future__ import annotations

from typing import Literal

import numpy as np

from detector.pipeline import FrameResult
from detector.service.alerts import AlertChange, CameraAlert, SmokeEvent
from detector.service.false_alarm import FalseAlarm
from detector.vote import VoteResult

BOX = [0.1, 0.2, 0.3, 0.4, 0.5]


def frame(
    ongoing: bool, event: Literal["start", "end"] | None = None, at: float = 1000.0
) -> FrameResult:
    boxes = np.array([BOX] if ongoing else np.zeros((0, 5)), dtype=np.float32)
    vote = VoteResult(score=0.5 if ongoing else 0.0, boxes=boxes, ongoing=ongoing, event=event)
    return FrameResult("cam", at, boxes, boxes, vote, [], {"model": 1.0})


def test_a_real_alert_starts_lasts_and_ends() -> None:
    alert = CameraAlert("m")
    quiet = alert.scored(frame(False))
    assert quiet.smoke is None and quiet.event is None and quiet.attributes is not None
    assert quiet.attributes["alert_started"] is None and quiet.attributes["score"] == 0.0
    start = alert.scored(frame(True, "start", at=1001.0))
    assert (start.smoke, start.event) == (True, SmokeEvent("started", False))
    assert start.attributes is not None
    assert start.attributes["alert_started"] == "1970-01-01T00:16:41.000Z"
    assert start.attributes["score"] == 50.0 and start.attributes["test"] is False
    assert np.allclose(alert.boxes, [[0.1, 0.2, 0.3, 0.4]]) and alert.boxes_started == 1001.0
    going = alert.scored(frame(True, at=1002.0))
    assert going.smoke is None and going.event is None  # no second ON, no second trigger
    assert going.attributes is not None and going.attributes["alert_started"] is not None
    end = alert.scored(frame(False, "end", at=1003.0))
    assert (end.smoke, end.event) == (False, SmokeEvent("ended", False))
    assert end.attributes is not None and end.attributes["alert_started"] is None
    assert not alert.smoke and alert.started is None


def test_a_test_alert_keeps_test_true_until_it_ends() -> None:
    alert = CameraAlert("m")
    alert.scored(frame(False, at=5.0))
    change = alert.test_started(10.0)
    assert change is not None
    assert (change.smoke, change.event) == (True, SmokeEvent("started", True))
    assert change.attributes is not None and change.attributes["test"] is True
    # Frames scored during the test alert keep it a test, and do not end it.
    during = alert.scored(frame(False, at=11.0))
    assert during.smoke is None and during.event is None
    assert during.attributes is not None and during.attributes["test"] is True
    assert during.attributes["alert_started"] == "1970-01-01T00:00:10.000Z"
    # A second test while one is on is refused.
    assert alert.test_started(12.0) is None
    ended = alert.test_ended()
    assert ended is not None and (ended.smoke, ended.event) == (False, SmokeEvent("ended", True))
    assert ended.attributes is not None
    assert ended.attributes["test"] is False and ended.attributes["alert_started"] is None
    assert ended.attributes["frame_time"] == "1970-01-01T00:00:11.000Z"  # the latest real frame
    assert alert.test_ended() is None  # nothing left to end


def test_real_smoke_during_a_test_alert_becomes_a_real_alert() -> None:
    alert = CameraAlert("m")
    assert alert.test_started(10.0) is not None
    real = alert.scored(frame(True, "start", at=20.0))
    # ON again (it already was) with a real "started": the automations see a real alert.
    assert (real.smoke, real.event) == (True, SmokeEvent("started", False))
    assert real.attributes is not None and real.attributes["test"] is False
    assert alert.test_ended() is None  # the test's timer no longer ends anything
    assert alert.smoke and alert.started == 20.0


def test_reset_ends_an_alert_once() -> None:
    alert = CameraAlert("m")
    alert.scored(frame(True, "start"))
    first = alert.reset()
    assert (first.smoke, first.event) == (False, SmokeEvent("ended", False))
    assert first.attributes is not None and first.attributes["alert_started"] is None
    again = alert.reset()
    assert again.smoke is False and again.event is None  # the state again, no second trigger
    fresh = CameraAlert("m").reset()
    assert fresh == AlertChange(False, None, None)  # before any frame: no attributes to show


def test_not_smoke_records_the_false_alarm_and_ends_the_alert() -> None:
    alert = CameraAlert("m")
    alert.scored(frame(True, "start", at=100.0))
    event = FalseAlarm(at=200.0, alert_started=100.0, masks=("not smoke",), boxes=((0, 0, 1, 1),))
    change = alert.dismissed(event)
    assert (change.smoke, change.event) == (False, SmokeEvent("ended", False))
    assert change.attributes is not None
    assert change.attributes["false_alarm"] == event.to_json()
    assert alert.boxes == []
    # The next frame's attributes still name the latest false alarm.
    later = alert.scored(frame(False, at=300.0))
    assert later.attributes is not None and later.attributes["false_alarm"] == event.to_json()
