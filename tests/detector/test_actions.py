"""What each command does (detector/service/actions.py), on a real pipeline and a fake bus."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from detector.assembly import build_pipeline, load_model
from detector.config import load_config
from detector.masks import masks_from_json, masks_to_json
from detector.service.actions import CameraActions
from detector.service.cameras import CameraWatch
from detector.service.command_table import CommandRefused
from detector.service.publisher import Publisher
from detector.service.refusals import RefusalLog
from detector.service.scheduler import Scheduler
from tests.detector.fake_comms import FakeComms
from tests.detector.tiny_model import live, make_tiny_model, smoke_jpeg

SMOKE = smoke_jpeg(200)


class Rig:
    """CameraActions of camera `a`, with what they act on."""

    def __init__(self, folder: Path) -> None:
        path = folder / "c.yaml"
        path.write_text(
            f"model: {{path: {make_tiny_model(folder / 'tiny.onnx')}}}\n"
            "detection: {nb_frames: 3}\ncameras: {a: {}}\n"
        )
        config = load_config(path)
        self.pipeline = build_pipeline(config, load_model(config.model, progress=False))
        self.watch = CameraWatch.of(config.cameras["a"], "tiny")
        self.comms = FakeComms()
        self.refusals = RefusalLog(["a"])
        self.queued: list[Callable[[], None]] = []
        self.actions = CameraActions(
            {"a": self.watch},
            self.pipeline,
            threading.Lock(),
            Publisher(self.comms, config.mqtt),
            self.refusals,
            Scheduler(),
            self.queued.append,
        )

    def alert(self) -> None:
        """Three smoke frames: a real alert on camera a."""
        for _ in range(3):
            result = self.pipeline.process("a", live(SMOKE), time.time())
            self.watch.alert.scored(result)
        assert self.watch.alert.smoke


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_zones_replace_the_local_masks_and_are_published(rig: Rig) -> None:
    zones = [{"name": "chimney", "rect": [0.6, 0.1, 0.9, 0.4], "rule": "iou"}]
    rig.actions.set_masks("a", masks_from_json(zones), "command")
    assert [m.name for m in rig.pipeline.camera("a").masks("local")] == ["chimney"]
    state = rig.comms.last("a/masks/state")
    assert state is not None
    assert json.loads(state.payload) == masks_to_json(rig.pipeline.camera("a").masks("local"))
    attributes = rig.comms.last("a/masks/attributes")
    assert attributes is not None and json.loads(attributes.payload)["local"][0]["name"] == (
        "chimney"
    )


def test_remote_masks_of_an_older_bridge_are_refused_with_a_hint(rig: Rig) -> None:
    rig.actions.remote_masks("a", b'["(0.1,0.1,0.3,0.3)"]')
    assert rig.refusals.camera_counts("a") == {"bad_remote_masks": 1}
    assert rig.pipeline.camera("a").masks("remote") == ()
    rig.actions.remote_masks("a", b'[{"name": "api 5", "rect": [0.1, 0.1, 0.3, 0.3]}]')
    assert [m.name for m in rig.pipeline.camera("a").masks("remote")] == ["api 5"]


def test_not_smoke_needs_an_alert_and_masks_its_boxes(rig: Rig) -> None:
    with pytest.raises(CommandRefused, match="no alert"):
        rig.actions.false_alarm("a")
    rig.alert()
    rig.actions.false_alarm("a")
    assert not rig.watch.alert.smoke and not rig.pipeline.camera("a").ongoing
    (mask,) = rig.pipeline.camera("a").masks("local")
    assert mask.rule == "iou" and mask.name.startswith("not smoke")


def test_a_test_alert_is_refused_during_a_real_one_and_ends_through_the_control_thread(
    rig: Rig,
) -> None:
    rig.actions.test_alert_seconds = 0.01
    rig.actions.test_alert("a")
    assert rig.watch.alert.testing
    deadline = time.monotonic() + 10
    while not rig.queued:  # the timer hands the end to the control thread
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rig.queued.pop()()
    assert not rig.watch.alert.smoke
    rig.alert()
    with pytest.raises(CommandRefused, match="while an alert is on"):
        rig.actions.test_alert("a")


def test_reset_restarts_the_vote(rig: Rig) -> None:
    rig.alert()
    rig.actions.reset("a")
    assert not rig.watch.alert.smoke and not rig.pipeline.camera("a").ongoing
    score = rig.comms.last("a/score")
    assert score is not None and score.payload == b"0.0"
