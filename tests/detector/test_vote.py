"""The temporal vote and the alert window on hand-computed cases (DESIGN.md §5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector.vote import AlertWindow, TemporalVote, VoteResult

A = [0.10, 0.10, 0.20, 0.20]
B = [0.12, 0.12, 0.22, 0.22]  # overlaps A
FAR = [0.60, 0.60, 0.70, 0.70]  # overlaps neither
EMPTY = np.zeros((0, 5), dtype=np.float32)


def boxes(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def test_divide_by_nb_not_by_count() -> None:
    vote = TemporalVote(nb_frames=6, threshold=0.25)
    results = [vote.update(boxes([*A, 0.6])) for _ in range(3)]
    # Frames 1-2: count 1 and 2 < ceil(6/2) = 3 → nothing valid.
    assert [r.score for r in results[:2]] == [0.0, 0.0]
    # Frame 3: count 3 >= 3; score = (0.6 + 0.6 + 0.6) / 6 = 0.3 (not / 3 = 0.6) > 0.25.
    assert results[2].score == pytest.approx(0.3)
    assert results[2].ongoing and results[2].event == "start"
    np.testing.assert_allclose(results[2].boxes, [[*A, 0.3]], atol=1e-6)


def test_count_threshold_with_odd_window() -> None:
    vote = TemporalVote(nb_frames=5, threshold=0.25)
    assert vote.min_count == 3  # ceil(5 / 2) = ceil(2.5)
    # Two frames of 0.9 are not enough whatever their score: (0.9 + 0.9) / 5 = 0.36 > 0.25,
    # but the count is 2 < 3.
    assert vote.update(boxes([*A, 0.9])).score == 0.0
    assert vote.update(boxes([*B, 0.9])).score == 0.0
    # Third overlapping box: (0.9 * 3) / 5 = 0.54.
    third = vote.update(boxes([*A, 0.9]))
    assert third.score == pytest.approx(0.54) and third.event == "start"


def test_boxes_older_than_the_window_are_forgotten() -> None:
    vote = TemporalVote(nb_frames=3, threshold=0.2)
    # min count ceil(3/2) = 2. Frame 1: A. Frames 2-3: empty. Frame 4: A again: the pool
    # (frames 2..4) holds one box only → count 1 < 2.
    vote.update(boxes([*A, 0.9]))
    vote.update(EMPTY)
    vote.update(EMPTY)
    assert vote.update(boxes([*A, 0.9])).score == 0.0
    # Frame 5: pool frames 3..5 = A 0.9, A 0.9 → (0.9 + 0.9) / 3 = 0.6.
    assert vote.update(boxes([*A, 0.9])).score == pytest.approx(0.6)


def test_hysteresis_keeps_alert_at_eighty_percent() -> None:
    vote = TemporalVote(nb_frames=2, threshold=0.5)
    # nb 2: count >= 1. Frame 1: 1.0 / 2 = 0.5, not > 0.5.
    first = vote.update(boxes([*A, 1.0]))
    assert not first.ongoing and first.event is None and first.score == 0.0
    # Frame 2: (1.0 + 0.6) / 2 = 0.8 > 0.5 → start.
    assert vote.update(boxes([*A, 0.6])).event == "start"
    # Frame 3: (0.6 + 0.3) / 2 = 0.45: under 0.5 but over 0.8 * 0.5 = 0.4 → still ongoing.
    third = vote.update(boxes([*A, 0.3]))
    assert third.ongoing and third.event is None
    assert third.score == pytest.approx(0.45)
    # Frame 4: (0.3 + 0.2) / 2 = 0.25 <= 0.4 → ends.
    fourth = vote.update(boxes([*A, 0.2]))
    assert not fourth.ongoing and fourth.event == "end" and fourth.score == 0.0
    assert len(fourth.boxes) == 0
    # Frame 5: (0.2 + 0.7) / 2 = 0.45 is not > 0.5 once the alert has ended.
    fifth = vote.update(boxes([*A, 0.7]))
    assert not fifth.ongoing and fifth.event is None


def test_new_threshold_applies_next_frame_without_losing_history() -> None:
    vote = TemporalVote(nb_frames=2, threshold=0.5)
    vote.update(boxes([*A, 0.8]))  # 0.8 / 2 = 0.4
    vote.threshold = 0.3
    # (0.8 + 0.4) / 2 = 0.6 > 0.3
    assert vote.update(boxes([*A, 0.4])).event == "start"


def test_output_boxes_carry_candidate_score_rounded_and_top_five() -> None:
    vote = TemporalVote(nb_frames=1, threshold=0.1)
    # Seven disjoint boxes, conf 0.20044 + 0.01 i, in increasing order; nb 1 → each candidate
    # scores its own conf / 1, and count 1 >= ceil(1/2) = 1.
    rows = [[0.1 * i, 0.0, 0.1 * i + 0.05, 0.05, 0.2 + 0.01 * i + 0.00044] for i in range(7)]
    result = vote.update(boxes(*rows))
    # The five best, i = 6..2: 0.26044 → 0.26, 0.25044 → 0.25, ... (3 decimals).
    assert len(result.boxes) == 5
    np.testing.assert_allclose(result.boxes[:, 4], [0.26, 0.25, 0.24, 0.23, 0.22], atol=1e-7)
    # Coordinates are rounded too: 0.1 * 6 + 0.05 = 0.65.
    np.testing.assert_allclose(result.boxes[0, :4], [0.6, 0.0, 0.65, 0.05], atol=1e-7)
    # The score itself is not rounded.
    assert result.score == pytest.approx(0.26044, abs=1e-6)
    assert result.boxes.dtype == np.float32


def test_coordinates_round_to_three_decimals() -> None:
    vote = TemporalVote(nb_frames=1, threshold=0.1)
    result = vote.update(boxes([0.12345, 0.2, 0.30051, 0.4449, 0.87654]))
    # 0.12345 → 0.123, 0.30051 → 0.301, 0.4449 → 0.445, 0.87654 / 1 → 0.877.
    np.testing.assert_allclose(result.boxes, [[0.123, 0.2, 0.301, 0.445, 0.877]], atol=1e-7)


def test_only_this_frames_boxes_are_output() -> None:
    vote = TemporalVote(nb_frames=2, threshold=0.2)
    vote.update(boxes([*A, 0.8]))
    # This frame has only a box far away: the valid candidate (A, 0.8 / 2 = 0.4) does not
    # overlap it, so nothing is output although the vote passes.
    result = vote.update(boxes([*FAR, 0.1]))
    assert result.ongoing and result.score == pytest.approx(0.4)
    assert len(result.boxes) == 0


def test_box_overlapping_several_candidates_takes_first_by_ascending_confidence() -> None:
    vote = TemporalVote(nb_frames=2, threshold=0.1)
    left = [0.0, 0.0, 0.1, 0.1, 0.8]
    right = [0.2, 0.0, 0.3, 0.1, 0.4]
    vote.update(boxes(left, right))
    # Frame 2: one wide box overlapping both. Pool = wide 0.3, left 0.8, right 0.4.
    # NMS: left kept, right kept (disjoint from left), wide dropped (overlaps left).
    # left: (0.8 + 0.3) / 2 = 0.55; right: (0.4 + 0.3) / 2 = 0.35; both valid.
    # Pyronear walks the candidates by their own confidence ascending (right 0.4, then left
    # 0.8) and the wide box takes the first it overlaps: right's 0.35, not the best 0.55.
    result = vote.update(boxes([0.05, 0.0, 0.25, 0.1, 0.3]))
    np.testing.assert_allclose(result.boxes, [[0.05, 0.0, 0.25, 0.1, 0.35]], atol=1e-6)
    assert result.score == pytest.approx(0.55)


def test_zero_area_box_never_counts_itself() -> None:
    # Pyronear's IoU of a box without area with itself is 0: a box squashed to a line by
    # clipping supports nothing, so even with nb 1 it cannot alert (and never reaches the
    # API, which refuses it).
    for nb in (1, 2):
        vote = TemporalVote(nb_frames=nb, threshold=0.1)
        results = [vote.update(boxes([0.2, 1.0, 0.3, 1.0, 0.9])) for _ in range(3)]
        assert [r.score for r in results] == [0.0, 0.0, 0.0]
        assert not any(r.ongoing or len(r.boxes) for r in results)
        assert results[-1].support == ((0, 0.0),)


def test_pool_order_decides_equal_scores_as_pyronear() -> None:
    # Three boxes of exactly equal confidence in a chain, one per frame: which one NMS keeps
    # decides the count and so the score.
    vote = TemporalVote(nb_frames=3, threshold=0.1)
    old = [0.0, 0.0, 0.2, 0.2, 0.5]
    mid = [0.15, 0.0, 0.35, 0.2, 0.5]
    vote.update(boxes(old))
    vote.update(boxes(mid))
    # Pool = [current (far right box 0.5), old, mid] (oldest to newest after the current
    # frame). Ties: mid (later row) survives NMS over old. mid overlaps old and itself:
    # count 2 >= 2, score (0.5 + 0.5) / 3. The current box [0.3..0.5] overlaps mid only.
    result = vote.update(boxes([0.3, 0.0, 0.5, 0.2, 0.5]))
    # Candidates: current (row 0), old (row 1), mid (row 2) all tie at 0.5; ranked later
    # row first: mid, old, current. mid kept; old overlaps mid → dropped; current overlaps
    # mid → dropped. Only mid is a candidate: count 3 (old, mid, current), score 1.5 / 3.
    # (Keeping the earlier row would keep `current` with count 2 and score 1.0 / 3.)
    assert result.score == pytest.approx(0.5)
    np.testing.assert_allclose(result.boxes, [[0.3, 0.0, 0.5, 0.2, 0.5]], atol=1e-6)


def test_history_is_pooled_oldest_first() -> None:
    # With equal scores, the newest of the previous frames must rank above the older ones;
    # had the history been pooled newest first, `old` would be the kept candidate and the
    # current box (overlapping only `new`) would take no score from it.
    vote = TemporalVote(nb_frames=3, threshold=0.05)
    old = [0.0, 0.0, 0.2, 0.2, 0.3]
    new = [0.1, 0.0, 0.3, 0.2, 0.3]
    vote.update(boxes(old))
    vote.update(boxes(new))
    current = [0.25, 0.0, 0.4, 0.2, 0.1]
    result = vote.update(boxes(current))
    # Pool [current 0.1, old 0.3, new 0.3]: new (later) kept; old and current overlap it.
    # new: count 3, score 0.7 / 3. The current box overlaps new → takes 0.233.
    assert result.rows == (0,)
    np.testing.assert_allclose(result.boxes[:, 4], [0.233], atol=1e-6)


def test_output_ties_come_out_reversed_from_input_order() -> None:
    vote = TemporalVote(nb_frames=1, threshold=0.1)
    first = [0.0, 0.0, 0.1, 0.1, 0.4]
    second = [0.5, 0.0, 0.6, 0.1, 0.4]
    result = vote.update(boxes(first, second))
    assert result.rows == (1, 0)
    np.testing.assert_allclose(result.boxes[:, 0], [0.5, 0.0], atol=1e-7)


def test_start_and_end_events_once_each() -> None:
    vote = TemporalVote(nb_frames=1, threshold=0.5)
    events = [vote.update(boxes([*A, conf])).event for conf in (0.6, 0.7, 0.45, 0.3, 0.3, 0.6)]
    # 0.6 > 0.5 start; 0.7 on; 0.45 > 0.4 still on; 0.3 <= 0.4 end; 0.3 off; 0.6 starts again.
    assert events == ["start", None, None, "end", None, "start"]


def test_reset_closes_alert_without_event() -> None:
    vote = TemporalVote(nb_frames=2, threshold=0.1)
    assert vote.update(boxes([*A, 0.9])).event == "start"  # 0.9 / 2 = 0.45
    vote.reset()
    assert not vote.ongoing
    # The history is gone: 0.1 / 2 = 0.05 alone (with it, (0.9 + 0.1) / 2 = 0.5 would pass).
    result = vote.update(boxes([*A, 0.1]))
    assert result.score == 0.0 and result.event is None


def test_empty_frames() -> None:
    vote = TemporalVote()
    result = vote.update(EMPTY)
    assert (result.score, result.ongoing, result.event) == (0.0, False, None)
    assert result.boxes.shape == (0, 5)


def test_bad_window_length() -> None:
    with pytest.raises(ValueError, match="nb_frames"):
        TemporalVote(nb_frames=0)


def test_window_sends_lead_up_then_one_per_frame() -> None:
    window: AlertWindow[str] = AlertWindow(nb_frames=3)
    onset = boxes([*A, 0.4])
    assert window.push("f0", VoteResult(0.0, EMPTY, False)) == []
    assert window.push("f1", VoteResult(0.0, EMPTY, False)) == []
    assert window.push("f2", VoteResult(0.0, EMPTY, False)) == []
    sent = window.push("f3", VoteResult(0.4, onset, True, "start"))
    # The window holds the last 3 frames f1..f3 (f0 fell out); the empty lead-up frames are
    # sent too, with the onset's boxes at conf 0.
    assert [item for item, _ in sent] == ["f1", "f2", "f3"]
    np.testing.assert_allclose(sent[0][1], [[*A, 0.0]])
    np.testing.assert_allclose(sent[1][1], [[*A, 0.0]])
    np.testing.assert_allclose(sent[2][1], [[*A, 0.4]])
    # While ongoing, one frame each; a frame with boxes sends its own.
    later = window.push("f4", VoteResult(0.5, boxes([*B, 0.5]), True))
    assert [item for item, _ in later] == ["f4"]
    np.testing.assert_allclose(later[0][1], [[*B, 0.5]])
    # An ongoing frame without boxes of its own carries the previous sent frame's (B) at 0.
    carried = window.push("f5", VoteResult(0.35, EMPTY, True))
    np.testing.assert_allclose(carried[0][1], [[*B, 0.0]])
    assert window.push("f6", VoteResult(0.0, EMPTY, False, "end")) == []
    # The carried copy did not alter the frame it came from.
    np.testing.assert_allclose(later[0][1], [[*B, 0.5]])


def test_window_lead_up_with_its_own_boxes_carries_forward() -> None:
    # A caller may hand a lead-up frame with boxes: frames before it take the onset's
    # location, frames after it take its own.
    window: AlertWindow[int] = AlertWindow(nb_frames=4)
    window.push(1, VoteResult(0.0, EMPTY, False))
    window.push(2, VoteResult(0.0, boxes([*FAR, 0.2]), False))
    window.push(3, VoteResult(0.0, EMPTY, False))
    sent = window.push(4, VoteResult(0.5, boxes([*A, 0.5]), True, "start"))
    assert [item for item, _ in sent] == [1, 2, 3, 4]
    np.testing.assert_allclose(sent[0][1], [[*A, 0.0]])
    np.testing.assert_allclose(sent[1][1], [[*FAR, 0.2]])
    np.testing.assert_allclose(sent[2][1], [[*FAR, 0.0]])


def test_window_onset_without_boxes_sends_empty_frames() -> None:
    # Nothing to carry: the frames go with no box (the API accepts `[]`).
    window: AlertWindow[int] = AlertWindow(nb_frames=2)
    window.push(1, VoteResult(0.0, EMPTY, False))
    sent = window.push(2, VoteResult(0.4, EMPTY, True, "start"))
    assert [(item, len(b)) for item, b in sent] == [(1, 0), (2, 0)]


def test_window_never_resends() -> None:
    window: AlertWindow[int] = AlertWindow(nb_frames=4)
    box = boxes([*A, 0.5])
    window.push(1, VoteResult(0.5, box, True, "start"))
    window.push(2, VoteResult(0.0, EMPTY, False, "end"))
    window.push(3, VoteResult(0.0, EMPTY, False))
    # A new alert: frames 2 and 3 were never sent, frame 1 was.
    sent = window.push(4, VoteResult(0.5, box, True, "start"))
    assert [item for item, _ in sent] == [2, 3, 4]
    window.reset()
    assert [item for item, _ in window.push(5, VoteResult(0.5, box, True, "start"))] == [5]


def test_vote_and_window_together() -> None:
    # nb 3, thr 0.25, min count 2: frame 1 A 0.5 → count 1; frame 2 A 0.5 → (0.5 + 0.5) / 3
    # = 0.333 > 0.25 → start: frames 1 and 2 are sent; frame 3 (empty) → pool A, A → still
    # 0.333 > 0.2 → ongoing, sent with frame 2's box at conf 0.
    vote = TemporalVote(nb_frames=3, threshold=0.25)
    window: AlertWindow[int] = AlertWindow(nb_frames=3)
    frames = [boxes([*A, 0.5]), boxes([*A, 0.5]), EMPTY]
    sent = [window.push(i, vote.update(frame)) for i, frame in enumerate(frames, 1)]
    assert sent[0] == []
    assert [item for item, _ in sent[1]] == [1, 2]
    np.testing.assert_allclose(sent[1][0][1], [[*A, 0.0]])
    np.testing.assert_allclose(sent[1][1][1], [[*A, 0.333]])
    assert [item for item, _ in sent[2]] == [3]
    np.testing.assert_allclose(sent[2][0][1], [[*A, 0.0]])


coord = st.floats(0, 0.9, allow_nan=False)


@st.composite
def box_lists(draw: st.DrawFn) -> np.ndarray:
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        x, y = draw(coord), draw(coord)
        w, h = draw(st.floats(0.01, 0.1)), draw(st.floats(0.01, 0.1))
        rows.append([x, y, x + w, y + h, draw(st.floats(0.05, 1.0))])
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


@given(st.lists(box_lists(), min_size=1, max_size=8))
def test_vote_output_is_subset_of_frame(frames: list[np.ndarray]) -> None:
    vote = TemporalVote(nb_frames=3, threshold=0.2)
    ongoing = False
    for frame in frames:
        result = vote.update(frame)
        assert len(result.boxes) <= min(5, len(frame))
        assert result.ongoing == (result.score > 0)
        assert (result.event == "start") == (result.ongoing and not ongoing)
        assert (result.event == "end") == (ongoing and not result.ongoing)
        ongoing = result.ongoing
        assert (np.diff(result.boxes[:, 4]) <= 0).all()
        for row in result.boxes:
            assert np.isclose(frame[:, :4], row[:4], atol=6e-4).all(axis=1).any()
