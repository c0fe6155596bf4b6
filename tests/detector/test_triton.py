"""The Triton backend against a real Triton Inference Server (nvidia-pytriton's tritonserver).

The server runs the very ONNX files the local backend runs (onnxruntime inside Triton's
Python backend), so the same frames must give the same boxes and the same votes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector.errors import ModelError
from detector.model import ModelBackend, ModelRuntime
from detector.model_triton import TritonModel
from detector.pipeline import FrameResult, Pipeline, ScoringSettings
from tests.detector.broker import Broker
from tests.detector.conftest import SHARED_DATA
from tests.detector.mqtt_helpers import Probe, ServiceProcess, write_config
from tests.detector.tiny_model import live, smoke_jpeg
from tests.detector.triton import TritonServer, require_triton

DFIRE = SHARED_DATA / "models/dfire-yolo11n-int8-640.onnx"
DFIRE_FRAMES = SHARED_DATA / "images/dfire/images"
P = "smokewatch"
# One worker runs this module under pytest-xdist (--dist loadgroup): its Triton server starts
# once, not once per worker.
pytestmark = pytest.mark.xdist_group("triton")


@pytest.fixture(scope="module")
def server(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """One server for the module: the tiny model, and the real D-Fire model when present."""
    require_triton()
    models = {"tiny": tiny}
    if DFIRE.exists():
        models["dfire"] = DFIRE
    triton = TritonServer(models, tmp_path_factory.mktemp("triton") / "triton.log").start()
    try:
        yield triton
    finally:
        triton.stop()


def run_frames(model: ModelBackend, frames: list[bytes], nb_frames: int = 3) -> list[FrameResult]:
    pipeline = Pipeline(model)
    pipeline.add_camera(ScoringSettings("cam", threshold=0.25, nb_frames=nb_frames))
    return [pipeline.process("cam", frame, 1000.0 + i) for i, frame in enumerate(frames)]


def assert_same(local: list[FrameResult], remote: list[FrameResult]) -> None:
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_allclose(b.raw_boxes, a.raw_boxes, atol=1e-6)
        np.testing.assert_allclose(b.vote.boxes, a.vote.boxes, atol=1e-6)
        assert (b.vote.score, b.vote.ongoing, b.vote.event) == (
            a.vote.score,
            a.vote.ongoing,
            a.vote.event,
        )


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_same_boxes_and_votes_as_the_local_model(
    server: TritonServer, tiny: Path, protocol: str
) -> None:
    url = server.http_url if protocol == "http" else server.grpc_url
    remote = TritonModel(url, "tiny", protocol=protocol)
    local = ModelRuntime(tiny)
    # Read from the server: input size and class names (the config's `names` parameter).
    assert (remote.input_w, remote.input_h, remote.class_names) == (64, 64, ["smoke"])
    frames = [live(smoke_jpeg(level)) for level in (0, 30, 200, 210, 190, 0, 0, 0)]
    local_results, remote_results = run_frames(local, frames), run_frames(remote, frames)
    assert_same(local_results, remote_results)
    events = [r.vote.event for r in remote_results]
    assert "start" in events and "end" in events  # the sequence does raise and end an alert
    assert remote.health()["healthy"] and remote.health()["failures"] == 0
    remote.close()


@pytest.mark.realmodel
def test_real_model_same_boxes_and_votes(server: TritonServer) -> None:
    if "dfire" not in server.models or not DFIRE_FRAMES.is_dir():
        pytest.skip(f"development data {DFIRE} or {DFIRE_FRAMES} is absent")
    frames = [path.read_bytes() for path in sorted(DFIRE_FRAMES.glob("*.jpg"))]
    remote = TritonModel(server.grpc_url, "dfire", protocol="grpc")
    local = ModelRuntime(DFIRE)
    assert remote.class_names == local.class_names == ["smoke", "fire"]
    assert remote.smoke_class_ids == local.smoke_class_ids == [0]
    local_results, remote_results = run_frames(local, frames), run_frames(remote, frames)
    assert sum(len(r.raw_boxes) for r in local_results) > 0  # real smoke gives real boxes
    assert_same(local_results, remote_results)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_wrong_model_name_is_a_clear_error(server: TritonServer, protocol: str) -> None:
    url = server.http_url if protocol == "http" else server.grpc_url
    # The served models are listed when the server's repository index has them (a plain
    # tritonserver); pytriton loads its models by API, so its index is empty.
    with pytest.raises(ModelError, match=r"has no ready model 'smoke'.*check model: name"):
        TritonModel(url, "smoke", protocol=protocol)


def test_an_unreachable_server_is_a_clear_error() -> None:
    from tests.detector.broker import free_port

    pytest.importorskip("tritonclient")
    with pytest.raises(ModelError, match="cannot reach the inference server"):
        TritonModel(f"127.0.0.1:{free_port()}", "tiny", timeout=2)


def camera_stats(probe: Probe, check: Any) -> dict[str, Any]:
    def newest() -> dict[str, Any] | None:
        last = probe.last(f"{P}/stats")
        data = json.loads(last) if last else None
        return data if data and check(data) else None

    return probe.wait_for(newest, 30, "stats")  # type: ignore[no-any-return]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_server_stopped_mid_run_counts_errors_and_detection_resumes(
    broker: Broker, tiny: Path, tmp_path: Path, protocol: str
) -> None:
    """`smokewatch run` on Triton: frames during the outage are camera errors, then it resumes."""
    triton = TritonServer({"tiny": tiny}, tmp_path / "triton.log").start()
    probe = Probe(broker.host, broker.port)
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"})
    url = triton.grpc_url if protocol == "grpc" else triton.http_url
    text = config.read_text().replace(
        f"model: {{path: {tiny}}}",
        f"model: {{backend: triton, url: {url}, name: tiny, protocol: {protocol}, timeout: 2}}",
    )
    config.write_text(text)
    service = ServiceProcess(config, tmp_path / "service.log")
    smoke = smoke_jpeg(200)
    try:
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 30, "online")
        info = json.loads(probe.wait_for(lambda: probe.last(f"{P}/info"), 10, "info"))
        assert info["backend"]["backend"] == "triton" and info["backend"]["model"] == "tiny"
        # Home Assistant's "Inference" connectivity sensor reads the health from the stats.
        inference = json.loads(
            probe.wait_for(
                lambda: probe.last(f"homeassistant/binary_sensor/{P}_detector_inference/config"),
                10,
                "inference sensor",
            )
        )
        assert (
            inference["state_topic"] == f"{P}/stats"
            and "model.healthy" in (inference["value_template"])
        )

        def scored(data: dict[str, Any]) -> int:
            return int(data["cameras"]["a"]["scored"])

        probe.publish(f"{P}/a/image", smoke_jpeg(0))
        before = camera_stats(probe, lambda d: scored(d) >= 1)
        assert before["model"]["healthy"] is True and before["cameras"]["a"]["errors"] == {}

        triton.stop()

        def outage(data: dict[str, Any]) -> bool:
            probe.publish(f"{P}/a/image", smoke)
            return data["cameras"]["a"]["errors"].get("inference_unavailable", 0) >= 2

        down = camera_stats(probe, outage)
        assert down["model"]["healthy"] is False and down["model"]["failures"] >= 2
        assert down["model"]["last_error"]
        assert service.process.poll() is None  # the service lives on

        triton.start()

        def resumed(data: dict[str, Any]) -> bool:
            probe.publish(f"{P}/a/image", live(smoke))  # a live camera: a new capture each time
            return bool(data["model"]["healthy"]) and data["cameras"]["a"]["last_score"] > 0

        camera_stats(probe, resumed)
        probe.wait_for(lambda: probe.last(f"{P}/a/smoke") == b"ON", 10, "smoke ON")
        log = service.log()
        assert log.count("did not answer") <= 2  # logged once (rate-limited), not per frame
        assert "answers again" in log
    finally:
        service.close()
        probe.close()
        triton.stop()


def test_bench_measures_the_round_trip(
    server: TritonServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detector.cli import main

    report = tmp_path / "bench.json"
    args = ["bench", "--backend", "triton", "--url", server.grpc_url, "--protocol", "grpc"]
    args += ["--name", "tiny", "--runs", "3", "--warmup", "1", "--resolution", "640x360"]
    assert main([*args, "--no-progress", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert f"Backend: triton, model 'tiny' on grpc {server.grpc_url}" in out
    assert "camera(s) per detector" in out
    data = json.loads(report.read_text())
    assert data["backend"]["backend"] == "triton" and data["stages_ms"]["model"] > 0
    assert data["capacity"] > 0


def test_bench_without_a_server_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from detector.cli import main
    from tests.detector.broker import free_port

    pytest.importorskip("tritonclient")
    url = f"127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit, match="cannot reach the inference server"):
        main(["bench", "--backend", "triton", "--url", url, "--name", "tiny", "--no-progress"])
    with pytest.raises(SystemExit, match="needs --url and --name"):
        main(["bench", "--backend", "triton", "--no-progress"])
