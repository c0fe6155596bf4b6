"""The nearby guard's measure on generated frames: still content (noise, shake, exposure) does not
change, smoke-like content does."""

from __future__ import annotations

import cv2
import numpy as np

from detector.guard import ChangeGuard, GuardSettings, box_changes, guard_thumbnail

BOX = np.array([[0.42, 0.4, 0.58, 0.7, 0.8]], dtype=np.float32)  # around the plume below


def scene(rng: np.random.Generator) -> np.ndarray:
    """A 1280x720 textured landscape (BGR), the same for every call with the same seed."""
    base = rng.integers(40, 200, (18, 32, 3)).astype(np.uint8)
    return cv2.resize(base, (1280, 720), interpolation=cv2.INTER_CUBIC)


def captured(image: np.ndarray, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """The view as a live camera captures it: exposure, a sub-pixel shake, sensor noise."""
    shift = np.float32([[1, 0, rng.uniform(-1.5, 1.5)], [0, 1, rng.uniform(-1.5, 1.5)]])
    moved = cv2.warpAffine(image.astype(np.float32), shift, (1280, 720), borderMode=1)
    noisy = moved * gain + rng.normal(0, 2.5, moved.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def plume(image: np.ndarray, step: int) -> np.ndarray:
    """A grey-white plume rising from the box's bottom, taller and wider at each step."""
    out = image.astype(np.float32)
    height = 60 + 40 * step
    yy, xx = np.mgrid[0:720, 0:1280]
    column = np.exp(-(((xx - 640) / (40 + 15 * step)) ** 2)) * ((yy > 500 - height) & (yy < 500))
    alpha = 0.8 * column[..., None]
    return np.clip(out * (1 - alpha) + 215 * alpha, 0, 255).astype(np.uint8)


def test_still_content_does_not_change_under_noise_shake_and_exposure() -> None:
    rng = np.random.default_rng(1)
    view = scene(rng)
    then = guard_thumbnail(captured(view, rng))
    for gain in (1.0, 0.9, 1.15):  # an auto-exposure step is no change
        now = guard_thumbnail(captured(view, rng, gain))
        assert box_changes(now, then, BOX)[0] < 2.0, gain


def test_a_rising_plume_changes_its_box() -> None:
    rng = np.random.default_rng(2)
    view = scene(rng)
    then = guard_thumbnail(captured(plume(view, 0), rng))
    now = guard_thumbnail(captured(plume(view, 3), rng))
    assert box_changes(now, then, BOX)[0] > 10.0
    # Outside the plume's box, the same frames do not change.
    corner = np.array([[0.0, 0.0, 0.2, 0.2, 0.8]], dtype=np.float32)
    assert box_changes(now, then, corner)[0] < 2.0


def test_guard_compares_with_the_frame_lookback_frames_back() -> None:
    rng = np.random.default_rng(3)
    view = scene(rng)
    guard = ChangeGuard(GuardSettings(min_change=4.0, lookback=3))
    # The first frame has nothing to compare with: its boxes are kept.
    first = guard.check(captured(view, rng), BOX)
    assert np.isnan(first).all() and guard.passes(first).all()
    # A still view: nothing changes, the box is dropped.
    still = guard.check(captured(view, rng), BOX)
    assert not guard.passes(still).any()
    # A plume growing over three frames: compared with three frames back, it passes.
    changes = [guard.check(captured(plume(view, step), rng), BOX)[0] for step in range(3)]
    assert changes[-1] > 4.0
    guard.reset()
    assert np.isnan(guard.check(captured(view, rng), BOX)).all()


def test_the_pipelines_reduced_frame_gives_the_guard_the_same_thumbnail() -> None:
    from detector.view import reduced

    image = captured(scene(np.random.default_rng(5)), np.random.default_rng(6))
    assert np.array_equal(guard_thumbnail(image, reduced(image)), guard_thumbnail(image))
    # A frame narrower than the guard's thumbnail is not reduced; the guard scales it itself.
    narrow = image[:90, :120]
    assert np.array_equal(guard_thumbnail(narrow, reduced(narrow)), guard_thumbnail(narrow))
