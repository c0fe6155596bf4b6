"""The whole pipeline on the tiny model: vote events, detections for the bridge, bad input."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from detector.contract import DetectionMessage
from detector.errors import FrameError, InferenceError
from detector.masks import Mask
from detector.model import ModelRuntime
from detector.pipeline import Pipeline, ScoringSettings
from tests.detector.tiny_model import live, make_tiny_model, smoke_jpeg

SMOKE, CLEAR = smoke_jpeg(200), smoke_jpeg(0)  # scores 200/255 ≈ 0.784 and 0


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    return ModelRuntime(make_tiny_model(tmp_path_factory.mktemp("m") / "tiny.onnx"))


def pipeline_for(model: ModelRuntime, nb_frames: int = 3) -> Pipeline:
    pipeline = Pipeline(model)
    pipeline.add_camera(ScoringSettings("cam", threshold=0.25, nb_frames=nb_frames))
    return pipeline


def test_alert_starts_and_ends_when_the_vote_says(model: ModelRuntime) -> None:
    pipeline = pipeline_for(model)
    frames = [live(f) for f in (CLEAR, CLEAR, SMOKE, SMOKE, SMOKE, SMOKE, CLEAR, CLEAR)]
    results = [pipeline.process("cam", data, 1000.0 + i) for i, data in enumerate(frames)]
    # nb 3 needs ceil(3/2) = 2 boxes: frame 3 is the first with two (0.784 * 2 / 3 = 0.523).
    # Frame 6 still holds two in its window (frames 4, 5); frame 7 one → the alert ends.
    assert [r.vote.event for r in results] == [None, None, None, "start", None, None, None, "end"]
    assert results[3].score == pytest.approx(0.784 * 2 / 3, abs=0.01)
    # At onset the window (frames 1..3) goes to the bridge, the lead-up included, then one each.
    assert [len(r.detections) for r in results] == [0, 0, 0, 3, 1, 1, 1, 0]
    lead_up = results[3].detections
    assert [d.recorded_at for d in lead_up] == [1001.0, 1002.0, 1003.0]
    np.testing.assert_allclose(lead_up[0].bboxes[:, :4], [[0.375, 0.375, 0.625, 0.625]])
    assert lead_up[0].bboxes[0, 4] == 0.0  # carried location, no confidence of its own
    assert lead_up[2].bboxes[0, 4] == pytest.approx(0.523, abs=0.01)
    assert lead_up[2].jpeg is frames[3]  # the scored bytes are forwarded, not a re-encode
    # Frame 6 has no box of its own: it carries frame 5's boxes at confidence 0.
    assert results[6].detections[0].bboxes[0, 4] == 0.0


def test_the_same_bytes_again_add_no_vote_and_cannot_start_an_alert(model: ModelRuntime) -> None:
    # A frozen camera (or an NVR re-serving a dead camera's last frame) sends one smoke-like
    # picture over and over: one observation, which must not confirm itself.
    pipeline = pipeline_for(model)
    frozen = [pipeline.process("cam", SMOKE, 1000.0 + i) for i in range(8)]
    assert not any(r.vote.ongoing for r in frozen)
    assert [r.voted for r in frozen] == [True] + [False] * 7
    for result in frozen[1:]:
        assert result.repeat and not result.paused and not result.detections
        assert [drop.reason for drop in result.dropped] == ["repeat"]
        assert len(result.raw_boxes) == 0 and result.timings["model"] == 0.0  # not scored
        assert "preprocess" not in result.timings
        assert result.score == frozen[0].score  # the vote as it stands, held
    assert [r.view.state for r in frozen[:4] if r.view] == ["night", "night", "frozen", "frozen"]
    # A new capture of the same smoke is new evidence: the second voted frame confirms it.
    assert pipeline.process("cam", live(SMOKE), 1010.0).vote.event == "start"


def test_frozen_frames_hold_an_open_alert_and_the_window(model: ModelRuntime) -> None:
    pipeline = pipeline_for(model)
    smoke = [live(SMOKE) for _ in range(2)]
    assert [pipeline.process("cam", f).vote.event for f in smoke] == [None, "start"]
    # The camera freezes on its last frame during the alert: the alert stays open (no "end"),
    # nothing new goes to the bridge, and the frozen copies do not push the smoke frames out
    # of the vote's window.
    held = [pipeline.process("cam", smoke[-1]) for _ in range(10)]
    assert all(r.vote.ongoing and r.vote.event is None and not r.detections for r in held)
    assert held[-1].score == pytest.approx(0.784 * 2 / 3, abs=0.01)
    # Live again, and clear: the window still holds the two smoke frames, so the alert ends
    # only when a second clear frame leaves a single smoke box in it (nb 3 needs 2).
    events = [pipeline.process("cam", live(CLEAR)).vote.event for _ in range(2)]
    assert events == [None, "end"]


def test_a_frame_whose_scoring_failed_is_scored_when_it_comes_again(
    model: ModelRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An inference server down: the frame was never voted on, so its next copy (a poller
    # retrying the same snapshot) is new evidence, not a repeat.
    pipeline = pipeline_for(model)
    frame = live(SMOKE)
    pipeline.process("cam", live(SMOKE))
    real_run = model.run

    def down(tensor: np.ndarray) -> np.ndarray:
        raise InferenceError("inference_unavailable", "the server is down")

    monkeypatch.setattr(model, "run", down)
    with pytest.raises(InferenceError):
        pipeline.process("cam", frame)
    monkeypatch.setattr(model, "run", real_run)
    again = pipeline.process("cam", frame)
    assert again.voted and again.vote.event == "start"  # the second voted smoke frame
    assert pipeline.process("cam", frame).repeat  # now it has been voted on


def test_night_is_judged_before_frozen(model: ModelRuntime) -> None:
    # A tower camera pausing at night receives one infrared (grey) frame over and over: it
    # reads frozen from the 3rd copy, and must still not be scored (night: pause).
    pipeline = Pipeline(model)
    pipeline.add_camera(ScoringSettings("tower", nb_frames=3, threshold=0.25, night="pause"))
    results = [pipeline.process("tower", SMOKE, float(i)) for i in range(8)]  # grey: R == G
    assert not any(r.vote.ongoing for r in results)
    assert all(r.paused and [d.reason for d in r.dropped] == ["night"] for r in results)
    assert results[-1].view is not None and results[-1].view.state == "frozen"


def test_masks_by_source(model: ModelRuntime) -> None:
    pipeline = pipeline_for(model, nb_frames=1)
    camera = pipeline.camera("cam")
    camera.set_masks("local", [Mask.rect("centre", 0.3, 0.3, 0.7, 0.7)])
    result = pipeline.process("cam", live(SMOKE))
    assert len(result.raw_boxes) == 1 and len(result.boxes) == 0
    assert not result.vote.ongoing
    # The API's rule keeps the box: IoU of the box (area 0.0625) with a 0.9 x 0.9 mask is
    # 0.0625 / 0.81 ≈ 0.077 <= 0.1.
    camera.set_masks("local", [])
    camera.set_masks("remote", [Mask.rect("api", 0.05, 0.05, 0.95, 0.95, rule="iou")])
    assert pipeline.process("cam", live(SMOKE)).vote.ongoing
    assert [m.name for m in camera.masks()] == ["api"]


def test_bad_frame_changes_nothing(model: ModelRuntime) -> None:
    pipeline = pipeline_for(model)
    pipeline.process("cam", live(SMOKE))
    with pytest.raises(FrameError):
        pipeline.process("cam", SMOKE[:100])
    # Had the bad frame counted, this would be the third frame; it is the second.
    assert pipeline.process("cam", live(SMOKE)).vote.event == "start"


def test_unknown_camera(model: ModelRuntime) -> None:
    with pytest.raises(KeyError):
        pipeline_for(model).process("nope", SMOKE)


def test_reset_and_settings(model: ModelRuntime) -> None:
    pipeline = pipeline_for(model, nb_frames=1)
    assert pipeline.process("cam", live(SMOKE)).vote.event == "start"
    pipeline.camera("cam").reset()
    assert pipeline.process("cam", live(SMOKE)).vote.event == "start"
    # Raising the threshold so that even 0.8 of it (0.792) exceeds the score (0.784) ends
    # the alert on the next frame.
    pipeline.camera("cam").set_threshold(0.99)
    assert pipeline.process("cam", live(SMOKE)).vote.event == "end"
    # Registering a camera again starts it afresh: no vote history, no masks.
    pipeline.camera("cam").set_masks("local", [Mask.rect("all", 0, 0, 1, 1, "inside")])
    fresh = pipeline.add_camera(ScoringSettings("cam", threshold=0.25, nb_frames=1))
    assert fresh.masks() == () and not fresh.ongoing
    assert pipeline.process("cam", live(SMOKE)).vote.event == "start"


def test_detection_json_round_trip() -> None:
    detection = DetectionMessage(
        id="abc",
        camera="cam",
        recorded_at=1700000000.25,
        bboxes=np.array([[0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32),
        jpeg=b"\xff\xd8\xff\xd9",
    )
    data = detection.to_json()
    assert data["recorded_at"] == "2023-11-14T22:13:20.250Z"
    assert data["bboxes"] == [[0.1, 0.2, 0.3, 0.4, 0.5]]
    assert base64.b64decode(data["jpeg"]) == detection.jpeg
    back = DetectionMessage.from_json(data)
    assert back.recorded_at == detection.recorded_at and back.jpeg == detection.jpeg


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": ""}, "id"),
        ({"bboxes": [[0.1, 0.2]]}, "bboxes"),
        ({"recorded_at": "yesterday"}, "ISO 8601"),
        ({"jpeg": "***"}, "base64"),
    ],
)
def test_detection_json_errors(change: dict[str, object], reason: str) -> None:
    data = {
        "id": "a",
        "camera": "c",
        "recorded_at": "2024-01-01T00:00:00Z",
        "bboxes": [],
        "jpeg": "",
    }
    with pytest.raises(ValueError, match=reason):
        DetectionMessage.from_json({**data, **change})
    with pytest.raises(ValueError, match="lacks"):
        DetectionMessage.from_json({"id": "a"})


def test_stage_timings(model: ModelRuntime, tmp_path: Path) -> None:
    result = pipeline_for(model).process("cam", live(SMOKE))
    assert set(result.timings) == {
        "decode",
        "view",
        "preprocess",
        "model",
        "postprocess",
        "masks",
        "vote",
    }
