"""Box geometry: IoU, overlap and NMS at IoU 0 on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from detector import geometry
from detector.geometry import iou_matrix, nms_iou0, nms_iou0_indices, overlap_matrix


def boxes(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def test_iou_matrix_hand_computed() -> None:
    a = np.array([[0, 0, 2, 2]], dtype=np.float64)
    b = np.array([[1, 1, 3, 3], [2, 0, 4, 2], [0, 0, 2, 2], [0, 0, 0, 0]], dtype=np.float64)
    # vs (1,1,3,3): inter 1x1 = 1, union 4 + 4 - 1 = 7 → 1/7.
    # vs (2,0,4,2): shares only the edge x = 2 → 0.  vs itself → 1.
    # vs a zero-area box: union 4, inter 0 → 0 (no division by zero anywhere).
    np.testing.assert_allclose(iou_matrix(a, b), [[1 / 7, 0.0, 1.0, 0.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)


def test_overlap_agrees_with_iou_and_ignores_touching() -> None:
    a = np.array([[0, 0, 2, 2, 0.9]])
    b = np.array([[1, 1, 3, 3, 0.1], [2, 0, 4, 2, 0.1], [2, 2, 3, 3, 0.1], [0, 0, 0, 0, 0.1]])
    # Overlap, shared edge, shared corner, a point.
    assert overlap_matrix(a, b).tolist() == [[True, False, False, False]]
    assert (overlap_matrix(a, b) == (iou_matrix(a, b) > 0)).all()


def test_nms_keeps_best_of_overlapping_pair_and_disjoint_boxes() -> None:
    low = [0.0, 0.0, 0.2, 0.2, 0.6]
    high = [0.1, 0.1, 0.3, 0.3, 0.7]
    far = [0.5, 0.5, 0.6, 0.6, 0.2]
    kept = nms_iou0(boxes(low, high, far))
    # Sorted by score: 0.7 (suppresses 0.6), then 0.2 (disjoint).
    assert kept[:, 4].tolist() == pytest.approx([0.7, 0.2])
    assert nms_iou0_indices(boxes(low, high, far)).tolist() == [1, 2]


def test_nms_chain_follows_pyronear() -> None:
    # A (0.9) overlaps B (0.8); C (0.7) overlaps B only. Pyronear's engine walks from the
    # lowest score and drops a box that overlaps any higher box still in the list: at C,
    # B is still there, so C goes; then B goes because of A. Only A is kept.
    a = [0.0, 0.0, 0.2, 0.2, 0.9]
    b = [0.15, 0.0, 0.35, 0.2, 0.8]
    c = [0.3, 0.0, 0.5, 0.2, 0.7]
    assert nms_iou0(boxes(c, a, b))[:, 4].tolist() == pytest.approx([0.9])


def test_touching_edges_do_not_overlap() -> None:
    kept = nms_iou0(boxes([0.0, 0.0, 0.2, 0.2, 0.8], [0.2, 0.0, 0.4, 0.2, 0.9]))
    assert kept[:, 4].tolist() == pytest.approx([0.9, 0.8])


def test_tie_keeps_the_later_row_as_pyronear() -> None:
    # Pyronear sorts by score ascending (stable) and walks from the lowest: on equal scores
    # the earlier row is met first, overlaps the later one still in the list, and goes.
    first = [0.0, 0.0, 0.2, 0.2, 0.5]
    second = [0.1, 0.0, 0.3, 0.2, 0.5]
    assert nms_iou0_indices(boxes(first, second)).tolist() == [1]
    third = [0.7, 0.0, 0.9, 0.2, 0.5]
    # Disjoint tied boxes all survive, the later row ranked first.
    assert nms_iou0_indices(boxes(first, third)).tolist() == [1, 0]


def test_empty() -> None:
    assert nms_iou0(boxes()).shape == (0, 5)


def test_chunked_nms_matches_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many boxes spanning several chunks give the same answer as one big matrix.
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 0.95, size=(300, 2))
    rows = np.hstack([xy, xy + 0.03, rng.uniform(0.05, 1, size=(300, 1))])
    whole = nms_iou0_indices(rows)
    monkeypatch.setattr(geometry, "_NMS_CHUNK", 7)
    assert nms_iou0_indices(rows).tolist() == whole.tolist()


coord = st.floats(0, 0.9, allow_nan=False)


@st.composite
def box_lists(draw: st.DrawFn) -> np.ndarray:
    rows = []
    for _ in range(draw(st.integers(0, 15))):
        x, y = draw(coord), draw(coord)
        w, h = draw(st.floats(0, 0.1)), draw(st.floats(0, 0.1))
        rows.append([x, y, x + w, y + h, draw(st.floats(0.05, 1.0))])
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


@given(box_lists())
# Two overlapping boxes of exactly equal score: the later row survives (Pyronear's tie rule).
@example(np.array([[0.1, 0.1, 0.3, 0.3, 0.5], [0.2, 0.2, 0.4, 0.4, 0.5]], dtype=np.float32))
def test_nms_output_is_pairwise_disjoint_and_follows_the_rule(pool: np.ndarray) -> None:
    kept = nms_iou0_indices(pool)
    overlaps = overlap_matrix(pool, pool)
    inner = overlaps[np.ix_(kept, kept)]
    np.fill_diagonal(inner, False)
    assert not inner.any()
    assert (np.diff(pool[kept, 4]) <= 0).all()
    # Every dropped box overlaps a box ranked above it: a higher score, or an equal score on a
    # later row (DESIGN.md: on exactly equal scores the later row survives).
    for index in set(range(len(pool))) - set(kept.tolist()):
        higher = (pool[:, 4] > pool[index, 4]) | (
            (pool[:, 4] == pool[index, 4]) & (np.arange(len(pool)) > index)
        )
        assert (overlaps[index] & higher).any()
