"""The temporal vote (DESIGN.md §5) and the alert window that decides what the bridge receives."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from detector.geometry import nms_iou0_indices, overlap_matrix

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
    that overlap a valid candidate, each carrying the best such candidate's score, rounded to
    3 decimals, at most 5, by decreasing score; `ongoing` tells whether an alert is open after
    this frame; `event` is "start" or "end" on the frame where `ongoing` changes.
    """

    score: float
    boxes: Boxes
    ongoing: bool
    event: Literal["start", "end"] | None = None


class TemporalVote:
    """Confirms smoke only when it persists over the last `nb_frames` frames of a camera."""

    def __init__(self, nb_frames: int = 6, conf_thresh: float = 0.25) -> None:
        if nb_frames < 1:
            raise ValueError("nb_frames must be at least 1")
        self.nb_frames = nb_frames
        # Public: a new threshold applies from the next frame without losing the history.
        self.conf_thresh = conf_thresh
        self.ongoing = False
        self._previous: deque[Boxes] = deque(maxlen=nb_frames - 1)

    @property
    def min_count(self) -> int:
        """How many boxes of the window must overlap a candidate for it to be valid."""
        return math.ceil(self.nb_frames / 2)

    def reset(self) -> None:
        """Forget the history and close any alert, without an event."""
        self._previous.clear()
        self.ongoing = False

    def update(self, boxes: Boxes) -> VoteResult:
        """Vote on this frame's boxes (n, 5) [x1, y1, x2, y2, conf] together with the history."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
        threshold = self.conf_thresh * HYSTERESIS if self.ongoing else self.conf_thresh
        pool = np.concatenate([boxes, *self._previous])
        self._previous.appendleft(boxes)
        score, out = self._vote(boxes, pool, threshold)
        ongoing = score > threshold
        event: Literal["start", "end"] | None = None
        if ongoing != self.ongoing:
            event = "start" if ongoing else "end"
        self.ongoing = ongoing
        return VoteResult(score=score, boxes=out, ongoing=ongoing, event=event)

    def _vote(self, boxes: Boxes, pool: Boxes, threshold: float) -> tuple[float, Boxes]:
        """The best valid score and this frame's boxes; `boxes` are the first rows of `pool`."""
        candidates = nms_iou0_indices(pool)
        overlaps = overlap_matrix(pool[candidates], pool)
        # A candidate counts itself even when it has no area (IoU with itself is then 0).
        overlaps[np.arange(len(candidates)), candidates] = True
        counts = overlaps.sum(axis=1)
        scores = overlaps @ pool[:, 4].astype(np.float64) / self.nb_frames
        valid = (counts >= self.min_count) & (scores > threshold)
        if not valid.any():
            return 0.0, _no_boxes()
        # (this frame's boxes, valid candidates): which box overlaps which candidate.
        frame_overlaps = overlaps[valid, : len(boxes)].T
        hit = frame_overlaps.any(axis=1)
        best = np.where(frame_overlaps, scores[valid], -np.inf).max(axis=1, initial=-np.inf)
        out = boxes[hit].astype(np.float64)
        out[:, 4] = best[hit]
        out = np.round(out, 3)
        order = np.argsort(-out[:, 4], kind="stable")[:MAX_OUTPUT_BOXES]
        return float(scores[valid].max()), np.ascontiguousarray(out[order], dtype=np.float32)


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
