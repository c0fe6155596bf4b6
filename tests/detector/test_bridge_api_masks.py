"""The API's occlusion masks translated into the detector's mask JSON (bridge side only)."""

from __future__ import annotations

import re

import pytest

from detector.bridge.api_masks import translate_api_masks
from detector.masks import MAX_MASKS, masks_from_json


def test_api_masks_become_iou_rectangles_the_detector_accepts() -> None:
    translated = translate_api_masks(
        [
            {"id": 4, "pose_id": 11, "mask": "(0.1,0.2,0.3,0.4)", "created_at": "2026-01-01"},
            {"mask": "( 0, 0,1, 1)"},
        ]
    )
    assert translated.problems == []
    assert translated.masks == [
        {"name": "remote-4", "rect": [0.1, 0.2, 0.3, 0.4], "rule": "iou"},
        {"name": "remote-1", "rect": [0.0, 0.0, 1.0, 1.0], "rule": "iou"},
    ]
    # What the bridge publishes is exactly what the detector's masks reader takes.
    masks = masks_from_json(translated.masks)
    assert [(mask.name, mask.rule, mask.bounds) for mask in masks] == [
        ("remote-4", "iou", (0.1, 0.2, 0.3, 0.4)),
        ("remote-1", "iou", (0.0, 0.0, 1.0, 1.0)),
    ]
    assert translate_api_masks([]).masks == []


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"id": 1}, "'mask' string"),
        ("(0,0,1,1)", "'mask' string"),
        ({"mask": "0.1,0.2"}, "is not"),
        ({"mask": "(0.1,0.2,0.3)"}, "is not"),
        ({"mask": "(1.2.3,0,1,1)"}, "is not"),
        ({"mask": "(nan,0,1,1)"}, "is not"),
        # The real API accepts this text: a rectangle with no area.
        ({"mask": "(0.5,0.5,0.1,0.1)"}, "x1 < x2"),
        ({"mask": "(0,0,1.5,1)"}, "between 0 and 1"),
        ({"mask": "(0,0,1e400,1)"}, "between 0 and 1"),
    ],
)
def test_a_bad_api_mask_is_skipped_alone(item: object, reason: str) -> None:
    translated = translate_api_masks(
        [{"mask": "(0,0,0.1,0.1)"}, item, {"id": 9, "mask": "(0.5,0.5,0.6,0.6)"}]
    )
    assert [mask["name"] for mask in translated.masks] == ["remote-0", "remote-9"]
    assert len(translated.problems) == 1
    where = "API mask id 1" if isinstance(item, dict) and "id" in item else "API mask #2 (no id)"
    assert re.search(f"{re.escape(where)}.*{reason}", translated.problems[0]), translated.problems


def test_a_repeated_id_keeps_the_first_mask() -> None:
    translated = translate_api_masks(
        [{"id": 9, "mask": "(0,0,0.1,0.1)"}, {"id": 9, "mask": "(0.5,0.5,0.6,0.6)"}]
    )
    assert translated.masks == [{"name": "remote-9", "rect": [0, 0, 0.1, 0.1], "rule": "iou"}]
    assert translated.problems == ["API mask id 9: the name 'remote-9' is already used"]


def test_odd_ids_and_long_texts_stay_short() -> None:
    translated = translate_api_masks(
        [{"id": {"x": 1}, "mask": "(0,0,0.1,0.1)"}, {"id": True, "mask": "(" + "9" * 10_000}]
    )
    assert [mask["name"] for mask in translated.masks] == ["remote-0"]
    assert len(translated.problems[0]) < 150


def test_too_many_masks_keep_the_first_ones() -> None:
    items = [{"id": index, "mask": "(0,0,0.1,0.1)"} for index in range(MAX_MASKS + 3)]
    translated = translate_api_masks(items)
    assert [mask["name"] for mask in translated.masks] == [
        f"remote-{index}" for index in range(MAX_MASKS)
    ]
    assert translated.problems == [
        f"3 API mask(s) beyond the first {MAX_MASKS} skipped (the detector takes at most "
        f"{MAX_MASKS})"
    ]
    assert len(masks_from_json(translated.masks)) == MAX_MASKS


def test_an_answer_that_is_no_list_is_refused_whole() -> None:
    with pytest.raises(ValueError, match="not a JSON list but dict"):
        translate_api_masks({"mask": "(0,0,0.1,0.1)"})
