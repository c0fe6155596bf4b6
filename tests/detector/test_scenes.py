"""Scenes on real frames: the default (nearby) alerts on every D-Fire smoke frame, the horizon
scene behaves as Pyronear's pipeline written from DESIGN.md §5 does on the same model output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detector.assembly import build_pipeline, load_model
from detector.config import validate
from detector.demo import synthetic_scene
from detector.frames import letterbox_into, restamped
from detector.model import ModelRuntime
from detector.replay import live_copy
from tests.detector.conftest import SHARED_DATA, shared_file
from tests.detector.pyronear_reference import ReferenceVote, nms_iou0

REPEATS = 6  # one vote window: the same view sent at each of six intervals


def dfire_frames() -> list[tuple[str, bytes, str]]:
    """(name, JPEG, kind) with kind smoke, negative or fire (fire-only labels)."""
    images = SHARED_DATA / "images" / "dfire" / "images"
    labels = SHARED_DATA / "images" / "dfire" / "labels"
    frames = []
    for image in sorted(images.glob("*.jpg")):
        classes = {
            line.split()[0]
            for line in (labels / f"{image.stem}.txt").read_text().split("\n")
            if line.strip()
        }
        kind = "smoke" if "0" in classes else "fire" if classes else "negative"
        frames.append((image.stem, image.read_bytes(), kind))
    return frames


@pytest.fixture(scope="module")
def dfire_model() -> Path:
    return shared_file("models/dfire-yolo11n-int8-640.onnx")


def alerts(model_path: Path, camera: dict[str, object], frames: list[bytes]) -> list[bool]:
    """The alert state after each frame, sent in turn on one camera of the given config."""
    config = validate({"model": {"path": str(model_path)}, "cameras": {"cam": camera}})
    pipeline = build_pipeline(config, load_model(config.model, progress=False))
    return [
        pipeline.process("cam", data, 1000.0 + 30 * i).vote.ongoing for i, data in enumerate(frames)
    ]


def still_view(data: bytes) -> list[bytes]:
    """One view sent by a live camera at each of REPEATS intervals (sensor noise, new bytes)."""
    return [data] + [live_copy(data, seed) for seed in range(1, REPEATS)]


@pytest.mark.realmodel
def test_default_config_alerts_on_the_smoke_sequence_and_not_on_negatives(
    dfire_model: Path,
) -> None:
    frames = dfire_frames()
    kinds = [kind for _, _, kind in frames]
    assert kinds.count("smoke") == 7 and kinds.count("negative") == 2
    # D-Fire's seven consecutive tower frames of one plume, as one camera sends them: the
    # plume moves between them, the nearby guard lets it vote, and the alert comes at the
    # third frame (measured; EVALUATION.md's dfire_real).
    plume = [data for name, data, _ in frames if name.startswith("AoF040")]
    assert len(plume) == 7
    assert alerts(dfire_model, {}, plume)[:3] == [False, False, True]
    # The negatives sent as a live camera watching them never alert.
    for name, data, kind in frames:
        if kind == "negative":
            assert not any(alerts(dfire_model, {}, still_view(data))), name
    # A smoke photo held still (issue 12 sent each photo six times) no longer alerts in the
    # nearby scene: its boxes do not change like smoke's, and the guard drops them.
    config = validate({"model": {"path": str(dfire_model)}, "cameras": {"cam": {}}})
    pipeline = build_pipeline(config, load_model(config.model, progress=False))
    held = [pipeline.process("cam", d, 30.0 * i) for i, d in enumerate(still_view(plume[0]))]
    assert not any(r.vote.ongoing for r in held)
    assert all("still" in {d.reason for d in r.dropped} for r in held[1:])


@pytest.mark.realmodel
def test_an_open_alert_is_held_while_its_smoke_changes_little(dfire_model: Path) -> None:
    """The guard decides whether an alert starts, not when it ends. The demo's generated plume
    (faint, thin, growing slowly) changes its box by 1-2 grey levels per 5 frames in the guard's
    thumbnail, under the 4 it asks of a box that would start an alert: judged as at onset, the
    alert ended at the plume's 10th frame while the plume still grew. Once the vote has
    confirmed smoke, its boxes vote as they are until the vote itself lets go."""
    frames = list(synthetic_scene(clear=2, smoke=12, after=0))
    states = alerts(dfire_model, {}, frames)
    assert True in states
    onset = states.index(True)
    assert all(states[onset:]), states


def reference_boxes(output: np.ndarray, pad_x: int, pad_y: int, imgsz: int) -> list[list[float]]:
    """Pyronear's post-processing from §5: score > 0.05, NMS at IoU 0, its un-padding
    (divide by imgsz - 2 * pad), clip to [0, 1], keep width strictly < 0.4."""
    rows = output.T
    rows = rows[rows[:, 4:].max(axis=1) > 0.05]
    pool = [
        [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, float(score)]
        for cx, cy, w, h, score in zip(*rows[:, :4].T.astype(np.float64), rows[:, 4], strict=True)
    ]
    kept = [pool[i] for i in nms_iou0(pool)[0]][::-1]
    out = []
    for x1, y1, x2, y2, score in kept:
        box = [
            (x1 - pad_x) / (imgsz - 2 * pad_x),
            (y1 - pad_y) / (imgsz - 2 * pad_y),
            (x2 - pad_x) / (imgsz - 2 * pad_x),
            (y2 - pad_y) / (imgsz - 2 * pad_y),
        ]
        box = [min(max(v, 0.0), 1.0) for v in box]
        if box[2] - box[0] < 0.4:
            out.append([*box, score])
    return out


@pytest.mark.realmodel
def test_horizon_scene_behaves_as_pyronear_on_the_same_frames(dfire_model: Path) -> None:
    model = ModelRuntime(dfire_model, smoke_classes=["smoke"])
    config = validate({"cameras": {"cam": {"scene": "horizon"}}})
    tensor = model.new_input()
    alerted = {}
    for name, data, _kind in dfire_frames():
        pipeline = build_pipeline(config, model)
        image, _size = pipeline.decode(data)
        letterbox = letterbox_into(image, tensor, bgr=True)
        output = model.run(tensor)
        # The smoke class row only, as Pyronear's single-class model gives.
        single = output[[0, 1, 2, 3, 4 + model.smoke_class_ids[0]]]
        boxes = reference_boxes(single, letterbox.pad_x, letterbox.pad_y, model.input_w)
        reference = ReferenceVote(6, 0.25)
        # New bytes, the same pixels (no guard in this scene): the model sees what the
        # reference was given.
        ours = [
            pipeline.process("cam", restamped(data, i), 30.0 * i).vote.ongoing
            for i in range(REPEATS)
        ]
        theirs = [reference.update(boxes)[2] for _ in range(REPEATS)]
        assert ours == theirs, name
        alerted[name] = any(ours)
    # The 0.4 cap drops the main plume of 5 of the 7 smoke frames (as issue 12 found with
    # Pyronear's own Predictor); the other two alert.
    assert sorted(name for name, on in alerted.items() if on) == ["AoF04034", "AoF04035"]
