"""Offline commands read a configuration without its MQTT or API secrets.

`replay -c config/smokewatch.yaml` refused to run without secrets.yaml although replay never
connects to the broker; `run` still refuses, with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detector.config import load_config
from detector.config.loader import UnresolvedSecret
from detector.errors import ConfigError
from tests.detector.mqtt_helpers import REPO
from tests.detector.tiny_model import smoke_jpeg


def config_with_secrets(folder: Path, model: Path) -> Path:
    """The shipped example's secret lines, no secrets.yaml beside it, a local model."""
    path = folder / "smokewatch.yaml"
    path.write_text(
        f"model: {{path: {model}}}\n"
        "mqtt: {username: smokewatch, password: !secret mqtt_password}\n"
        "cameras:\n  ridge: {scene: horizon}\n"
        "bridge:\n  cameras: {ridge: {token: !env SMOKEWATCH_TEST_UNSET_TOKEN, pose_id: 1}}\n"
    )
    return path


def test_offline_loading_accepts_unresolved_secrets(tiny: Path, tmp_path: Path) -> None:
    path = config_with_secrets(tmp_path, tiny)
    with pytest.raises(ConfigError) as caught:
        load_config(path)  # what run and bridge do
    assert "!secret mqtt_password" in str(caught.value)
    config = load_config(path, offline=True)
    assert isinstance(config.mqtt.password, UnresolvedSecret)
    assert config.cameras["ridge"].scene == "horizon"


def test_replay_runs_on_a_config_whose_secrets_are_elsewhere(tiny: Path, tmp_path: Path) -> None:
    path = config_with_secrets(tmp_path, tiny)
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(3):
        (frames / f"f{index}.jpg").write_bytes(smoke_jpeg(200))
    replay = subprocess.run(
        [sys.executable, "-m", "detector", "replay", "-c", str(path), "--no-progress", str(frames)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    assert "3 frames" in replay.stdout + replay.stderr


def test_the_shipped_example_loads_offline_without_its_secrets(tmp_path: Path) -> None:
    shutil.copy(REPO / "config" / "smokewatch.yaml", tmp_path / "smokewatch.yaml")
    config = load_config(tmp_path / "smokewatch.yaml", offline=True)
    assert config.cameras
