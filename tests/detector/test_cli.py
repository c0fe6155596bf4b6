"""The command line owns the terminal: only detector/cli/ prints; the library returns data."""

from __future__ import annotations

import ast
import statistics
from pathlib import Path
from typing import Any

import pytest

from detector.assembly import build_pipeline, load_model
from detector.bench import PIPELINE_STAGES, STAGES, generated_frame, measure
from detector.cli import main
from detector.config import validate
from detector.config_check import check_config
from detector.errors import ConfigError, SmokeWatchError
from detector.pipeline import FrameResult, Pipeline
from tests.detector.tiny_model import make_tiny_model, smoke_jpeg

DETECTOR = Path(__file__).resolve().parents[2] / "detector"
CLI = DETECTOR / "cli"


def terminal_writes(source: str) -> list[str]:
    """Every place a module writes to the terminal itself: print(), sys.stdout/stderr (also
    imported from sys), and the line of each."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "print":
                found.append(f"line {node.lineno}: print()")
        elif isinstance(node, ast.Attribute) and node.attr in {"stdout", "stderr", "__stdout__"}:
            if isinstance(node.value, ast.Name) and node.value.id == "sys":
                found.append(f"line {node.lineno}: sys.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "sys":
            names = {alias.name for alias in node.names} & {"stdout", "stderr", "__stdout__"}
            found += [f"line {node.lineno}: from sys import {name}" for name in sorted(names)]
    return found


def test_only_the_command_line_writes_to_the_terminal() -> None:
    writers = []
    for path in sorted(DETECTOR.rglob("*.py")):
        if CLI in path.parents:
            continue
        writers += [
            f"{path.relative_to(DETECTOR)} {where}" for where in terminal_writes(path.read_text())
        ]
    assert not writers, writers


def test_the_scan_sees_every_way_of_writing() -> None:
    source = (
        "import sys\nfrom sys import stderr\n"
        "def f():\n    print('x')\n    sys.stdout.write('y')\n    print('z', file=sys.stderr)\n"
    )
    assert sorted(terminal_writes(source)) == [
        "line 2: from sys import stderr",
        "line 4: print()",
        "line 5: sys.stdout",
        "line 6: print()",
        "line 6: sys.stderr",
    ]


def test_the_command_line_does_write() -> None:
    # The package the scan exempts is where the printing went (the scan is not vacuous).
    assert any(terminal_writes(path.read_text()) for path in CLI.glob("*.py"))


def test_check_config_returns_the_config_and_raises_every_error(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(f"model: {{cache_dir: {tmp_path}}}\ncameras: {{a: {{}}}}\n")
    config, notes = check_config(good)
    assert list(config.cameras) == ["a"]
    assert len(notes) == 1 and "not downloaded yet" in notes[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: {a: {threshold: 2}}\nmqtt: {port: 0}\n")
    with pytest.raises(ConfigError) as caught:
        check_config(bad)
    assert [line.split(":")[0] for line in caught.value.errors] == [
        "cameras.a.threshold",
        "mqtt.port",
    ]


def test_check_config_prints_nothing_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: {a: {threshold: 2}}\n")
    with pytest.raises(ConfigError):
        check_config(bad)
    assert capsys.readouterr() == ("", "")
    # The command prints what the library raised.
    assert main(["check-config", str(bad)]) == 1
    assert capsys.readouterr().out.startswith(f"{bad}: 1 error\n")


def test_bridge_status_and_retry_without_an_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = tmp_path / "none" / "outbox.sqlite3"
    config = tmp_path / "c.yaml"
    config.write_text(
        f"cameras: {{ridge: {{}}}}\nbridge:\n  outbox: {outbox}\n"
        "  cameras:\n    ridge: {token: t, pose_id: 1}\n"
    )
    for action in ("status", "retry"):
        assert main(["bridge", action, "-c", str(config)]) == 1
        assert capsys.readouterr().out == f"No outbox at {outbox}: the bridge has not run yet.\n"
    assert not outbox.exists()


@pytest.fixture
def tiny_pipeline(tmp_path: Path) -> Pipeline:
    config = validate({"model": {"path": str(make_tiny_model(tmp_path / "tiny.onnx"))},
                       "cameras": {"bench": {}}})  # fmt: skip
    return build_pipeline(config, load_model(config.model), ["bench"])


def test_bench_reads_the_pipelines_own_timings(tiny_pipeline: Pipeline) -> None:
    # Every stage figure is the median of what Pipeline.process timed in the timed runs:
    # nothing is run a second time for the breakdown.
    seen: list[FrameResult] = []
    process = tiny_pipeline.process

    def recording(*args: Any, **kwargs: Any) -> FrameResult:
        result = process(*args, **kwargs)
        seen.append(result)
        return result

    tiny_pipeline.process = recording  # type: ignore[method-assign]
    results = measure(tiny_pipeline, "bench", generated_frame(320, 180), 5, 2, False)
    assert len(seen) == 7
    assert set(results["stages_ms"]) == set(STAGES)
    for name in PIPELINE_STAGES:
        assert results["stages_ms"][name] == statistics.median(r.timings[name] for r in seen[2:])
    assert results["stages_ms"]["publish"] > 0


def test_bench_refuses_a_frame_the_pipeline_does_not_score(tmp_path: Path) -> None:
    config = validate({"model": {"path": str(make_tiny_model(tmp_path / "tiny.onnx"))},
                       "cameras": {"bench": {"night": "pause"}}})  # fmt: skip
    pipeline = build_pipeline(config, load_model(config.model), ["bench"])
    grey = smoke_jpeg(90)
    with pytest.raises(SmokeWatchError, match="not scored"):
        measure(pipeline, "bench", grey, 2, 0, False)


def test_bench_command_scores_a_grey_frame_on_a_camera_that_pauses_at_night(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_tiny_model(tmp_path / "tiny.onnx")
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{path: {model}}}\ncameras: {{tower: {{night: pause}}}}\n")
    frame = tmp_path / "grey.jpg"
    frame.write_bytes(smoke_jpeg(90))
    argv = ["bench", "-c", str(config), "--frame", str(frame), "--runs", "2", "--warmup", "0",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "  model " in out and "Capacity:" in out
