"""The temporal vote (DESIGN.md §5) and the alert window that decides what the bridge receives."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from detector.geometry import nms_iou0_indices, overlap_matrix, rank_by_score

Boxes = NDArray[np.float32]
T = TypeVar("T")

# An open alert stays open down to this fraction of the threshold, so a score hovering around
# the threshold does not flap the alert on and off.
HYSTERESIS = 0.8
# The Pyronear API rejects more boxes than this on one frame.
MAX_OUTPUT_BOXES = 5


def _no_boxes() -> Boxes:
    return np.zeros((0, 5), dtype=np.float32)


@dataclass(frozen=True)
class VoteResult:
    """The vote on one frame.

    `score` is the best valid candidate's score (0 when none); `boxes` are this frame's boxes
    that overlap a valid candidate, each carrying that candidate's score (see
    `TemporalVote`), rounded to 3 decimals, at most 5, by decreasing score; `ongoing` tells
    whether an alert is open after this frame; `event` is "start" or "end" on the frame where
    `ongoing` changes. `rows` gives, for each output box, its row in the frame's input boxes;
    `matched` lists the input rows that overlap a valid candidate (before the cut to 5);
    `support` gives, for every input box, the (box count, score) of the strongest candidate
    it overlaps, valid or not ((0, 0) when none), which is what explains a box the vote left out.
    """

    score: float
    boxes: Boxes
    ongoing: bool
    event: Literal["start", "end"] | None = None
    rows: tuple[int, ...] = ()
    matched: tuple[int, ...] = ()
    support: tuple[tuple[int, float], ...] = ()


class TemporalVote:
    """Confirms smoke only when it persists over the last `nb_frames` frames of a camera.

    Pyronear's rules, ties included (DESIGN.md §5): the pool is this frame's boxes, then the
    previous frames oldest to newest; candidates come from NMS at IoU 0 over the pool; a
    candidate's count and score come from the pool boxes with IoU > 0 with it (itself included,
    unless it has no area: Pyronear's IoU of such a box with itself is 0). A box of this frame
    that overlaps several valid candidates takes the score of the first of them in ascending
    order of their own confidence (ties in pool order).
    """

    def __init__(self, nb_frames: int = 6, threshold: float = 0.25) -> None:
        if nb_frames < 1:
            raise ValueError("nb_frames must be at least 1")
        self.nb_frames = nb_frames
        # The camera's `threshold` (Pyronear's conf_thresh; the model's box floor is another
        # number, `model.conf_thresh`). Public: a new one applies from the next frame without
        # losing the history.
        self.threshold = threshold
        self.ongoing = False
        # Oldest first, as Pyronear concatenates them after the current frame's boxes.
        self._previous: deque[Boxes] = deque(maxlen=nb_frames - 1)

    @property
    def min_count(self) -> int:
        """How many boxes of the window must overlap a candidate for it to be valid."""
        return math.ceil(self.nb_frames / 2)

    @property
    def effective_threshold(self) -> float:
        """The score a candidate must exceed on the next frame (lower while an alert is open)."""
        return self.threshold * HYSTERESIS if self.ongoing else self.threshold

    def reset(self) -> None:
        """Forget the history and close any alert, without an event."""
        self._previous.clear()
        self.ongoing = False

    def update(self, boxes: Boxes) -> VoteResult:
        """Vote on this frame's boxes (n, 5) [x1, y1, x2, y2, conf] together with the history."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
        threshold = self.effective_threshold
        pool = np.concatenate([boxes, *self._previous])
        if self._previous.maxlen:
            self._previous.append(boxes)
        score, out, rows, matched, support = self._vote(boxes, pool, threshold)
        ongoing = score > threshold
        event: Literal["start", "end"] | None = None
        if ongoing != self.ongoing:
            event = "start" if ongoing else "end"
        self.ongoing = ongoing
        return VoteResult(
            score=score,
            boxes=out,
            ongoing=ongoing,
            event=event,
            rows=rows,
            matched=matched,
            support=support,
        )

    def _vote(
        self, boxes: Boxes, pool: Boxes, threshold: float
    ) -> tuple[float, Boxes, tuple[int, ...], tuple[int, ...], tuple[tuple[int, float], ...]]:
        """Best valid score, output boxes, their input rows, matched rows, each box's support.

        `boxes` are the first rows of `pool`.
        """
        # Ascending confidence, ties in pool order: the order Pyronear walks its candidates.
        candidates = nms_iou0_indices(pool)[::-1]
        overlaps = overlap_matrix(pool[candidates], pool)
        counts = overlaps.sum(axis=1)
        scores = np.where(overlaps, pool[:, 4].astype(np.float64), 0.0).sum(axis=1)
        scores /= self.nb_frames
        frame_overlaps = overlaps[:, : len(boxes)].T  # (this frame's boxes, candidates)
        strongest = np.where(frame_overlaps, scores, -1.0).argmax(axis=1) if len(scores) else []
        support = tuple(
            (int(counts[c]), float(scores[c])) if frame_overlaps[row, c] else (0, 0.0)
            for row, c in enumerate(strongest)
        )
        valid = (counts >= self.min_count) & (scores > threshold)
        if not valid.any():
            return 0.0, _no_boxes(), (), (), support
        hits = frame_overlaps[:, valid]
        hit_rows = np.flatnonzero(hits.any(axis=1))
        # The first valid candidate (ascending confidence) each hit box overlaps.
        first = hits[hit_rows].argmax(axis=1)
        out = boxes[hit_rows].astype(np.float64)
        out[:, 4] = scores[valid][first]
        out = np.round(out, 3)
        # Descending score, ties reversed from their input order (Pyronear's order).
        order = rank_by_score(out)[:MAX_OUTPUT_BOXES]
        rows = tuple(int(hit_rows[i]) for i in order)
        return (
            float(scores[valid].max()),
            np.ascontiguousarray(out[order], dtype=np.float32),
            rows,
            tuple(int(row) for row in hit_rows),
            support,
        )


@dataclass
class _Entry(Generic[T]):
    item: T
    boxes: Boxes
    sent: bool = False


class AlertWindow(Generic[T]):
    """Decides which frames go to the bridge, and with which boxes.

    At alert onset every not-yet-sent frame of the last `nb_frames` (the lead-up, empty frames
    included, oldest first, the onset frame last) is sent, then one frame per scored frame while
    the alert lasts. A frame without boxes of its own carries the previous sent frame's boxes
    with confidence 0, because the API needs a location; lead-up frames before the first boxed
    frame take the onset frame's boxes.
    """

    def __init__(self, nb_frames: int) -> None:
        self._window: deque[_Entry[T]] = deque(maxlen=nb_frames)
        self._carried = _no_boxes()

    def reset(self) -> None:
        """Forget every frame."""
        self._window.clear()
        self._carried = _no_boxes()

    def push(self, item: T, result: VoteResult) -> list[tuple[T, Boxes]]:
        """Record a scored frame; return the frames to send now, oldest first, with their boxes."""
        entry = _Entry(item, result.boxes)
        self._window.append(entry)
        if result.event == "start":
            batch = [pending for pending in self._window if not pending.sent]
            self._carried = result.boxes
        elif result.ongoing:
            batch = [entry]
        else:
            return []
        out: list[tuple[T, Boxes]] = []
        for pending in batch:
            if len(pending.boxes):
                self._carried = pending.boxes
                boxes = pending.boxes
            else:
                boxes = self._carried.copy()
                boxes[:, 4] = 0.0
            pending.sent = True
            out.append((pending.item, boxes))
        return out
