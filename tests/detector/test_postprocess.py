"""Post-processing of raw model output on hand-computed cases (DESIGN.md §5)."""

from __future__ import annotations

import numpy as np
import pytest

from detector.frames import Letterbox
from detector.postprocess import best_score, narrower_than, postprocess

# A 200x100 frame letterboxed into 64x64: scale 64/200 = 0.32, resized 64x32,
# pad_y = (64 - 32) / 2 = 16.
WIDE = Letterbox(scale=0.32, pad_x=0, pad_y=16, width=200, height=100, input_w=64, input_h=64)
# A 100x200 frame: resized 32x64, pad_x 16.
TALL = Letterbox(scale=0.32, pad_x=16, pad_y=0, width=100, height=200, input_w=64, input_h=64)


def output(*candidates: tuple[float, ...]) -> np.ndarray:
    """[4+nc, N] float32 from candidate rows (cx, cy, w, h, score...)."""
    return np.array(candidates, dtype=np.float32).T.copy()


def test_unpad_and_normalise_horizontal_padding() -> None:
    # Box cx=32 cy=32 w=16 h=8 in letterbox px: x 24..40, y 28..36.
    # x: (24 - 0) / 0.32 / 200 = 0.375, 40 / 0.32 / 200 = 0.625
    # y: (28 - 16) / 0.32 / 100 = 0.375, (36 - 16) / 0.32 / 100 = 0.625
    result = postprocess(output((32, 32, 16, 8, 0.9)), WIDE, [0])
    assert result.dtype == np.float32 and result.shape == (1, 5)
    np.testing.assert_allclose(result, [[0.375, 0.375, 0.625, 0.625, 0.9]], atol=1e-6)


def test_unpad_and_normalise_vertical_padding() -> None:
    # x: (24 - 16) / 0.32 / 100 = 0.25, (40 - 16) / 0.32 / 100 = 0.75 (width 0.5 > 0.4,
    # so the width limit is lifted here)
    # y: 28 / 0.32 / 200 = 0.4375, 36 / 0.32 / 200 = 0.5625
    result = postprocess(output((32, 32, 16, 8, 0.9)), TALL, [0], max_bbox_width=1.0)
    np.testing.assert_allclose(result, [[0.25, 0.4375, 0.75, 0.5625, 0.9]], atol=1e-6)


def test_score_filter_is_strict() -> None:
    # Exactly 0.05 is not "> 0.05"; 0.0501 is.
    result = postprocess(output((20, 32, 4, 4, 0.05), (40, 32, 4, 4, 0.0501)), WIDE, [0])
    assert result[:, 4].tolist() == pytest.approx([0.0501])


def test_nms_iou0_keeps_best_of_overlapping_and_sorts() -> None:
    # 0.6 (x 16..24) and 0.7 (x 18..26) overlap: 0.7 wins. 0.2 (x 48..52) is alone.
    result = postprocess(
        output((20, 32, 8, 8, 0.6), (50, 32, 4, 4, 0.2), (22, 32, 8, 8, 0.7)), WIDE, [0]
    )
    assert result[:, 4].tolist() == pytest.approx([0.7, 0.2])


def test_nms_touching_boxes_both_kept() -> None:
    # x 16..24 and x 24..32 share the edge x = 24: IoU 0, no suppression.
    result = postprocess(output((20, 32, 8, 8, 0.6), (28, 32, 8, 8, 0.5)), WIDE, [0])
    assert result[:, 4].tolist() == pytest.approx([0.6, 0.5])


def test_max_width_limits_width_only() -> None:
    # Width 0.4 of a 200 px frame = 80 px = 80 * 0.32 = 25.6 letterbox px:
    # 25.5 px → 25.5 / 0.32 / 200 = 0.3984 is kept, 26 px → 0.40625 is dropped.
    # The kept box spans x 0.25..25.75 → 0.25 / 0.32 / 200 = 0.00390625 .. 25.75 / 0.32 / 200
    # = 0.40234375, and is 32 px tall, all of the 32 px image band (y 16..48): height 1.0.
    wide_ok = (13, 32, 25.5, 32, 0.5)
    too_wide = (50, 32, 26.0, 8, 0.9)
    result = postprocess(output(wide_ok, too_wide), WIDE, [0], max_bbox_width=0.4)
    assert result[:, 4].tolist() == pytest.approx([0.5])
    np.testing.assert_allclose(result[0, :4], [0.00390625, 0.0, 0.40234375, 1.0], atol=1e-6)


def test_width_is_measured_after_clipping() -> None:
    # cx 0, w 30: x -15..15 → clipped to 0..15 → 15 / 0.32 / 200 = 0.234 <= 0.4: kept.
    result = postprocess(output((0, 32, 30, 4, 0.5)), WIDE, [0])
    np.testing.assert_allclose(result[0, [0, 2]], [0.0, 15 / 0.32 / 200], atol=1e-6)


def test_score_is_best_of_chosen_classes() -> None:
    # Two classes; candidate 1 scores (0.1, 0.8), candidate 2 (0.3, 0.0).
    raw = output((20, 32, 4, 4, 0.1, 0.8), (44, 32, 4, 4, 0.3, 0.0))
    assert postprocess(raw, WIDE, [0])[:, 4].tolist() == pytest.approx([0.3, 0.1])
    # max(0.1, 0.8) = 0.8, max(0.3, 0.0) = 0.3
    assert postprocess(raw, WIDE, [0, 1])[:, 4].tolist() == pytest.approx([0.8, 0.3])
    # Class 1 only: 0.0 is filtered out.
    assert postprocess(raw, WIDE, [1])[:, 4].tolist() == pytest.approx([0.8])


def test_clipped_to_frame() -> None:
    # cx 4 cy 16 w 16 h 8: x -4..12 → x1 clipped to 0; y 12..20 → (12 - 16) < 0 → y1 0,
    # y2 (20 - 16) / 0.32 / 100 = 0.125.
    result = postprocess(output((4, 16, 16, 8, 0.9)), WIDE, [0])
    np.testing.assert_allclose(result[0, :4], [0.0, 0.0, 12 / 0.32 / 200, 0.125], atol=1e-6)


def test_nothing_above_threshold() -> None:
    result = postprocess(output((32, 32, 4, 4, 0.01)), WIDE, [0])
    assert result.shape == (0, 5) and result.dtype == np.float32


def test_full_size_output_with_few_candidates() -> None:
    # The real model emits 21504 candidates at 1024; only those above 0.05 matter.
    letterbox = Letterbox(
        scale=0.8, pad_x=0, pad_y=112, width=1280, height=1000, input_w=1024, input_h=1024
    )
    raw = np.zeros((5, 21504), dtype=np.float32)
    raw[:4] = 512
    raw[4] = 0.04
    raw[:, 100] = (512, 512, 64, 64, 0.9)
    raw[:, 20000] = (900, 400, 32, 32, 0.3)
    result = postprocess(raw, letterbox, [0])
    # x (512 ± 32) / 0.8 / 1280 = 0.46875 .. 0.53125; y (512 ± 32 - 112) / 0.8 / 1000 = 0.46 .. 0.54
    # x (900 ± 16) / 0.8 / 1280 = 0.86328125 .. 0.89453125; y (400 ± 16 - 112) / 0.8 / 1000
    # = 0.34 .. 0.38
    np.testing.assert_allclose(
        result,
        [[0.46875, 0.46, 0.53125, 0.54, 0.9], [0.86328125, 0.34, 0.89453125, 0.38, 0.3]],
        atol=1e-6,
    )


def test_no_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one class"):
        postprocess(output((32, 32, 4, 4, 0.9)), WIDE, [])


def test_width_cap_is_strict_and_optional() -> None:
    # A 200x100 frame: x 16..48 letterbox px → 0.25..0.75, width exactly 0.5.
    raw = output((32, 32, 32, 8, 0.9))
    # Pyronear keeps width < max: exactly at the cap is dropped.
    assert postprocess(raw, WIDE, [0], max_bbox_width=0.5).shape == (0, 5)
    assert len(postprocess(raw, WIDE, [0], max_bbox_width=0.5 + 1e-6)) == 1
    # No cap by default (each camera applies its scene's).
    assert len(postprocess(raw, WIDE, [0])) == 1
    assert narrower_than(np.array([[0.25, 0, 0.75, 1, 0.9]]), 0.5).tolist() == [False]


def test_equal_scores_come_out_later_candidate_first() -> None:
    # Two disjoint candidates with the same score: Pyronear's stable ascending sort, reversed.
    result = postprocess(output((10, 32, 4, 4, 0.5), (50, 32, 4, 4, 0.5)), WIDE, [0])
    assert result[:, 0].tolist() == pytest.approx([48 / 64, 8 / 64])


def test_best_score_reports_what_the_threshold_hid() -> None:
    raw = output((32, 32, 4, 4, 0.03, 0.2), (20, 20, 4, 4, 0.01, 0.0))
    assert best_score(raw, [0]) == pytest.approx(0.03)
    assert best_score(raw, [0, 1]) == pytest.approx(0.2)
    assert best_score(np.zeros((5, 0), dtype=np.float32), [0]) == 0.0
