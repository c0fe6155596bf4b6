"""The `bboxes` field: every box list the detector can produce is accepted by the server."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from detector.bridge.bboxes import correct_boxes, format_bboxes
from tests.detector.fake_pyronear import bboxes_error

unit = st.floats(min_value=0, max_value=1, allow_nan=False)
anything = st.floats(allow_nan=True, allow_infinity=True)
box = st.lists(unit, min_size=5, max_size=5)
wild_box = st.lists(st.one_of(unit, anything), min_size=5, max_size=5)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(box, wild_box), max_size=12))
def test_any_box_list_formats_into_an_accepted_field(boxes: list[list[float]]) -> None:
    text = format_bboxes(boxes)
    assert bboxes_error(text) is None, text
    kept = correct_boxes(boxes)
    assert len(kept) <= 5
    confs = [b[4] for b in kept]
    assert confs == sorted(confs, reverse=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(box, max_size=12))
def test_corrections_only_clip_round_and_keep_the_most_confident(boxes: list[list[float]]) -> None:
    kept = correct_boxes(boxes)
    sendable = [
        b
        for b in boxes
        if round(min(b[0], 0.999), 3) < round(min(b[2], 0.999), 3)
        and round(min(b[1], 0.999), 3) < round(min(b[3], 0.999), 3)
    ]
    assert len(kept) == min(5, len(sendable))
    for corrected in kept:
        original = next(
            b
            for b in sendable
            if all(abs(min(v, 0.999) - c) <= 0.0005 for v, c in zip(b, corrected, strict=True))
        )
        assert all(0 <= v <= 0.999 for v in corrected)
        assert math.isclose(round(min(original[4], 0.999), 3), corrected[4])
    if len(sendable) > 5:
        threshold = sorted((b[4] for b in sendable), reverse=True)[4]
        assert all(round(min(threshold, 0.999), 3) <= c[4] + 1e-9 for c in kept)


def test_known_rejections_are_avoided() -> None:
    # 0.9996 would print as 1.000 (rejected); 1.0 as 1.000; 0.1234 has 4 decimals.
    assert format_bboxes([[0.1234, 0.2, 0.9996, 1.0, 1.0]]) == "[(0.123,0.200,0.999,0.999,0.999)]"
    assert format_bboxes([]) == "[]"
    assert format_bboxes([[0.0, 0.0, 0.5, 0.5, 0.0]]) == "[(0,0,0.500,0.500,0)]"


def test_degenerate_and_inverted_boxes_are_dropped() -> None:
    assert format_bboxes([[0.5, 0.5, 0.5, 0.6, 0.9]]) == "[]"
    assert format_bboxes([[0.5, 0.5, 0.5004, 0.6, 0.9]]) == "[]"  # equal after rounding
    assert format_bboxes([[0.6, 0.5, 0.4, 0.6, 0.9], [0.1, 0.1, 0.2, 0.2, 0.1]]) == (
        "[(0.100,0.100,0.200,0.200,0.100)]"
    )
    assert format_bboxes([[float("nan"), 0, 0.2, 0.2, 0.5], [0.1, 0.1]]) == "[]"


def test_at_most_five_by_confidence() -> None:
    boxes = [[0.1 * i, 0.1, 0.1 * i + 0.05, 0.2, 0.1 * i] for i in range(8)]
    assert format_bboxes(boxes) == (
        "[(0.700,0.100,0.750,0.200,0.700),(0.600,0.100,0.650,0.200,0.600),"
        "(0.500,0.100,0.550,0.200,0.500),(0.400,0.100,0.450,0.200,0.400),"
        "(0.300,0.100,0.350,0.200,0.300)]"
    )
