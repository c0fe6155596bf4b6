"""Occlusion masks: both rules, polygons and the JSON forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector.masks import (
    Mask,
    apply_masks,
    inside_fraction,
    masks_from_json,
    masks_to_json,
    parse_remote_masks,
)

BIG = Mask.rect("big", 0.0, 0.0, 0.8, 0.8)
SMALL_BOX = np.array([[0.3, 0.3, 0.35, 0.35, 0.9]], dtype=np.float32)


def test_small_box_in_big_mask_kept_by_iou_rule_dropped_by_inside_rule() -> None:
    # IoU = 0.0025 / 0.64 ≈ 0.004 <= 0.1: Pyronear's rule keeps it.
    iou_mask = Mask.rect("big", 0.0, 0.0, 0.8, 0.8, rule="iou")
    assert len(apply_masks(SMALL_BOX, [iou_mask])) == 1
    # Wholly inside the zone: the exclusion-zone rule drops it.
    assert len(apply_masks(SMALL_BOX, [BIG])) == 0


def test_iou_rule_threshold() -> None:
    mask = Mask.rect("m", 0.0, 0.0, 0.1, 0.1, rule="iou")
    # Box 0..0.1 x 0..0.2: IoU = 0.01 / 0.02 = 0.5 → dropped.
    dropped = np.array([[0.0, 0.0, 0.1, 0.2, 0.5]], dtype=np.float32)
    # Box 0..0.1 x 0..1.1 would be 0.01 / 0.11 ≈ 0.09 → kept.
    kept = np.array([[0.0, 0.0, 0.1, 1.0, 0.5]], dtype=np.float32)
    assert len(apply_masks(dropped, [mask])) == 0
    assert len(apply_masks(kept, [mask])) == 1


def test_concave_polygon_half_inside() -> None:
    # An L-shaped zone: the square 0..1 minus the top-right quarter 0.5..1 x 0..0.5.
    ell = ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))
    # Box 0.25..0.75 x 0.25..0.5: its right half lies in the notch, left half inside.
    box = [0.25, 0.25, 0.75, 0.5]
    assert inside_fraction(box, ell) == pytest.approx(0.5)
    # A box in the notch only is not inside at all.
    assert inside_fraction([0.6, 0.1, 0.9, 0.4], ell) == pytest.approx(0.0)
    mask = Mask("ell", ell)
    boxes = np.array(
        [[*box, 0.9], [0.6, 0.1, 0.9, 0.4, 0.9], [0.1, 0.6, 0.3, 0.9, 0.9]], np.float32
    )
    # Exactly half is not "more than half": kept; the notch box kept; the inner box dropped.
    assert apply_masks(boxes, [mask]).tolist() == boxes[:2].tolist()


def test_disabled_mask_does_nothing() -> None:
    mask = Mask("off", BIG.polygon, enabled=False)
    assert len(apply_masks(SMALL_BOX, [mask])) == 1


def test_remote_masks_from_api() -> None:
    masks = parse_remote_masks([{"id": 4, "mask": "(0.1,0.2,0.3,0.4)"}])
    assert masks[0].rule == "iou" and masks[0].bounds == (0.1, 0.2, 0.3, 0.4)
    assert masks[0].name == "remote-4"
    for bad in ({"id": 1}, {"mask": "0.1,0.2"}, {"mask": "(0.3,0.2,0.1,0.4)"}):
        with pytest.raises(ValueError, match="remote mask 0"):
            parse_remote_masks([bad])


def test_json_round_trip() -> None:
    data = [{"name": "chimney", "polygon": [[0.1, 0.1], [0.2, 0.1], [0.2, 0.3]], "rule": "iou"}]
    masks = masks_from_json(data)
    assert masks_to_json(masks) == [{**data[0], "enabled": True}]
    rect = masks_from_json([{"name": "road", "rect": [0.0, 0.8, 1.0, 1.0], "enabled": False}])
    assert rect[0].bounds == (0.0, 0.8, 1.0, 1.0) and not rect[0].enabled


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"name": "x"}, "must be a JSON list"),
        ([{"polygon": [[0, 0], [1, 0], [1, 1]]}], r"masks\[0\]\.name"),
        ([{"name": "x", "polygon": [[0, 0], [1, 0]]}], "at least 3"),
        ([{"name": "x", "polygon": [[0, 0], [1.5, 0], [1, 1]]}], r"polygon\[1\].*outside"),
        ([{"name": "x", "polygon": [[0, 0], [1, 0], [1, 1]], "rule": "over"}], "rule"),
        ([{"name": "x", "rect": [0.5, 0, 0.1, 1]}], "x1 < x2"),
        ([{"name": "x", "rect": [0, 0, 1, 1], "polygon": [[0, 0], [1, 0], [1, 1]]}], "exactly one"),
        ([{"name": "x", "rect": [0, 0, 1, 1], "colour": "red"}], "unknown key"),
        ([{"name": "x", "rect": [0, 0, 1, 1]}, {"name": "x", "rect": [0, 0, 1, 1]}], "unique"),
        ([{"name": "x", "polygon": [[0, 0], [1, 0], [2, 0]]}], "outside"),
        ([{"name": "x", "polygon": [[0, 0], [0.5, 0], [1, 0]]}], "no area"),
    ],
)
def test_json_errors_name_the_problem(payload: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        masks_from_json(payload)


unit = st.floats(0, 1, allow_nan=False)


@given(
    st.lists(st.tuples(unit, unit, st.floats(0.01, 0.5), st.floats(0.01, 0.5), unit), max_size=10),
    st.lists(st.tuples(unit, unit, st.floats(0.01, 0.5), st.floats(0.01, 0.5)), max_size=3),
    st.sampled_from(["iou", "inside"]),
)
def test_masks_only_remove_boxes(
    rows: list[tuple[float, ...]], rects: list[tuple[float, ...]], rule: str
) -> None:
    boxes = np.array(
        [[x, y, min(1, x + w), min(1, y + h), c] for x, y, w, h, c in rows], dtype=np.float32
    ).reshape(-1, 5)
    masks = [
        Mask.rect(f"m{i}", x, y, min(1, x + w), min(1, y + h), rule)  # type: ignore[arg-type]
        for i, (x, y, w, h) in enumerate(rects)
    ]
    kept = apply_masks(boxes, masks)
    assert len(kept) <= len(boxes)
    for row in kept:
        assert any((row == original).all() for original in boxes)
