"""A camera's alert, as Home Assistant sees it: a pure state machine, no I/O and no clock.

The temporal vote (detector/vote.py) decides whether smoke is confirmed; this machine is the one
owner of what follows from it on the camera: the smoke state (ON during a real alert and during a
test alert), when the alert started, whether it is a test, the boxes a "Not smoke" would mask, and
the one attributes payload of `<cam>/smoke/attributes`. Each input returns an `AlertChange` that
says exactly what to publish; the publisher (publisher.py) turns it into messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detector.contract import iso_utc
from detector.pipeline import FrameResult
from detector.service.false_alarm import FalseAlarm

# The drop reasons listed in the attributes (the rest are only counted by replay).
MAX_DROPS_SHOWN = 10
# Where a test alert draws its one box (x1, y1, x2, y2, confidence), relative to the frame.
TEST_BOX = (0.4, 0.4, 0.6, 0.6, 1.0)


@dataclass(frozen=True)
class SmokeEvent:
    """An alert started or ended (`<cam>/smoke/event`, HA's device triggers and event entity)."""

    kind: str  # "started" or "ended"
    test: bool

    def to_json(self) -> dict[str, Any]:
        """The event's JSON payload."""
        return {"event_type": self.kind, "test": self.test}


@dataclass(frozen=True)
class AlertChange:
    """What an input changed: each field is None when that part is unchanged.

    `smoke` is the retained smoke state to publish (it may repeat the current one, as when a
    real alert takes over a test alert), `event` the start / end event, `attributes` the new
    attributes payload, `score` the score sensor's new value (a reset or "Not smoke" restarts
    the vote: the score and the boxes of the dismissed alert clear at once, not at the next
    frame).
    """

    smoke: bool | None = None
    event: SmokeEvent | None = None
    attributes: dict[str, Any] | None = None
    score: float | None = None  # the score sensor's new value, when an input set it


@dataclass
class CameraAlert:
    """The alert state of one camera; every method is a transition."""

    model: str
    smoke: bool = False
    testing: bool = False
    started: float | None = None  # epoch seconds of the alert's (or test alert's) start
    score: float | None = None  # the latest frame's vote score, in % (one decimal)
    scored_at: float | None = None  # the latest scored frame's capture time
    # The attributes of the latest scored frame: what a test alert's end shows again.
    frame_attributes: dict[str, Any] | None = None
    # What `<cam>/smoke/attributes` holds now (a test alert's own, or the latest frame's).
    attributes: dict[str, Any] | None = None
    # The boxes of the latest frame of the latest real alert: what "Not smoke" masks.
    boxes: list[list[float]] = field(default_factory=list)
    boxes_started: float | None = None
    false_alarm: FalseAlarm | None = None  # the latest "Not smoke" on this camera

    def scored(self, result: FrameResult) -> AlertChange:
        """A frame was scored and voted on."""
        vote = result.vote
        self.score = round(vote.score * 100, 1)
        self.scored_at = result.frame_time
        # Smoke confirmed during a test alert is a real alert: it starts as one.
        real_over_test = vote.event == "start" and self.testing
        if vote.event == "start":
            self.started = result.frame_time
            self.testing = False
        elif not vote.ongoing and not self.testing:  # a test alert keeps its start time
            self.started = None
        attributes = {
            "score": self.score,
            "boxes": [[round(float(v), 4) for v in box] for box in vote.boxes],
            "model": self.model,
            "frame_time": iso_utc(result.frame_time),
            "alert_started": None if self.started is None else iso_utc(self.started),
            "test": self.testing,  # frames scored during a test alert keep it a test
            "view": None if result.view is None else result.view.state,
            "paused": result.paused,
            # Why boxes did not become alert boxes (README, "Why no alert"); capped so the
            # attributes stay small whatever the model outputs.
            "dropped": [drop.to_json() for drop in result.dropped[:MAX_DROPS_SHOWN]],
            "false_alarm": None if self.false_alarm is None else self.false_alarm.to_json(),
        }
        self.frame_attributes = self.attributes = attributes
        if vote.ongoing and len(vote.boxes):
            self.boxes = [[float(v) for v in box[:4]] for box in vote.boxes]
            self.boxes_started = self.started
        if (vote.ongoing and not self.smoke) or real_over_test:
            self.smoke = True
            return AlertChange(True, SmokeEvent("started", False), attributes)
        if not vote.ongoing and self.smoke and not self.testing:
            self.smoke = False
            return AlertChange(False, SmokeEvent("ended", False), attributes)
        return AlertChange(attributes=attributes)

    def test_started(self, now: float) -> AlertChange | None:
        """A test alert starts now; None (refused) while an alert is on."""
        if self.smoke:
            return None
        self.smoke = self.testing = True
        self.started = now
        self.attributes = {
            "score": 100.0,
            "boxes": [list(TEST_BOX)],
            "model": self.model,
            "frame_time": iso_utc(now),
            "alert_started": iso_utc(now),
            "test": True,
        }
        return AlertChange(True, SmokeEvent("started", True), self.attributes)

    def test_ended(self) -> AlertChange | None:
        """The test alert's time is up; None when a reset or a real alert took over."""
        if not self.testing:
            return None
        self.smoke = self.testing = False
        self.started = None
        return AlertChange(
            False, SmokeEvent("ended", True), self._closed_attributes(vote_restarted=False)
        )

    def reset(self) -> AlertChange:
        """The alert is acknowledged and the vote restarts: smoke goes OFF, and the score and
        boxes shown are those of the restarted vote (none yet), not the closed alert's."""
        was_on, was_test = self.smoke, self.testing
        self.smoke = self.testing = False
        self.started = None
        self.score = 0.0 if self.score is not None else None
        return AlertChange(
            False,
            SmokeEvent("ended", was_test) if was_on else None,
            self._closed_attributes(vote_restarted=True),
            self.score,
        )

    def dismissed(self, event: FalseAlarm) -> AlertChange:
        """ "Not smoke": the alert's boxes became masks (`event`); the alert ends as a reset."""
        self.false_alarm = event
        self.boxes = []
        if self.frame_attributes is not None:
            self.frame_attributes = {**self.frame_attributes, "false_alarm": event.to_json()}
        return self.reset()

    def _closed_attributes(self, *, vote_restarted: bool) -> dict[str, Any] | None:
        """The latest frame's attributes, with no alert open (None before any frame); with
        the vote restarted, no score and no boxes either."""
        if self.frame_attributes is None:
            return None
        closed: dict[str, Any] = {"alert_started": None, "test": False}
        if vote_restarted:
            closed.update(score=0.0, boxes=[])
        self.frame_attributes = {**self.frame_attributes, **closed}
        self.attributes = self.frame_attributes
        return self.attributes


def test_alert_boxes() -> np.ndarray:
    """The test alert's box, as the annotator takes it."""
    return np.array([TEST_BOX], dtype=np.float32)
