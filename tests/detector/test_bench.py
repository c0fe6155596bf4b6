"""`smokewatch bench` on the tiny model: every stage timed, the ratio and the capacity printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.bench import (
    COLD_PAUSE_S,
    DEFAULT_CACHE_BYTES,
    STAGES,
    Chill,
    capacity,
    generated_frame,
    last_level_cache_bytes,
)
from detector.cli import main
from detector.frames import decode_frame
from tests.detector.tiny_model import make_tiny_model


def test_capacity_keeps_headroom() -> None:
    # 30 s at 80 % of the time: 24 000 ms of work, 350 ms a frame → 68 cameras.
    assert capacity(350.0, 30.0, 0.2) == 68
    assert capacity(350.0, 0.1, 0.2) == 0


def test_generated_frame_size() -> None:
    assert decode_frame(generated_frame(640, 360))[1] == (640, 360)


def test_bench_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = make_tiny_model(tmp_path / "tiny.onnx")
    report = tmp_path / "bench.json"
    code = main(
        ["bench", "--model", str(model), "--resolution", "320x180", "--runs", "3", "--warmup", "1",
         "--interval", "10", "--no-progress", "--json", str(report)]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    for stage in STAGES:
        assert f"  {stage} " in out
    assert "Whole path / bare model run:" in out and "Capacity:" in out
    data = json.loads(report.read_text())
    assert set(data["stages_ms"]) == set(STAGES)
    assert data["ratio"] > 0 and data["whole_ms"] >= data["stages_ms"]["model"] * 0.5
    assert data["capacity"] == capacity(data["whole_ms"], 10, 0.2)
    assert data["size"] == [320, 180]


def test_bad_resolution() -> None:
    with pytest.raises(SystemExit, match="WIDTHxHEIGHT"):
        main(["bench", "--model", "x.onnx", "--resolution", "big"])


def test_bench_two_models_each_in_its_own_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = make_tiny_model(tmp_path / "a.onnx", size=64)
    second = make_tiny_model(tmp_path / "b.onnx", size=256)
    report = tmp_path / "pair.json"
    code = main(
        ["bench", "--model", str(first), "--vs", str(second), "--resolution", "320x180",
         "--runs", "3", "--warmup", "1", "--interval", "10", "--no-progress", "--json",
         str(report)]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "A a (64x64)" in out and "B b (256x256)" in out and "B / A per frame:" in out
    assert "each model in its own process, 2 rounds of 5 runs" in out
    data = json.loads(report.read_text())
    # --runs 3 is rounded up to whole rounds, and at least two (each model goes first once).
    assert data["rounds"] == 2
    for key in ("a", "b"):
        low, high = data[f"{key}_range_ms"]
        assert 0 < low <= data[f"{key}_ms"] <= high
    low, high = data["round_ratio_range"]
    assert low <= high and data["ratio"] > 0
    assert data["a"]["model"] == "a" and data["b"]["model"] == "b"
    assert data["a"]["capacity"] == capacity(data["a"]["ms"], 10, 0.2)
    assert data["b"]["capacity"] == capacity(data["b"]["ms"], 10, 0.2)
    assert data["ratio"] > 0
    # Each worker also times its model's bare run, so B's path ÷ A's bare run is one run's.
    assert data["a_bare_ms"] > 0 and data["b_bare_ms"] > 0
    assert data["b_path_vs_a_bare"] == pytest.approx(data["b_ms"] / data["a_bare_ms"])
    assert "B's whole path / A's bare run:" in out


def test_last_level_cache_is_the_largest_one_linux_reports(tmp_path: Path) -> None:
    for index, size in enumerate(["48K", "32K", "1024K", "32768K", "junk"]):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    assert last_level_cache_bytes(str(tmp_path)) == 32 << 20
    assert last_level_cache_bytes(str(tmp_path / "missing")) == DEFAULT_CACHE_BYTES


def test_a_cold_run_starts_with_every_cache_line_written_and_the_threads_asleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("detector.bench.time.sleep", pauses.append)
    chill = Chill(True)
    assert chill._buffer.nbytes == 2 * last_level_cache_bytes()
    chill()
    chill()
    # Every byte written at each call (not only read: a write takes the line for this core).
    assert int(chill._buffer.min()) == int(chill._buffer.max()) == 2
    assert pauses == [COLD_PAUSE_S, COLD_PAUSE_S]
    warm = Chill(False)
    warm()
    assert warm._buffer.nbytes == 0 and len(pauses) == 2


def test_bench_cold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = make_tiny_model(tmp_path / "a.onnx", size=64)
    second = make_tiny_model(tmp_path / "b.onnx", size=128)
    single, pair = tmp_path / "single.json", tmp_path / "pair.json"
    common = ["--resolution", "320x180", "--runs", "2", "--warmup", "1", "--no-progress", "--cold"]
    assert main(["bench", "--model", str(first), *common, "--json", str(single)]) == 0
    out = capsys.readouterr().out
    assert "Medians of 2 runs, each run cold (caches evicted, threads asleep)" in out
    assert "with --cold's cache-sized buffer" in out
    assert json.loads(single.read_text())["cold"] is True
    code = main(["bench", "--model", str(first), "--vs", str(second), *common, "--json", str(pair)])
    assert code == 0
    assert "runs taken in turn, each run cold" in capsys.readouterr().out
    data = json.loads(pair.read_text())
    assert data["cold"] is True and data["a_bare_ms"] > 0 and data["b_bare_ms"] > 0
