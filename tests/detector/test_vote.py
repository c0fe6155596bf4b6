"""The temporal vote and the alert window on hand-computed cases (DESIGN.md §5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector.geometry import iou_matrix, nms_iou0
from detector.vote import AlertWindow, TemporalVote, VoteResult

A = [0.10, 0.10, 0.20, 0.20]
B = [0.12, 0.12, 0.22, 0.22]  # overlaps A
FAR = [0.60, 0.60, 0.70, 0.70]  # overlaps neither


def boxes(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def test_divide_by_nb_not_by_count() -> None:
    vote = TemporalVote(nb_frames=6, conf_thresh=0.25)
    results = [vote.update(boxes([*A, 0.6])) for _ in range(3)]
    # Frame 3: pool = 3 boxes of 0.6 that overlap; count 3 >= ceil(6/2) = 3;
    # score = (0.6 + 0.6 + 0.6) / 6 = 0.3 > 0.25 → alert.
    assert results[1].score == 0.0  # count 2 < 3
    assert results[2].score == pytest.approx(0.3)
    assert results[2].ongoing and results[2].event == "start"


def test_count_threshold_with_odd_window() -> None:
    vote = TemporalVote(nb_frames=5, conf_thresh=0.25)
    # ceil(5/2) = 3 boxes are needed: two frames of 0.9 are not enough, whatever their score.
    assert vote.update(boxes([*A, 0.9])).score == 0.0
    assert vote.update(boxes([*A, 0.9])).score == 0.0
    third = vote.update(boxes([*A, 0.9]))
    # (0.9 * 3) / 5 = 0.54
    assert third.score == pytest.approx(0.54)


def test_hysteresis_keeps_alert_at_eighty_percent() -> None:
    vote = TemporalVote(nb_frames=2, conf_thresh=0.5)
    # nb 2: count >= 1. Frame 1: 1.0 / 2 = 0.5, not > 0.5.
    assert not vote.update(boxes([*A, 1.0])).ongoing
    # Frame 2: (1.0 + 0.6) / 2 = 0.8 > 0.5 → start.
    assert vote.update(boxes([*A, 0.6])).event == "start"
    # Frame 3: (0.6 + 0.3) / 2 = 0.45: under 0.5 but over 0.8 * 0.5 = 0.4 → still ongoing.
    third = vote.update(boxes([*A, 0.3]))
    assert third.ongoing and third.event is None
    assert third.score == pytest.approx(0.45)
    # Frame 4: (0.3 + 0.2) / 2 = 0.25 <= 0.4 → ends.
    fourth = vote.update(boxes([*A, 0.2]))
    assert not fourth.ongoing and fourth.event == "end" and fourth.score == 0.0
    # Frame 5: (0.2 + 0.7) / 2 = 0.45 is not > 0.5 once the alert has ended.
    assert not vote.update(boxes([*A, 0.7])).ongoing


def test_output_boxes_carry_candidate_score_rounded_and_top_five() -> None:
    vote = TemporalVote(nb_frames=1, conf_thresh=0.1)
    # Seven disjoint boxes in one frame; nb 1: each candidate scores conf / 1.
    rows = [[0.1 * i, 0.0, 0.1 * i + 0.05, 0.05, 0.2 + 0.01 * i + 0.00044] for i in range(7)]
    result = vote.update(boxes(*rows))
    assert len(result.boxes) == 5
    # The five best are i = 6..2, scores 0.26044 → 0.26, ... rounded to 3 decimals.
    assert result.boxes[:, 4].tolist() == pytest.approx([0.26, 0.25, 0.24, 0.23, 0.22], abs=1e-6)
    assert result.boxes[0, 0] == pytest.approx(0.6)
    assert result.score == pytest.approx(0.26044, abs=1e-5)


def test_only_this_frames_boxes_are_output() -> None:
    vote = TemporalVote(nb_frames=2, conf_thresh=0.2)
    vote.update(boxes([*A, 0.8]))
    # This frame has only a box far away: the valid candidate (A, 0.8/2 = 0.4) does not
    # overlap it, so nothing is output although the vote passes.
    result = vote.update(boxes([*FAR, 0.1]))
    assert result.ongoing
    assert len(result.boxes) == 0


def test_box_overlapping_several_candidates_takes_best_score() -> None:
    vote = TemporalVote(nb_frames=1, conf_thresh=0.1)
    left = [0.0, 0.0, 0.1, 0.1, 0.5]
    right = [0.2, 0.0, 0.3, 0.1, 0.3]
    result = vote.update(boxes(left, right))
    assert sorted(result.boxes[:, 4].tolist()) == pytest.approx([0.3, 0.5])


def test_reset_closes_alert_without_event() -> None:
    vote = TemporalVote(nb_frames=1, conf_thresh=0.1)
    assert vote.update(boxes([*A, 0.9])).event == "start"
    vote.reset()
    assert not vote.ongoing
    assert vote.update(boxes([*A, 0.9])).event == "start"


def test_empty_frames() -> None:
    vote = TemporalVote()
    result = vote.update(np.zeros((0, 5), dtype=np.float32))
    assert result == VoteResult(0.0, result.boxes, False, None)
    assert result.boxes.shape == (0, 5)


def test_window_sends_lead_up_then_one_per_frame() -> None:
    window: AlertWindow[str] = AlertWindow(nb_frames=3)
    empty = np.zeros((0, 5), dtype=np.float32)
    onset = boxes([*A, 0.4])
    assert window.push("f1", VoteResult(0.0, empty, False)) == []
    assert window.push("f2", VoteResult(0.0, empty, False)) == []
    sent = window.push("f3", VoteResult(0.4, onset, True, "start"))
    # The window holds f1..f3; the empty lead-up frames carry the onset's boxes at conf 0.
    assert [item for item, _ in sent] == ["f1", "f2", "f3"]
    np.testing.assert_allclose(sent[0][1], [[*A, 0.0]])
    np.testing.assert_allclose(sent[2][1], [[*A, 0.4]])
    # While ongoing, one frame each; an empty one carries the previous sent frame's boxes.
    later = window.push("f4", VoteResult(0.35, empty, True))
    assert [item for item, _ in later] == ["f4"]
    np.testing.assert_allclose(later[0][1], [[*A, 0.0]])
    assert window.push("f5", VoteResult(0.0, empty, False, "end")) == []


def test_window_never_resends() -> None:
    window: AlertWindow[int] = AlertWindow(nb_frames=4)
    box = boxes([*A, 0.5])
    empty = np.zeros((0, 5), dtype=np.float32)
    window.push(1, VoteResult(0.5, box, True, "start"))
    window.push(2, VoteResult(0.0, empty, False, "end"))
    window.push(3, VoteResult(0.0, empty, False))
    # A new alert: frames 2 and 3 were never sent, frame 1 was.
    sent = window.push(4, VoteResult(0.5, box, True, "start"))
    assert [item for item, _ in sent] == [2, 3, 4]


def test_nms_iou0_chain() -> None:
    # A (0.9) overlaps B (0.8); C (0.7) overlaps B only. B is dropped by A; C overlaps no
    # kept box, so it stays.
    a = [0.0, 0.0, 0.2, 0.2, 0.9]
    b = [0.15, 0.0, 0.35, 0.2, 0.8]
    c = [0.3, 0.0, 0.5, 0.2, 0.7]
    kept = nms_iou0(boxes(a, b, c))
    assert kept[:, 4].tolist() == pytest.approx([0.9, 0.7])


def test_touching_edges_do_not_overlap() -> None:
    kept = nms_iou0(boxes([0.0, 0.0, 0.2, 0.2, 0.9], [0.2, 0.0, 0.4, 0.2, 0.8]))
    assert len(kept) == 2


coord = st.floats(0, 0.9, allow_nan=False)


@st.composite
def box_lists(draw: st.DrawFn) -> np.ndarray:
    count = draw(st.integers(0, 12))
    rows = []
    for _ in range(count):
        x, y = draw(coord), draw(coord)
        w, h = draw(st.floats(0.01, 0.1)), draw(st.floats(0.01, 0.1))
        rows.append([x, y, x + w, y + h, draw(st.floats(0.05, 1.0))])
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


@given(box_lists())
def test_nms_output_is_pairwise_disjoint(pool: np.ndarray) -> None:
    kept = nms_iou0(pool)
    overlaps = iou_matrix(kept, kept) > 0
    np.fill_diagonal(overlaps, False)
    assert not overlaps.any()


@given(st.lists(box_lists(), min_size=1, max_size=8))
def test_vote_output_is_subset_of_frame(frames: list[np.ndarray]) -> None:
    vote = TemporalVote(nb_frames=3, conf_thresh=0.2)
    for frame in frames:
        result = vote.update(frame)
        assert len(result.boxes) <= min(5, len(frame))
        assert result.ongoing == (result.score > 0)
        for row in result.boxes:
            assert np.isclose(frame[:, :4], row[:4], atol=6e-4).all(axis=1).any()
