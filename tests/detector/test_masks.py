"""Occlusion masks: both rules, polygons and the JSON forms, on hand-computed cases."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from detector.masks import (
    Mask,
    clip_to_rect,
    fraction_inside,
    masking,
    masks_from_json,
    masks_to_json,
    polygon_area,
)

BIG = Mask.rect("big", 0.0, 0.0, 0.8, 0.8)
SMALL_BOX = np.array([[0.3, 0.3, 0.35, 0.35, 0.9]], dtype=np.float32)
# An L-shaped (concave) zone: the unit square minus the top-right quarter 0.5..1 x 0..0.5.
ELL = ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))


def apply_masks(
    boxes: NDArray[np.float32],
    masks: Sequence[Mask],
    *,
    iou_thresh: float = 0.1,
    inside_fraction: float = 0.5,
) -> NDArray[np.float32]:
    """The boxes no enabled mask removes, in their order (what the pipeline keeps)."""
    hits = masking(boxes, masks, iou_thresh=iou_thresh, inside_fraction=inside_fraction)
    if all(hit is None for hit in hits):
        return boxes
    kept: NDArray[np.float32] = boxes[np.array([hit is None for hit in hits], dtype=bool)]
    return kept


def test_small_box_in_big_mask_kept_by_iou_rule_dropped_by_inside_rule() -> None:
    # IoU = (0.05 * 0.05) / (0.8 * 0.8) = 0.0025 / 0.64 ≈ 0.0039 <= 0.1: Pyronear's rule keeps it.
    iou_mask = Mask.rect("big", 0.0, 0.0, 0.8, 0.8, rule="iou")
    assert len(apply_masks(SMALL_BOX, [iou_mask])) == 1
    # Wholly inside the zone (fraction 1 > 0.5): the exclusion-zone rule drops it.
    assert len(apply_masks(SMALL_BOX, [BIG])) == 0


def test_iou_rule_threshold() -> None:
    mask = Mask.rect("m", 0.0, 0.0, 0.1, 0.1, rule="iou")
    # Box 0..0.1 x 0..0.2: IoU = 0.01 / 0.02 = 0.5 > 0.1 → dropped.
    dropped = np.array([[0.0, 0.0, 0.1, 0.2, 0.5]], dtype=np.float32)
    # Box 0..0.1 x 0..1: IoU = 0.01 / 0.1 = 0.1, not > 0.1 → kept.
    kept = np.array([[0.0, 0.0, 0.1, 1.0, 0.5]], dtype=np.float32)
    assert len(apply_masks(dropped, [mask])) == 0
    assert len(apply_masks(kept, [mask])) == 1
    # A lower threshold drops it: 0.1 > 0.05.
    assert len(apply_masks(kept, [mask], iou_thresh=0.05)) == 0


def test_iou_rule_on_a_polygon_uses_its_bounding_rectangle() -> None:
    # The triangle (0,0) (0.2,0) (0,0.2) has the bounding rectangle 0..0.2 x 0..0.2.
    # The box 0.15..0.2 x 0.15..0.2 lies outside the triangle but inside the rectangle:
    # IoU = 0.0025 / 0.04 = 0.0625 <= 0.1 → kept; a box 0.1..0.2 x 0.1..0.2 (outside the
    # triangle too, but for its corner point): IoU = 0.01 / 0.04 = 0.25 > 0.1 → dropped.
    triangle = Mask("t", ((0.0, 0.0), (0.2, 0.0), (0.0, 0.2)), rule="iou")
    rows = np.array([[0.15, 0.15, 0.2, 0.2, 0.9], [0.1, 0.1, 0.2, 0.2, 0.8]], np.float32)
    assert apply_masks(rows, [triangle]).tolist() == rows[:1].tolist()


def test_box_half_inside_a_concave_polygon() -> None:
    # Box 0.25..0.75 x 0.25..0.5 (area 0.125): its left half 0.25..0.5 lies in the L, its
    # right half in the notch → 0.0625 / 0.125 = 0.5.
    box = [0.25, 0.25, 0.75, 0.5]
    assert fraction_inside(box, ELL) == pytest.approx(0.5)
    # Box 0.25..0.75 x 0.25..0.75 (area 0.25): only the notch part 0.5..0.75 x 0.25..0.5
    # (0.0625) is outside → 0.1875 / 0.25 = 0.75.
    assert fraction_inside([0.25, 0.25, 0.75, 0.75], ELL) == pytest.approx(0.75)
    # A box in the notch only is not inside at all.
    assert fraction_inside([0.6, 0.1, 0.9, 0.4], ELL) == pytest.approx(0.0)
    rows = np.array(
        [[*box, 0.9], [0.6, 0.1, 0.9, 0.4, 0.8], [0.25, 0.25, 0.75, 0.75, 0.7]], np.float32
    )
    # Exactly half is not "more than half": kept; the notch box kept; the 0.75 box dropped.
    assert apply_masks(rows, [Mask("ell", ELL)]).tolist() == rows[:2].tolist()
    # With inside_fraction 0.4 the half-inside box goes as well (0.5 > 0.4).
    assert len(apply_masks(rows, [Mask("ell", ELL)], inside_fraction=0.4)) == 1


def test_clip_of_a_concave_polygon_has_the_exact_area() -> None:
    # A U shape 0..3 x 0..2 with the slot 1..2 x 1..2 cut from its top: area 6 - 1 = 5.
    u_shape = ((0, 0), (3, 0), (3, 2), (2, 2), (2, 1), (1, 1), (1, 2), (0, 2))
    assert polygon_area(u_shape) == pytest.approx(5.0)
    # Clipped to the band 0..3 x 0.5..2: both arms (1 x 1.5 each) and the base strip
    # between them (1 x 0.5) → 1.5 + 1.5 + 0.5 = 3.5, although clipping leaves the two
    # arms joined by a zero-width bridge.
    assert polygon_area(clip_to_rect(u_shape, 0, 0.5, 3, 2)) == pytest.approx(3.5)
    # Entirely outside → nothing left.
    assert clip_to_rect(u_shape, 4, 4, 5, 5) == []


def test_disabled_mask_does_nothing() -> None:
    mask = Mask("off", BIG.polygon, enabled=False)
    assert len(apply_masks(SMALL_BOX, [mask])) == 1
    assert len(apply_masks(SMALL_BOX, [mask, BIG])) == 0


def test_no_masks_or_no_boxes() -> None:
    assert apply_masks(SMALL_BOX, []) is SMALL_BOX
    empty = np.zeros((0, 5), dtype=np.float32)
    assert apply_masks(empty, [BIG]).shape == (0, 5)


def test_json_round_trip() -> None:
    data = [{"name": "chimney", "polygon": [[0.1, 0.1], [0.2, 0.1], [0.2, 0.3]], "rule": "iou"}]
    masks = masks_from_json(data)
    assert masks == [Mask("chimney", ((0.1, 0.1), (0.2, 0.1), (0.2, 0.3)), "iou", True)]
    assert masks_to_json(masks) == [{**data[0], "enabled": True}]
    assert masks_from_json(masks_to_json(masks)) == masks
    rect = masks_from_json([{"name": "road", "rect": [0, 0.8, 1, 1], "enabled": False}])
    assert rect[0].bounds == (0.0, 0.8, 1.0, 1.0)
    assert rect[0].rule == "inside" and not rect[0].enabled
    assert masks_from_json([]) == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"name": "x"}, "must be a JSON list"),
        (["x"], r"masks\[0\]: expected an object"),
        ([{"polygon": [[0, 0], [1, 0], [1, 1]]}], r"masks\[0\]\.name"),
        ([{"name": " ", "polygon": [[0, 0], [1, 0], [1, 1]]}], r"masks\[0\]\.name: .*non-empty"),
        ([{"name": "x", "polygon": [[0, 0], [1, 0]]}], r"masks\[0\]\.polygon: .*at least 3"),
        ([{"name": "x", "polygon": [[0, 0], [1.5, 0], [1, 1]]}], r"polygon\[1\].*outside"),
        ([{"name": "x", "polygon": [[0, 0], [1, -0.1], [1, 1]]}], r"polygon\[1\].*outside"),
        ([{"name": "x", "polygon": [[0, 0], [1, 0], [1, True]]}], r"polygon\[2\]: expected"),
        ([{"name": "x", "polygon": [[0, 0], [1, 0], "1,1"]}], r"polygon\[2\]: expected"),
        ([{"name": "x", "polygon": [[0, 0], [1, 0], [1, 1]], "rule": "over"}], r"\.rule: 'over'"),
        ([{"name": "x", "polygon": [[0, 0], [1, 0], [1, 1]], "enabled": "yes"}], r"\.enabled"),
        ([{"name": "x", "rect": [0.5, 0, 0.1, 1]}], r"\.rect: needs x1 < x2"),
        ([{"name": "x", "rect": [0, 0, 1]}], r"\.rect: expected"),
        ([{"name": "x"}], "exactly one of"),
        ([{"name": "x", "rect": [0, 0, 1, 1], "polygon": [[0, 0], [1, 0], [1, 1]]}], "exactly one"),
        ([{"name": "x", "rect": [0, 0, 1, 1], "colour": "red"}], "unknown key.*colour"),
        (
            [{"name": "a", "rect": [0, 0, 1, 1]}, {"name": "a", "rect": [0, 0, 1, 1]}],
            r"masks\[1\]\.name: 'a' is already used by masks\[0\].*unique",
        ),
        ([{"name": "x", "polygon": [[0, 0], [0.5, 0], [1, 0]]}], "no area"),
    ],
)
def test_json_errors_name_the_problem(payload: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        masks_from_json(payload)


unit = st.floats(0, 1, allow_nan=False)
side = st.floats(0.01, 0.5)


@given(
    st.lists(st.tuples(unit, unit, side, side, unit), max_size=10),
    st.lists(st.lists(st.tuples(unit, unit), min_size=3, max_size=6), max_size=3),
    st.sampled_from(["iou", "inside"]),
)
def test_masks_never_add_or_change_boxes(
    rows: list[tuple[float, ...]], polygons: list[list[tuple[float, float]]], rule: str
) -> None:
    boxes = np.array(
        [[x, y, min(1, x + w), min(1, y + h), c] for x, y, w, h, c in rows], dtype=np.float32
    ).reshape(-1, 5)
    masks = [
        Mask(f"m{i}", tuple(points), rule)  # type: ignore[arg-type]
        for i, points in enumerate(polygons)
    ]
    kept = apply_masks(boxes, masks)
    assert len(kept) <= len(boxes)
    # The kept rows are an ordered sub-sequence of the input, unchanged.
    remaining = iter(boxes.tolist())
    assert all(row in remaining for row in kept.tolist())
    # Adding a mask can only remove more.
    assert len(apply_masks(boxes, [*masks, BIG])) <= len(kept)


@given(st.tuples(unit, unit, side, side))
def test_fraction_inside_is_a_fraction(box: tuple[float, float, float, float]) -> None:
    x, y, w, h = box
    assert -1e-9 <= fraction_inside([x, y, x + w, y + h], ELL) <= 1 + 1e-9


def test_masking_names_the_first_mask_that_removes_each_box() -> None:
    boxes = np.array(
        [
            [0.0, 0.0, 0.1, 0.1, 0.9],  # inside both zones: the first one named
            [0.5, 0.5, 0.6, 0.6, 0.9],  # IoU with the remote rectangle > 0.1
            [0.8, 0.8, 0.9, 0.9, 0.9],  # in no zone
        ],
        dtype=np.float32,
    )
    masks = [
        Mask.rect("corner", 0.0, 0.0, 0.2, 0.2),
        Mask.rect("remote-1", 0.45, 0.45, 0.65, 0.65, "iou"),
        Mask.rect("big", 0.0, 0.0, 0.3, 0.3),
        Mask("off", Mask.rect("off", 0.7, 0.7, 1.0, 1.0).polygon, enabled=False),
    ]
    assert masking(boxes, masks) == ["corner", "remote-1", None]
    assert apply_masks(boxes, masks).tolist() == boxes[2:].tolist()


def test_self_intersecting_zone_is_refused() -> None:
    # A bow tie: its two lobes cancel in the shoelace area, so "inside" would mean nothing.
    bow_tie = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
    with pytest.raises(ValueError, match=r"masks\[0\]\.polygon: the polygon's edges 1 and 3 cross"):
        masks_from_json([{"name": "bow", "polygon": bow_tie}])
    concave = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.5], [0.9, 0.9], [0.1, 0.9]]
    assert len(masks_from_json([{"name": "ok", "polygon": concave}])[0].polygon) == 5
