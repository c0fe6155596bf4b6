"""The view state on generated frames: infrared grey → night, repeated bytes → frozen, low
contrast → obscured, and back to clear; and what a paused night does to the vote."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.guard import GUARD_WIDTH
from detector.model import ModelRuntime
from detector.pipeline import Pipeline, ScoringSettings
from detector.view import (
    REDUCED_WIDTH,
    ViewMonitor,
    brightness_spread,
    is_grey,
    reduced,
    thumbnail,
)
from tests.detector.tiny_model import live, make_tiny_model


def jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return bytes(encoded.tobytes())


def landscape(seed: int, *, grey: bool = False) -> np.ndarray:
    """A 320x240 'landscape': sky gradient, dark hills, green and brown noise."""
    rng = np.random.default_rng(seed)
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    image[:120] = np.linspace(230, 150, 120, dtype=np.uint8)[:, None, None] * np.array(
        [1.0, 0.9, 0.7]
    ).astype(np.uint8)
    image[:120, :, 0] = np.linspace(250, 180, 120, dtype=np.uint8)[:, None]  # blue sky (BGR)
    image[120:] = (40, 90, 60)
    image = np.clip(image + rng.integers(-25, 25, image.shape), 0, 255).astype(np.uint8)
    if grey:
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return image


def fog(image: np.ndarray, amount: float) -> np.ndarray:
    """Blend towards a uniform light grey, as fog does."""
    return cv2.addWeighted(image, 1 - amount, np.full_like(image, 200), amount, 0)


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def observe(monitor: ViewMonitor, image: np.ndarray) -> str:
    data = jpeg(image)
    return monitor.observe(data, decoded(data)).state


def test_clear_night_frozen_obscured_and_back_to_clear() -> None:
    monitor = ViewMonitor()
    assert observe(monitor, landscape(1)) == "clear"
    # An infrared frame: the camera sends grey pixels (red equals green everywhere).
    assert observe(monitor, landscape(2, grey=True)) == "night"
    assert observe(monitor, landscape(3)) == "clear"
    # Fog: 90% towards uniform grey.
    assert observe(monitor, fog(landscape(4), 0.9)) == "obscured"
    # A covered lens: nearly black with sensor noise.
    rng = np.random.default_rng(5)
    covered = rng.integers(0, 12, (240, 320, 3)).astype(np.uint8)
    assert observe(monitor, covered) == "obscured"
    # The same bytes again and again: a stuck camera or an NVR re-serving its last frame.
    stuck = jpeg(landscape(6))
    states = [monitor.observe(stuck, decoded(stuck)).state for _ in range(4)]
    assert states == ["clear", "clear", "frozen", "frozen"]
    assert monitor.last is not None and monitor.last.repeats == 4
    assert observe(monitor, landscape(7)) == "clear"


def test_frozen_wins_over_night() -> None:
    monitor = ViewMonitor(frozen_after=2)
    night = jpeg(landscape(1, grey=True))
    assert [monitor.observe(night, decoded(night)).state for _ in range(2)] == ["night", "frozen"]


def test_pyronear_night_rule_reads_red_and_green_only() -> None:
    image = landscape(1, grey=True)
    assert is_grey(image)
    # Blue differs (a tinted IR image): still night by Pyronear's rule, which compares R and G.
    tinted = image.copy()
    tinted[..., 0] = 255 - tinted[..., 0]
    assert is_grey(tinted)
    # One pixel whose red differs from green: day.
    one = image.copy()
    one[10, 10, 2] = one[10, 10, 1] ^ 1
    assert not is_grey(one)


def test_spread_ignores_a_timestamp_overlay() -> None:
    # A uniform grey frame with a white timestamp on 1% of it is still obscured.
    image = np.full((240, 320, 3), 128, dtype=np.uint8)
    image[5:15, 5:80] = 255
    assert brightness_spread(image) < 5
    assert brightness_spread(landscape(1)) > 40


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    return ModelRuntime(make_tiny_model(tmp_path_factory.mktemp("m") / "tiny.onnx"))


def grey_frame(level: int, colour: bool) -> bytes:
    # The tiny model scores the centre's mean level: a bright centre is "smoke".
    image = np.full((256, 256, 3), level, dtype=np.uint8)
    image[:40] = (250, 200, 120) if colour else 170
    return jpeg(image)


def test_night_pause_leaves_the_vote_as_it_was(model: ModelRuntime) -> None:
    pipeline = Pipeline(model)
    pipeline.add_camera(ScoringSettings("tower", nb_frames=3, threshold=0.3, night="pause"))
    pipeline.add_camera(ScoringSettings("home", nb_frames=3, threshold=0.3, night="score"))
    day, night = grey_frame(220, colour=True), grey_frame(220, colour=False)
    paused = pipeline.process("tower", night, 0.0)
    assert paused.paused and paused.view is not None and paused.view.state == "night"
    assert [drop.reason for drop in paused.dropped] == ["night"]
    assert not paused.vote.ongoing and len(paused.raw_boxes) == 0
    # Paused night frames add nothing to the window: two day frames are still needed.
    assert not pipeline.process("tower", live(day), 1.0).vote.ongoing
    assert pipeline.process("tower", live(day), 2.0).vote.event == "start"
    # An open alert stays open through a paused night frame (Pyronear keeps its state).
    assert pipeline.process("tower", night, 3.0).vote.ongoing
    # The home camera scores the same night frames.
    home = [pipeline.process("home", live(night), float(t)) for t in range(2)]
    assert not home[0].paused and home[1].vote.event == "start"


@pytest.mark.parametrize("size", [(640, 360), (1001, 577), (3840, 2160), (63, 7)])
def test_a_grey_frame_gives_a_grey_thumbnail(size: tuple[int, int]) -> None:
    # observe() trusts a coloured thumbnail to prove a colour frame; that needs the converse:
    # a frame with red == green everywhere (noise, gradients, odd sizes) keeps it in the thumb.
    rng = np.random.default_rng(sum(size))
    image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image[..., 2] = image[..., 1]
    assert is_grey(image) and is_grey(thumbnail(image))
    image[size[1] // 2, size[0] // 2, 2] ^= 1  # one coloured pixel: not infrared
    assert not is_grey(image)
    assert ViewMonitor().observe(b"x", image).grey is False


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1280, 720), (1103, 598), (150, 90)])
def test_thumbnail_from_the_reduced_frame_gives_the_same_measures(width: int, height: int) -> None:
    # The pipeline reads the whole frame once (`reduced`, 160 wide) and makes the view's
    # thumbnail from that: an area average of area averages, rounded twice: the same picture
    # within a few grey levels (under one on average), the same contrast and the same states.
    image = cv2.resize(landscape(11), (width, height), interpolation=cv2.INTER_CUBIC)
    small = reduced(image)
    assert small.shape[1] == min(width, REDUCED_WIDTH) == min(width, GUARD_WIDTH)
    direct, via = thumbnail(image), thumbnail(small)
    assert direct.shape == via.shape
    difference = np.abs(direct.astype(int) - via.astype(int))
    assert difference.max() <= 6 and difference.mean() < 1
    assert brightness_spread(image) == pytest.approx(brightness_spread(image, via), abs=1.5)
    for frame in (
        image,
        fog(image, 0.9),
        cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR),
    ):
        data = jpeg(frame)
        pixels = decoded(data)
        alone, shared = ViewMonitor().observe(data, pixels), ViewMonitor()
        assert shared.observe(data, pixels, reduced(pixels)).state == alone.state
