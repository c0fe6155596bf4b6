"""Replay: folders, single images and videos through the live pipeline, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.cli import main
from tests.detector.conftest import SHARED_DATA, shared_file
from tests.detector.tiny_model import live, smoke_jpeg

LEVELS = [0, 0, 200, 200, 200, 200, 0, 0, 0]


def frames_folder(folder: Path, levels: list[int]) -> Path:
    folder.mkdir()
    for index, level in enumerate(levels):
        # Each file a capture of its own (a folder of identical files is a frozen camera).
        (folder / f"frame_{index:03d}.jpg").write_bytes(live(smoke_jpeg(level)))
    return folder


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_replay_alert_frames(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = frames_folder(tmp_path / "frames", LEVELS)
    # A corrupt file in the middle is reported and skipped; the vote does not see it.
    (folder / "frame_003b.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    out, summary, alerts = tmp_path / "r.jsonl", tmp_path / "s.json", tmp_path / "alerts"
    code = main(
        [
            "replay",
            str(folder),
            "--model",
            str(tiny),
            "--nb-frames",
            "3",
            "--interval",
            "30",
            "-o",
            str(out),
            "--summary",
            str(summary),
            "--save-alerts",
            str(alerts),
            "--no-progress",
        ]
    )
    assert code == 0
    rows = read_jsonl(out)
    assert len(rows) == 10
    assert rows[4]["source"] == "frame_003b.jpg" and rows[4]["error"]["reason"] == "truncated"  # type: ignore[index]
    events = [(row["source"], row.get("event")) for row in rows if row.get("event")]
    # nb 3 needs two boxes in the window: frame 3 starts, frame 7 (one box left) ends.
    assert events == [("frame_003.jpg", "start"), ("frame_007.jpg", "end")]
    assert rows[1]["time"] == "2023-11-14T22:13:50.000Z"  # 30 s after the first frame
    report = json.loads(summary.read_text())
    assert report["alerts"] == [
        {
            "start_frame": 3,
            "start_time": "2023-11-14T22:14:50.000Z",
            "end_frame": 8,
            "end_time": "2023-11-14T22:17:20.000Z",
            "max_score": pytest.approx(0.784, abs=0.005),
        }
    ]
    assert report["errors"] == [{"frame": 4, "source": "frame_003b.jpg", "reason": "truncated"}]
    # Annotated images for the frames of the alert (3, 4, 5, 6 in frame order = 4 files).
    images = sorted(alerts.iterdir())
    assert len(images) == 4
    assert (
        cv2.imdecode(np.frombuffer(images[0].read_bytes(), np.uint8), cv2.IMREAD_COLOR) is not None
    )
    printed = capsys.readouterr().out
    assert "Alert 1: started at frame 3, ended at frame 8" in printed
    assert "Unreadable frame 4 (frame_003b.jpg): truncated" in printed


def test_single_image_and_stdout(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "one.jpg"
    image.write_bytes(smoke_jpeg(255))
    assert main(["replay", str(image), "--model", str(tiny), "-o", "-", "--no-progress"]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out.splitlines()[0])
    assert row["raw_boxes"] == [[0.375, 0.375, 0.625, 0.625, pytest.approx(1.0, abs=0.01)]]
    assert "No alert." in captured.err


def test_video_replay(tiny: Path, tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 128))
    for level in [0] * 10 + [220] * 30 + [0] * 20:
        writer.write(np.full((128, 128, 3), level, np.uint8))
    writer.release()
    out = tmp_path / "v.jsonl"
    # One frame per second of video: 6 frames (levels 0, 220, 220, 220, 0, 0).
    main(["replay", str(video), "--model", str(tiny), "--interval", "1", "--nb-frames", "2",
          "-o", str(out), "--no-progress"])  # fmt: skip
    rows = read_jsonl(out)
    assert [row["source"] for row in rows] == [f"clip.avi@{t}.00s" for t in range(6)]
    assert [row["event"] for row in rows] == [None, "start", None, None, None, "end"]


def test_bad_paths(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["replay", str(tmp_path / "absent"), "--model", str(tiny)]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("x")
    assert main(["replay", str(tmp_path / "notes.txt"), "--model", str(tiny)]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["replay", str(empty), "--model", str(tiny)]) == 1
    assert "holds no .jpg" in capsys.readouterr().err
    assert not (tmp_path / "replay.jsonl").exists()  # no output for a source that cannot be read


def test_replay_with_config_camera(tiny: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model: {{path: {tiny}}}\n"
        "cameras:\n"
        "  yard:\n"
        "    nb_frames: 1\n"
        "    masks: [{name: centre, rect: [0.3, 0.3, 0.7, 0.7]}]\n"
    )
    folder = frames_folder(tmp_path / "f", [255, 255])
    out = tmp_path / "r.jsonl"
    assert main(["replay", str(folder), "-c", str(config), "-o", str(out), "--no-progress"]) == 0
    # The camera's mask covers the tiny model's box: boxes found, none kept, no alert.
    rows = read_jsonl(out)
    assert all(row["raw_boxes"] and not row["boxes"] and not row["ongoing"] for row in rows)
    assert main(["replay", str(folder), "-c", str(config), "--camera", "nope"]) == 1


@pytest.mark.realmodel
def test_dfire_frames_with_real_model(tmp_path: Path) -> None:
    model = shared_file("models/dfire-yolo11n-int8-640.onnx")
    images = SHARED_DATA / "images" / "dfire" / "images"
    labels = SHARED_DATA / "images" / "dfire" / "labels"
    out = tmp_path / "dfire.jsonl"
    # Plumes up to half the frame wide: the default scene (nearby) keeps every width.
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{path: {model}}}\ncameras: {{dfire: {{}}}}\n")
    assert main(["replay", str(images), "-c", str(config), "-o", str(out), "--no-progress"]) == 0
    rows = {row["source"]: row for row in read_jsonl(out)}
    assert len(rows) == 10
    for name, row in rows.items():
        lines = (labels / name.replace(".jpg", ".txt")).read_text().split("\n")
        smoke = [[float(v) for v in line.split()[1:]] for line in lines if line.startswith("0 ")]
        found = row["raw_boxes"]
        if not lines[0].strip():  # the two negatives: nothing at all
            assert found == [], name
            continue
        if not smoke:  # fire-only frames: not asserted either way
            continue

        # Every labelled-smoke frame: some detected box overlaps a labelled smoke box.
        def overlaps(box: list[float], label: list[float]) -> bool:
            cx, cy, w, h = label
            return (
                box[0] < cx + w / 2
                and box[2] > cx - w / 2
                and box[1] < cy + h / 2
                and box[3] > cy - h / 2
            )

        assert any(overlaps(box, label) for box in found for label in smoke), name  # type: ignore[union-attr]


def test_replay_explains_every_miss(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = frames_folder(tmp_path / "f", [0, 200, 200, 200])
    config = tmp_path / "c.yaml"
    # The tiny model's box is 0.25 wide: a 0.2 cap drops it on every smoke frame; the other
    # camera masks the centre; the third sees it but the vote (nb 6, needs 3) never confirms.
    config.write_text(
        f"model: {{path: {tiny}}}\n"
        "cameras:\n"
        "  capped: {max_bbox_width: 0.2}\n"
        "  masked: {masks: [{name: centre, rect: [0.3, 0.3, 0.7, 0.7]}]}\n"
        "  short: {nb_frames: 8}\n"
    )
    expected = {
        "capped": ("max_bbox_width", "3 frames had smoke boxes dropped by max_bbox_width 0.2"),
        "masked": ("mask", "3 frames had boxes dropped by mask 'centre'"),
        "short": (
            "vote",
            "3 frames had boxes the temporal vote did not confirm (it needs 4 overlapping ",
        ),
    }
    for camera, (reason, words) in expected.items():
        out = tmp_path / f"{camera}.jsonl"
        argv = ["replay", str(folder), "-c", str(config), "--camera", camera, "-o", str(out)]
        assert main([*argv, "--no-progress"]) == 0
        summary = capsys.readouterr().out
        assert "No alert." in summary and words in summary, summary
        assert f'see "dropped" in {out}, first at frame 1.' in summary
        rows = read_jsonl(out)
        # The clear frame: nothing scored above conf_thresh.
        assert [d["reason"] for d in rows[0]["dropped"]] == ["score"]  # type: ignore[index]
        for row in rows[1:]:
            drops = row["dropped"]
            assert [d["reason"] for d in drops] == [reason], row  # type: ignore[union-attr]
            assert drops[0]["box"] == pytest.approx(
                [0.375, 0.375, 0.625, 0.625, 200 / 255], abs=0.01
            )  # type: ignore[index]
            assert row["raw_boxes"] and row["view"]["state"] in {"night", "frozen"}  # type: ignore[index]
        if reason == "mask":
            assert rows[1]["dropped"][0]["mask"] == "centre"  # type: ignore[index]


def replay_rows(tiny: Path, tmp_path: Path, image: Path, *args: str) -> list[dict[str, object]]:
    out = tmp_path / "r.jsonl"
    argv = ["replay", str(image), "--model", str(tiny), "-o", str(out), "--no-progress"]
    assert main([*argv, *args]) == 0
    return read_jsonl(out)


def test_repeat_sends_a_live_camera_and_frozen_a_stuck_one(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    colour = np.full((240, 320, 3), 220, np.uint8)
    colour[:60] = (250, 200, 120)  # a blue sky over a bright (smoke-scoring) centre
    ok, encoded = cv2.imencode(".jpg", colour)
    assert ok
    image = tmp_path / "photo.jpg"
    image.write_bytes(encoded.tobytes())
    # Live (the default): each copy is a new capture with sensor noise, so each is voted on:
    # on a tower camera (no guard) the vote confirms the box at the third frame.
    rows = replay_rows(tiny, tmp_path, image, "--repeat", "6", "--scene", "horizon")
    assert [row["view"]["state"] for row in rows] == ["clear"] * 6  # type: ignore[index]
    assert [row.get("event") for row in rows][:4] == [None, None, "start", None]
    # In the nearby scene the guard sees a still picture: from the second copy on, its box did
    # not change like smoke's, and a photo held still does not alert.
    rows = replay_rows(tiny, tmp_path, image, "--repeat", "6")
    assert not any(row["ongoing"] for row in rows)
    assert all([d["reason"] for d in row["dropped"]] == ["still"] for row in rows[1:])  # type: ignore[union-attr]
    assert "5 frames had boxes whose content did not change like smoke's" in (
        capsys.readouterr().out
    )
    # Frozen: the identical bytes, as a stuck camera sends them; one observation, no alert.
    rows = replay_rows(tiny, tmp_path, image, "--repeat", "6", "--frozen")
    assert not any(row["ongoing"] for row in rows)
    assert all(row["repeat"] for row in rows[1:])
    printed = capsys.readouterr().out
    assert "5 frames repeated the previous frame's bytes (a frozen camera" in printed


def test_repeated_infrared_photo_is_not_scored_on_a_camera_paused_at_night(
    tiny: Path, tmp_path: Path
) -> None:
    # Issue 24: a grey (infrared) photo repeated read `frozen`, which overrode `night`, so a
    # horizon camera (night: pause) scored it and alerted at frame 6.
    image = tmp_path / "camera.jpg"
    image.write_bytes(smoke_jpeg(220))
    for frozen in ([], ["--frozen"]):
        rows = replay_rows(tiny, tmp_path, image, "--scene", "horizon", "--repeat", "8", *frozen)
        assert all(row["paused"] and not row["ongoing"] for row in rows), rows
        assert all([d["reason"] for d in row["dropped"]] == ["night"] for row in rows)  # type: ignore[union-attr]
    # The live copies stay infrared (the same noise on every channel): night, never frozen;
    # the nearby scene scores them (its guard then finds the picture still).
    rows = replay_rows(tiny, tmp_path, image, "--repeat", "8")
    assert [row["view"]["state"] for row in rows] == ["night"] * 8  # type: ignore[index]
    assert not any(row.get("paused") for row in rows) and rows[0]["raw_boxes"]
