"""Building the model and the pipeline from a configuration (detector/assembly.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.assembly import build_pipeline, camera_settings, load_model
from detector.config import load_config
from detector.errors import ModelError


def test_each_camera_is_scored_with_its_own_settings_and_masks(tiny: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"model: {{path: {tiny}}}\n"
        "detection: {threshold: 0.3, nb_frames: 4}\n"
        "cameras:\n"
        "  home: {}\n"
        "  tower: {scene: horizon, threshold: 0.4,"
        " masks: [{name: road, rect: [0, 0.8, 1, 1]}]}\n"
    )
    config = load_config(path)
    pipeline = build_pipeline(config, load_model(config.model, progress=False))
    home, tower = pipeline.camera("home"), pipeline.camera("tower")
    assert (home.settings.threshold, home.settings.nb_frames) == (0.3, 4)
    assert home.settings.scene == "nearby" and home.settings.max_bbox_width is None
    assert tower.settings.threshold == 0.4 and tower.vote.threshold == 0.4
    assert tower.settings == camera_settings(config.cameras["tower"])
    assert tower.settings.max_bbox_width == 0.4  # the horizon scene's width cap
    assert [mask.name for mask in tower.masks("config")] == ["road"]
    assert home.masks() == ()
    only = build_pipeline(config, pipeline.model, cameras=["tower"])
    with pytest.raises(KeyError):
        only.camera("home")


def test_a_model_override_and_a_missing_model(tiny: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"model: {{path: {tmp_path / 'missing.onnx'}}}\ncameras: {{a: {{}}}}\n")
    config = load_config(path)
    with pytest.raises(ModelError):
        load_model(config.model, progress=False)
    model = load_model(config.model, override=str(tiny), progress=False)
    assert model.input_w == 64
