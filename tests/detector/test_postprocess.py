"""Post-processing of raw model output on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from detector.frames import Letterbox
from detector.postprocess import postprocess

# A 200x100 frame letterboxed into 64x64: scale 0.32, resized 64x32, pad_y 16.
WIDE = Letterbox(scale=0.32, pad_x=0, pad_y=16, width=200, height=100, input_w=64, input_h=64)
# A 100x200 frame: resized 32x64, pad_x 16.
TALL = Letterbox(scale=0.32, pad_x=16, pad_y=0, width=100, height=200, input_w=64, input_h=64)


def output(*candidates: tuple[float, ...]) -> np.ndarray:
    """[4+nc, N] from rows (cx, cy, w, h, score...)."""
    return np.array(candidates, dtype=np.float32).T.copy()


def test_unpad_and_normalise_horizontal_padding() -> None:
    # Box cx=32 cy=32 w=16 h=8 in letterbox px: x 24..40, y 28..36.
    # x: 24 / 0.32 / 200 = 0.375, 40 / 0.32 / 200 = 0.625
    # y: (28 - 16) / 0.32 / 100 = 0.375, (36 - 16) / 0.32 / 100 = 0.625
    result = postprocess(output((32, 32, 16, 8, 0.9)), WIDE, [0])
    np.testing.assert_allclose(result, [[0.375, 0.375, 0.625, 0.625, 0.9]], atol=1e-6)


def test_unpad_and_normalise_vertical_padding() -> None:
    # x: (24 - 16) / 0.32 / 100 = 0.25, (40 - 16) / 0.32 / 100 = 0.75
    # y: 28 / 0.32 / 200 = 0.4375, 36 / 0.32 / 200 = 0.5625
    result = postprocess(output((32, 32, 16, 8, 0.9)), TALL, [0], max_bbox_width=1.0)
    np.testing.assert_allclose(result, [[0.25, 0.4375, 0.75, 0.5625, 0.9]], atol=1e-6)


def test_score_filter_is_strict() -> None:
    result = postprocess(output((20, 32, 4, 4, 0.05), (40, 32, 4, 4, 0.0501)), WIDE, [0])
    assert result[:, 4].tolist() == pytest.approx([0.0501])


def test_nms_iou0_keeps_best_of_overlapping() -> None:
    result = postprocess(
        output((20, 32, 8, 8, 0.6), (22, 32, 8, 8, 0.7), (50, 32, 4, 4, 0.2)), WIDE, [0]
    )
    assert result[:, 4].tolist() == pytest.approx([0.7, 0.2])


def test_max_width_limits_width_only() -> None:
    # Width 0.4 of a 200 px frame = 80 px = 25.6 letterbox px: 25.5 px (0.398) is kept,
    # 26 px (0.406) dropped. A box as tall as the frame is kept: height is not limited.
    wide_ok = (13, 32, 25.5, 32, 0.5)
    too_wide = (50, 32, 26.0, 8, 0.9)
    result = postprocess(output(wide_ok, too_wide), WIDE, [0], max_bbox_width=0.4)
    assert result[:, 4].tolist() == pytest.approx([0.5])
    np.testing.assert_allclose(result[0, [1, 3]], [0.0, 1.0], atol=1e-6)


def test_score_is_best_of_chosen_classes() -> None:
    raw = output((20, 32, 4, 4, 0.1, 0.8), (44, 32, 4, 4, 0.3, 0.0))
    assert postprocess(raw, WIDE, [0])[:, 4].tolist() == pytest.approx([0.3, 0.1])
    assert postprocess(raw, WIDE, [0, 1])[:, 4].tolist() == pytest.approx([0.8, 0.3])
    assert postprocess(raw, WIDE, [1])[:, 4].tolist() == pytest.approx([0.8])


def test_clipped_to_frame() -> None:
    # A box reaching into the padding is clipped to the frame.
    result = postprocess(output((4, 16, 16, 8, 0.9)), WIDE, [0])
    assert result[0, 0] == 0.0 and result[0, 1] == 0.0


def test_nothing_above_threshold() -> None:
    assert postprocess(output((32, 32, 4, 4, 0.01)), WIDE, [0]).shape == (0, 5)
