"""`smokewatch demo` as a user runs it: a real process, the output a person reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.detector.broker import Broker
from tests.detector.conftest import REPO, shared_file
from tests.detector.mqtt_helpers import Probe
from tests.detector.tiny_model import live, make_tiny_model, smoke_jpeg

SMOKE_ON = "binary_sensor.demo_camera_smoke: off → on (score"
SMOKE_OFF = "binary_sensor.demo_camera_smoke: on → off"


def run_demo(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`python -m detector demo ARGS`, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "detector", "demo", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


def test_demo_with_embedded_broker_shows_the_alert(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny.onnx")
    frames = tmp_path / "frames"
    frames.mkdir()
    # The tiny model scores the grey level: 3 dark frames, 4 smoke frames, 4 dark frames.
    for index, level in enumerate([0] * 3 + [220] * 4 + [0] * 4):
        (frames / f"{index:02d}.jpg").write_bytes(live(smoke_jpeg(level)))  # a live camera's
    result = run_demo("--model", str(model), "--frames", str(frames), "--interval", "0.2")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Embedded MQTT broker (amqtt) on 127.0.0.1:" in out
    # HA's view, in order: the entity appears off, turns on with its score, then off again.
    assert "binary_sensor.demo_camera_smoke: unknown → off" in out
    on, off = out.index(SMOKE_ON), out.index(SMOKE_OFF)
    assert out.index("binary_sensor.demo_camera_smoke: unknown → off") < on < off
    assert "image.demo_camera_alert_image: new alert image" in out
    # Issue 24: the scored frame was labelled "new alert image", a null statistic "None".
    assert "image.demo_camera_scored_frame: new scored frame" in out
    assert "None" not in out
    assert "11 frames published, 1 smoke alert(s) seen by Home Assistant" in out
    # Every frame arrived once: nothing dropped (amqtt delivers a message once per matching
    # subscription, so overlapping subscriptions would show up here as drops).
    assert "sensor.smokewatch_frames_dropped: unknown → 0" in out
    assert "frames_dropped: 0 →" not in out


def test_demo_without_a_model_says_what_to_do(tmp_path: Path) -> None:
    result = run_demo("--model", str(tmp_path / "missing.onnx"), timeout=60)
    assert result.returncode == 1
    assert "smokewatch demo --model FILE.onnx" in result.stderr


@pytest.mark.realmodel
def test_demo_generated_scene_alerts_a_trained_model_on_a_real_broker(
    broker: Broker, tmp_path: Path
) -> None:
    model = shared_file("models/dfire-yolo11n-int8-640.onnx")
    # Whatever runs under the default prefix on the user's broker is left alone.
    probe = Probe(broker.host, broker.port, ("smokewatch/#",))
    try:
        result = run_demo("--broker", broker.url, "--model", str(model), "--interval", "0.3")
    finally:
        probe.close()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Embedded" not in out
    assert out.index(SMOKE_ON) < out.index(SMOKE_OFF)
    assert "22 frames published, 1 smoke alert(s)" in out
    assert probe.messages == []
    # Issue 24: the generated camera is a live one: it never reads frozen.
    assert "frozen" not in out
