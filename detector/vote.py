"""The temporal vote (DESIGN.md §5) and the alert window that decides what the bridge receives."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from detector.geometry import iou_matrix, nms_iou0

Boxes = NDArray[np.float32]
T = TypeVar("T")

HYSTERESIS = 0.8
MAX_OUTPUT_BOXES = 5


def _empty() -> Boxes:
    return np.zeros((0, 5), dtype=np.float32)


@dataclass(frozen=True)
class VoteResult:
    """The vote on one frame.

    `score` is the best valid candidate's score (0 when none), `boxes` this frame's boxes that
    overlap a valid candidate, carrying that candidate's score (rounded to 3 decimals, top 5),
    `ongoing` whether an alert is open after this frame, `event` "start"/"end" on a transition.
    """

    score: float
    boxes: Boxes
    ongoing: bool
    event: Literal["start", "end"] | None = None


class TemporalVote:
    """Confirms smoke only when it persists over the last `nb_frames` frames."""

    def __init__(self, nb_frames: int = 6, conf_thresh: float = 0.25) -> None:
        if nb_frames < 1:
            raise ValueError("nb_frames must be at least 1")
        self.nb_frames = nb_frames
        self.conf_thresh = conf_thresh
        self.ongoing = False
        self._previous: deque[Boxes] = deque(maxlen=nb_frames - 1)

    @property
    def min_count(self) -> int:
        """How many boxes of the window must overlap a candidate for it to count."""
        return math.ceil(self.nb_frames / 2)

    def reset(self) -> None:
        """Forget the history and close the alert without an event."""
        self._previous.clear()
        self.ongoing = False

    def update(self, boxes: Boxes) -> VoteResult:
        """Add this frame's boxes (n, 5) and vote."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
        threshold = self.conf_thresh * HYSTERESIS if self.ongoing else self.conf_thresh
        pool = np.concatenate([boxes, *self._previous]) if self._previous else boxes
        score = 0.0
        out = _empty()
        if len(pool):
            candidates = nms_iou0(pool)
            overlaps = iou_matrix(candidates, pool) > 0
            # A candidate always counts itself, even a degenerate zero-area box.
            overlaps |= (candidates[:, None, :] == pool[None, :, :]).all(axis=2)
            counts = overlaps.sum(axis=1)
            scores = (overlaps * pool[:, 4].astype(np.float64)).sum(axis=1) / self.nb_frames
            valid = (counts >= self.min_count) & (scores > threshold)
            if valid.any():
                score = float(scores[valid].max())
                out = self._boxes_of_frame(boxes, candidates[valid], scores[valid])
        self._previous.appendleft(boxes)
        ongoing = score > threshold
        event: Literal["start", "end"] | None = None
        if ongoing and not self.ongoing:
            event = "start"
        elif self.ongoing and not ongoing:
            event = "end"
        self.ongoing = ongoing
        return VoteResult(score=score, boxes=out, ongoing=ongoing, event=event)

    @staticmethod
    def _boxes_of_frame(
        boxes: Boxes, candidates: NDArray[np.floating], scores: NDArray[np.float64]
    ) -> Boxes:
        """This frame's boxes overlapping a valid candidate, each with the best such score."""
        if len(boxes) == 0:
            return _empty()
        overlaps = iou_matrix(boxes, candidates) > 0
        best = np.where(overlaps, scores[None, :], -1.0).max(axis=1)
        keep = best >= 0
        out = boxes[keep].copy()
        out[:, 4] = best[keep]
        out = np.round(out, 3).astype(np.float32)
        order = np.argsort(-out[:, 4], kind="stable")[:MAX_OUTPUT_BOXES]
        result: Boxes = out[order]
        return result


@dataclass
class _Entry(Generic[T]):
    item: T
    boxes: Boxes
    sent: bool = False


class AlertWindow(Generic[T]):
    """Decides which frames go to the bridge.

    At alert onset every not-yet-sent frame of the last `nb_frames` (the lead-up, empty frames
    included) is sent, then one frame per scored frame while the alert lasts. A frame without
    boxes of its own carries the previous sent frame's boxes with confidence 0, so the API gets
    a location; lead-up frames before any boxed frame take the onset's boxes.
    """

    def __init__(self, nb_frames: int) -> None:
        self._window: deque[_Entry[T]] = deque(maxlen=nb_frames)
        self._last_boxes: Boxes | None = None

    def reset(self) -> None:
        """Forget every frame."""
        self._window.clear()
        self._last_boxes = None

    def push(self, item: T, result: VoteResult) -> list[tuple[T, Boxes]]:
        """Record a scored frame; return the frames to send now with their boxes."""
        entry = _Entry(item, result.boxes)
        self._window.append(entry)
        if result.event == "start":
            batch = [e for e in self._window if not e.sent]
        elif result.ongoing:
            batch = [entry]
        else:
            self._last_boxes = None
            return []
        out: list[tuple[T, Boxes]] = []
        for index, pending in enumerate(batch):
            boxes = pending.boxes
            if len(boxes):
                self._last_boxes = boxes
            else:
                reference = self._last_boxes
                if reference is None:
                    reference = next((e.boxes for e in batch[index:] if len(e.boxes)), None)
                if reference is not None:
                    boxes = reference.copy()
                    boxes[:, 4] = 0.0
            pending.sent = True
            out.append((pending.item, boxes))
        return out
