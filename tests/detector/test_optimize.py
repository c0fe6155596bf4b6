"""`smokewatch optimize`: real onnxruntime quantisation of a generated convolutional detector.

The generated model is YOLO-shaped: a box branch whose coordinates are in input pixels and a
score branch whose score is the grey level of the frame's centre, computed by a convolution
(so int8 really changes its arithmetic), both concatenated into [1, 5, 1]. Grey frames then
choose smoke or no smoke, and calibration frames choose the ranges int8 can represent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from detector.cli import main
from detector.config import FalseAlarmsConfig
from detector.eval_dataset import load_dataset
from detector.model import ModelRuntime
from detector.optimize import QUANTIZATION_KEY, float_nodes, name_nodes, quantize
from detector.optimize_proof import _episodes
from detector.optimize_split import (
    held_back_only,
    sequences_held_back,
    split_frames,
    split_sequences,
)
from detector.pipeline import Pipeline
from detector.replay import iter_frames
from detector.service.false_alarm import FalseAlarm
from detector.service.false_alarm_store import FalseAlarmStore
from detector.supervise import Health
from tests.detector.conftest import shared_file
from tests.detector.tiny_model import live, save_smoke_model, smoke_jpeg

SIZE = 64


def make_conv_model(path: Path, size: int = SIZE, *, flat_branch: bool = False) -> Path:
    """Write the generated detector: score = mean grey of the centre square, via a Conv.

    With `flat_branch`, a Conv whose output barely varies (1 + 1e-7 × grey: a few float32
    steps) is added to the score times zero, as a near-constant tensor of a real network.
    """
    lo, hi = size // 2 - size // 8, size // 2 + size // 8
    consts = [
        helper.make_tensor("starts", TensorProto.INT64, [2], [lo, lo]),
        helper.make_tensor("ends", TensorProto.INT64, [2], [hi, hi]),
        helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]),
        helper.make_tensor("grey_w", TensorProto.FLOAT, [1, 3, 1, 1], [1 / 3] * 3),
        helper.make_tensor("grey_b", TensorProto.FLOAT, [1], [0.0]),
        # The box branch: a Conv whose output is its bias, the box in letterbox pixels.
        helper.make_tensor("box_w", TensorProto.FLOAT, [4, 3, 1, 1], [0.0] * 12),
        helper.make_tensor(
            "box_b", TensorProto.FLOAT, [4], [size / 2, size / 2, size / 4, size / 4]
        ),
        helper.make_tensor("shape_score", TensorProto.INT64, [3], [1, 1, 1]),
        helper.make_tensor("shape_box", TensorProto.INT64, [3], [1, 4, 1]),
    ]
    nodes = [
        helper.make_node("Slice", ["images", "starts", "ends", "axes"], ["centre"]),
        helper.make_node("Conv", ["centre", "grey_w", "grey_b"], ["grey"], name="grey_conv"),
        helper.make_node("GlobalAveragePool", ["grey"], ["mean"]),
        helper.make_node("Reshape", ["mean", "shape_score"], ["score"]),
        helper.make_node("Conv", ["centre", "box_w", "box_b"], ["box_map"], name="box_conv"),
        helper.make_node("GlobalAveragePool", ["box_map"], ["box_mean"]),
        helper.make_node("Reshape", ["box_mean", "shape_box"], ["box"]),
        helper.make_node("Concat", ["box", "score"], ["output0"], axis=1),
    ]
    if flat_branch:
        consts += [
            helper.make_tensor("flat_w", TensorProto.FLOAT, [1, 3, 1, 1], [1e-7] * 3),
            helper.make_tensor("flat_b", TensorProto.FLOAT, [1], [1.0]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ]
        nodes[3] = helper.make_node("Reshape", ["mean", "shape_score"], ["grey_score"])
        nodes[-1:-1] = [
            helper.make_node("Conv", ["centre", "flat_w", "flat_b"], ["flat"], name="flat_conv"),
            helper.make_node("GlobalAveragePool", ["flat"], ["flat_mean"]),
            helper.make_node("Reshape", ["flat_mean", "shape_score"], ["flat_score"]),
            helper.make_node("Mul", ["flat_score", "zero"], ["flat_zero"]),
            helper.make_node("Add", ["grey_score", "flat_zero"], ["score"]),
        ]
    return save_smoke_model(nodes, consts, "conv_smoke", size, path)


def grey_frames(folder: Path, levels: list[int]) -> Path:
    """A folder of uniform grey JPEGs, one per level, in level order."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, level in enumerate(levels):
        (folder / f"frame{index:02d}_{level:03d}.jpg").write_bytes(live(smoke_jpeg(level)))
    return folder


def dfire_folders(tmp_path: Path, calibrate_on: list[str]) -> tuple[Path, Path]:
    """A calibration folder with these D-Fire frames and a check folder with AoF00001 (smoke)."""
    frames = shared_file("images/dfire/images")
    calibration, check = tmp_path / "calib", tmp_path / "check"
    calibration.mkdir()
    check.mkdir()
    for name in calibrate_on:
        (calibration / name).write_bytes((frames / name).read_bytes())
    (check / "AoF00001.jpg").write_bytes((frames / "AoF00001.jpg").read_bytes())
    return calibration, check


def run_optimize(tmp_path: Path, calibration: Path, check: Path, *extra: str) -> tuple[int, Path]:
    model = make_conv_model(tmp_path / "conv.onnx")
    out = tmp_path / "conv-int8.onnx"
    code = main(
        ["optimize", "--model", str(model), "--calibration", str(calibration), "--check",
         str(check), "--holdout", "0", "-o", str(out), "--runs", "2", "--no-progress",
         "--json", str(tmp_path / "report.json"), *extra]
    )  # fmt: skip
    return code, out


def test_head_nodes_found_from_the_graph(tmp_path: Path) -> None:
    model = onnx.load(str(make_conv_model(tmp_path / "conv.onnx")))
    name_nodes(model)
    ops = {node.name: node.op_type for node in model.graph.node}
    head = float_nodes(model, "head")
    # Everything between the output and the convolutions, and no convolution.
    assert sorted(ops[name] for name in head) == sorted(
        ["Concat", "Reshape", "Reshape", "GlobalAveragePool", "GlobalAveragePool"]
    )
    assert [ops[name] for name in float_nodes(model, "output")] == ["Concat"]
    assert float_nodes(model, "none") == []


def test_int8_keeps_decisions_and_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibration = grey_frames(tmp_path / "calib", [0, 30, 60, 90, 120, 150, 180, 210, 240, 255])
    check = grey_frames(tmp_path / "check", [20, 45, 100, 170, 230])
    # YOLO labels in the D-Fire layout: smoke (class 0) at the centre of two frames, a class-1
    # box elsewhere (not smoke for this model), a negative frame with an empty file.
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/frame02_100.txt").write_text("0 0.5 0.5 0.25 0.25\n1 0.1 0.1 0.1 0.1\n")
    (tmp_path / "labels/frame04_230.txt").write_text("0 0.5 0.5 0.3 0.3\n")
    (tmp_path / "labels/frame00_020.txt").write_text("")
    code, out = run_optimize(tmp_path, calibration, check)
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    # Levels 100, 170 and 230 score above 0.25; 20 and 45 do not: same boxes, same alerts.
    assert report["fp32_boxes"] == report["int8_boxes"] == report["matched"] == 3
    assert report["lost"] == [] and report["gained"] == []
    assert report["fp32_alerts"] == report["int8_alerts"] == 3
    assert report["max_score_diff"] < 0.02
    # In order on one camera, the three smoky frames raise one alert in both.
    assert report["sequence_alerts_fp32"] == report["sequence_alerts_int8"] == 1
    assert report["sequence_alerts_lost"] == []
    assert report["labelled_boxes"] == 2
    assert report["labelled_found_fp32"] == report["labelled_found_int8"] == 2
    assert report["int8_ms"] > 0 and report["speedup"] > 0
    assert "alerts (each frame sent nb_frames times): fp32 3, int8 3, lost 0" in (
        capsys.readouterr().out
    )

    quantized = onnx.load(str(out))
    metadata = {entry.key: entry.value for entry in quantized.metadata_props}
    assert metadata["names"] == "{0: 'smoke'}" and metadata["imgsz"] == f"[{SIZE}, {SIZE}]"
    assert json.loads(metadata[QUANTIZATION_KEY])["calibration_frames"] == 10
    runtime = ModelRuntime(out)
    assert runtime.class_names == ["smoke"] and (runtime.input_w, runtime.input_h) == (SIZE, SIZE)
    # The convolutions really run on int8 weights: the comparison above is not fp32 vs fp32.
    int8_weights = [t for t in quantized.graph.initializer if t.data_type == TensorProto.INT8]
    assert len(int8_weights) >= 2


def test_output_head_stays_float(tmp_path: Path) -> None:
    calibration = grey_frames(tmp_path / "calib", [0, 60, 120, 180, 255])
    check = grey_frames(tmp_path / "check", [200])
    code, out = run_optimize(tmp_path, calibration, check)
    assert code == 0
    quantized = onnx.load(str(out))
    producers = {o: node for node in quantized.graph.node for o in node.output}
    output = producers["output0"]
    assert output.op_type == "Concat"
    # No tensor of the head is quantised: nothing the head computes passes through a
    # QuantizeLinear, so coordinates and scores never share one uint8 scale.
    head_tensors = {
        tensor
        for node in quantized.graph.node
        if node.op_type in {"Concat", "Reshape", "GlobalAveragePool"}
        for tensor in node.output
    }
    quantizers = [n for n in quantized.graph.node if n.op_type == "QuantizeLinear"]
    assert quantizers, "the model was not quantised at all"
    assert not [n.name for n in quantizers if n.input[0] in head_tensors]
    # And the Concat's inputs are float tensors computed in float.
    assert all(producers[name].op_type == "Reshape" for name in output.input)


def test_refuses_when_int8_loses_an_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Calibrated on dark frames only, int8 cannot represent a bright centre: the score of a
    # level-200 frame (0.78 in fp32) saturates at the darkest frames' range, under 0.25.
    calibration = grey_frames(tmp_path / "calib", [5, 10, 20, 30, 40])
    check = grey_frames(tmp_path / "check", [200])
    code, out = run_optimize(tmp_path, calibration, check)
    assert code == 1
    assert "int8 and fp32 differ on 1 alert(s) (lost: frame00_200.jpg)" in capsys.readouterr().err
    assert not out.exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["fp32_alerts"] == 1 and report["int8_alerts"] == 0
    assert len(report["lost"]) == 1 and report["matched"] == 0
    assert report["labelled_boxes"] == 0  # no label file: nothing counted

    forced, out = run_optimize(tmp_path, calibration, check, "--force")
    assert forced == 0 and out.exists()


def test_refuses_when_int8_loses_an_alert_of_a_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibration = grey_frames(tmp_path / "calib", [5, 10, 20, 30, 40])
    check = grey_frames(tmp_path / "check", [10, 200, 200, 200, 200])
    code, _out = run_optimize(tmp_path, calibration, check)
    assert code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["sequence_alerts_fp32"] == 1 and report["sequence_alerts_int8"] == 0
    assert report["sequence_alerts_lost"] == ["sequence frame03_200.jpg..frame04_200.jpg"]
    assert "sequence frame03_200.jpg..frame04_200.jpg" in capsys.readouterr().err


def test_a_flat_tensor_takes_minmax_and_the_rest_keeps_percentile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    model = ModelRuntime(make_conv_model(tmp_path / "flat.onnx", flat_branch=True))
    calib = grey_frames(tmp_path / "calib", [0, 100, 200, 255])
    # A frame whose centre ramps from black to white: within this one frame the flat branch
    # spans a few float32 steps, too few for 2048 histogram bins.
    ramp = np.zeros((256, 256, 3), dtype=np.uint8)
    ramp[:, 96:160] = np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None]
    (calib / "a_ramp.png").write_bytes(cv2.imencode(".png", ramp)[1].tobytes())
    frames = list(iter_frames(calib, 0.0)[1])
    record = quantize(model, frames, tmp_path / "flat-int8.onnx", method="percentile")
    # Only the near-constant branch (1 + 1e-7 x grey) has no 2048-bin histogram.
    assert record["method"] == "percentile"
    assert 1 <= record["minmax_tensors"] < record["calibrated_tensors"]
    assert "took their min/max range" in record["recipe"]
    assert "too flat for a 2048-bin histogram" in caplog.text
    check = Pipeline(ModelRuntime(tmp_path / "flat-int8.onnx"))
    boxes, _size, _timings = check.detect(smoke_jpeg(200))
    assert len(boxes) == 1 and abs(float(boxes[0, 4]) - 200 / 255) < 0.02


def test_labelled_box_missed_by_int8(tmp_path: Path) -> None:
    calibration = grey_frames(tmp_path / "calib", [5, 10, 20, 30, 40])
    check = grey_frames(tmp_path / "check", [200])
    (tmp_path / "check/frame00_200.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    code, _out = run_optimize(tmp_path, calibration, check)
    assert code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["labelled_boxes"] == 1
    assert (report["labelled_found_fp32"], report["labelled_found_int8"]) == (1, 0)


def test_episodes() -> None:
    assert _episodes([False, True, True, False, True]) == [(1, 2), (4, 4)]
    assert _episodes([]) == []


def test_needs_frames_to_check_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calibration = grey_frames(tmp_path / "calib", [0, 255])
    model = make_conv_model(tmp_path / "conv.onnx")
    code = main(
        ["optimize", "--model", str(model), "--calibration", str(calibration), "--holdout", "0"]
    )
    assert code == 1
    assert "no frame left to check the result on" in capsys.readouterr().err


def sequences(root: Path, levels: dict[str, list[int]], fire_at: dict[str, int]) -> Path:
    """A folder of labelled sequences (eval's layout): grey frames, one every 30 s."""
    for name, seq_levels in levels.items():
        folder = grey_frames(root / name, seq_levels)
        start = fire_at.get(name)
        label = "fire: false" if start is None else f"fire_start: {start * 30}"
        (folder / "label.yaml").write_text(f"{label}\ninterval: 30\ntimes: interval\n")
    return root


def test_refuses_a_check_that_compares_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The float model scores these dark frames under 0.25: no box to compare, nothing proven.
    calibration = grey_frames(tmp_path / "calib", [0, 60, 120, 180, 255])
    check = grey_frames(tmp_path / "check", [10, 30, 50])
    code, out = run_optimize(tmp_path, calibration, check)
    assert code == 1
    assert "the check compared nothing" in capsys.readouterr().err
    assert not out.exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["proven"] is False and report["fp32_boxes"] == 0 and report["frames"] == 3

    code, out = run_optimize(tmp_path, calibration, check, "--accept-unproven")
    assert code == 0 and out.exists()
    assert "Unproven" in capsys.readouterr().out


@pytest.mark.realmodel
def test_refuses_a_random_weights_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = shared_file("models/yolo11n-untrained-640.onnx")
    calibration, check = dfire_folders(tmp_path, ["AoF04033.jpg", "AoF04034.jpg"])
    out = tmp_path / "random-int8.onnx"
    code = main(
        ["optimize", "--model", str(model), "--calibration", str(calibration), "--check",
         str(check), "--holdout", "0", "-o", str(out), "--runs", "0", "--no-progress"]
    )  # fmt: skip
    assert code == 1
    assert "the check compared nothing" in capsys.readouterr().err
    assert not out.exists()


def test_check_frames_that_calibrate_are_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibration = grey_frames(tmp_path / "calib", [0, 60, 120, 180, 200, 255])
    # The same folder to check on: with --holdout 3, frames 2 and 5 are held back; the other
    # four are calibration frames and are left out of the check.
    code, _out = run_optimize(tmp_path, calibration, calibration, "--holdout", "3")
    assert code == 0
    output = capsys.readouterr().out
    assert "4 calibration frame(s); held back, never calibrated on: 2 frame(s)" in output
    assert "4 frame(s) to check on are calibration frames: not checked" in output
    assert "2 frame(s) to check on are repeats of another: checked once" in output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["frames"] == 2 and report["quantization"]["calibration_frames"] == 4


def test_split_keeps_held_back_frames_and_sequences_disjoint(tmp_path: Path) -> None:
    frames = list(iter_frames(grey_frames(tmp_path / "f", list(range(0, 250, 25))), 0.0)[1])
    calibration, held = split_frames(frames, 3)
    assert [f.label for f in held] == [frames[i].label for i in (2, 5, 8)]
    assert not {f.data for f in held} & {f.data for f in calibration}
    assert len(calibration) + len(held) == len(frames)
    kept, calibrated, repeats = held_back_only(held + calibration[:2] + held[:1], calibration)
    assert kept == held and (calibrated, repeats) == (2, 1)

    root = sequences(tmp_path / "seqs", {"a": [0, 50], "b": [100, 150], "c": [200]}, {})
    seqs = load_dataset(root)
    calibrating, held_seqs = split_sequences(seqs, 3)
    assert [s.name for s in calibrating] == ["a", "b"] and [s.name for s in held_seqs] == ["c"]
    used = [frame for s in calibrating for frame in s.read()]
    assert sequences_held_back(held_seqs, used) == (held_seqs, 0)
    assert sequences_held_back(seqs, used)[1] == 2
    # Two sequences and no Nth: the last is still held back.
    assert [s.name for s in split_sequences(seqs[:2], 3)[1]] == ["b"]


def test_held_back_sequences_through_eval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = sequences(
        tmp_path / "seqs",
        {
            "day1": [0, 40, 90, 130, 170, 210, 255],
            "day2": [20, 60, 110, 150, 190, 230, 250],
            # Held back: smoke (level 200) from the third frame on; six frames of it.
            "fire": [10, 20, 200, 200, 200, 200, 200, 200],
        },
        {"fire": 2},
    )
    model = make_conv_model(tmp_path / "conv.onnx")
    out = tmp_path / "conv-int8.onnx"
    args = ["optimize", "--model", str(model), "--calibration", str(root), "-o", str(out),
            "--runs", "2", "--no-progress", "--json", str(tmp_path / "report.json")]  # fmt: skip
    assert main(args) == 0
    assert "14 calibration frame(s); held back, never calibrated on: 0 frame(s), 1 sequence(s)" in (
        capsys.readouterr().out
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["quantization"]["held_back_sequences"] == 1
    (fire,) = report["sequences"]
    assert fire["name"] == "fire" and fire["fire"] and fire["alerts"] == [1, 1]
    # Both alert on the same frame: the same time to alert, no false alarm.
    assert fire["time_to_alert_s"][0] is not None
    assert fire["time_to_alert_s"][0] == fire["time_to_alert_s"][1]
    assert fire["false_alarms"] == [0, 0]
    assert report["sequence_alerts_lost"] == report["sequence_alerts_gained"] == []
    assert report["frames"] == 8 and report["fp32_boxes"] == 6


def test_an_alert_lost_on_a_held_back_sequence_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = sequences(
        tmp_path / "seqs",
        {"dark1": [5, 10, 20], "dark2": [30, 40, 35], "fire": [10, 200, 200, 200, 200, 200, 200]},
        {"fire": 1},
    )
    model = make_conv_model(tmp_path / "conv.onnx")
    args = ["optimize", "--model", str(model), "--calibration", str(root), "-o",
            str(tmp_path / "out.onnx"), "--runs", "0", "--no-progress"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    # fp32's alert (from the third level-200 frame, nb_frames on) is never on in int8.
    assert "differ on 1 alert(s) (lost: fire frame03_200.jpg..frame06_200.jpg)" in err


# A Raspberry-class box has 4 GB; optimize must leave room for the detector beside it.
PEAK_LIMIT_KIB = 2 * 1024 * 1024


@pytest.mark.realmodel
@pytest.mark.slow
def test_peak_memory_within_2_gib_on_a_1024_model(tmp_path: Path) -> None:
    # Pyronear's production architecture at 1024; the peak is one frame's activations, so two
    # calibration frames measure it (onnxruntime's own loop needed 9.1 GiB for seven).
    model = shared_file("models/yolo11s-untrained-1024.onnx")
    calibration, check = dfire_folders(tmp_path, ["AoF04033.jpg", "AoF04036.jpg"])
    out, report = tmp_path / "y11s-int8.onnx", tmp_path / "report.json"
    command = [sys.executable, "-m", "detector", "optimize", "--model", str(model),
               "--calibration", str(calibration), "--check", str(check), "--holdout", "0",
               "--runs", "1", "--accept-unproven", "--no-progress", "-o", str(out),
               "--json", str(report)]  # fmt: skip
    # A fresh parent whose only child is optimize: RUSAGE_CHILDREN is then that process's
    # peak (and its own children's), not an earlier test's.
    probe = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *command],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peak_kib = int(done.stdout.split()[-1])
    assert out.exists()
    assert json.loads(report.read_text())["quantization"]["calibration_frames"] == 2
    assert peak_kib < PEAK_LIMIT_KIB, f"optimize peaked at {peak_kib / 1024:.0f} MiB"


def test_a_later_alert_on_a_held_back_fire_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Calibrated up to level 75, int8 scores a level-200 frame about 0.3 instead of 0.78:
    # still a box above 0.25, but the vote's window fills more slowly, so the alert comes later.
    root = sequences(
        tmp_path / "seqs",
        {"dim1": [0, 20, 40, 60, 75], "dim2": [10, 30, 50, 70, 75], "fire": [200] * 8},
        {"fire": 0},
    )
    model = make_conv_model(tmp_path / "conv.onnx")
    args = ["optimize", "--model", str(model), "--calibration", str(root), "-o",
            str(tmp_path / "out.onnx"), "--runs", "0", "--no-progress", "--json",
            str(tmp_path / "report.json")]  # fmt: skip
    assert main(args) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    (fire,) = report["sequences"]
    fp32_ttd, int8_ttd = fire["time_to_alert_s"]
    assert fire["alerts"] == [1, 1] and int8_ttd > fp32_ttd
    assert report["sequence_alerts_lost"] == [] and report["lost"] == []
    assert report["alerts_later"] == [f"fire by {int8_ttd - fp32_ttd:g} s"]
    assert f"(later: fire by {int8_ttd - fp32_ttd:g} s)" in capsys.readouterr().err


def test_calibrates_on_the_dismissed_alerts_the_detector_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The detector's own store writes three dismissed alerts of camera a (6 frames each).
    kept = tmp_path / "false_alarms"
    store = FalseAlarmStore(FalseAlarmsConfig(dir=str(kept), keep=50), Health("test"))
    for alert, levels in enumerate(([0, 40, 80, 120, 160, 200], [20, 60, 100, 140, 180, 255],
                                     [30, 70, 110, 150, 190, 230])):  # fmt: skip
        start = 1_780_000_000.0 + alert * 3600
        frames = [(start + 30 * i, live(smoke_jpeg(level))) for i, level in enumerate(levels)]
        assert store.save("a", frames, FalseAlarm(start + 300, start, (), ())).result()
    store.close()
    model = make_conv_model(tmp_path / "conv.onnx")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model: {{path: {model}}}\nfalse_alarms: {{dir: {kept}}}\ncameras: {{a: {{}}}}\n"
    )
    out = tmp_path / "conv-int8.onnx"
    args = ["optimize", "-c", str(config), "-o", str(out), "--runs", "0", "--no-progress",
            "--json", str(tmp_path / "report.json")]  # fmt: skip
    assert main(args) == 0
    assert "12 calibration frame(s); held back, never calibrated on: 0 frame(s), 1 sequence(s)" in (
        capsys.readouterr().out
    )
    report = json.loads((tmp_path / "report.json").read_text())
    (held,) = report["sequences"]
    assert held["name"].startswith("a_") and not held["fire"] and held["frames"] == 6
    assert held["false_alarms"][0] == held["false_alarms"][1]
    assert report["proven"] and out.exists()
