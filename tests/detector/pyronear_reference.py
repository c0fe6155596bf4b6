"""A reference of Pyronear's temporal vote written from DESIGN.md §5 alone, in plain Python.

It is deliberately naive (lists, loops, one rule per line) so that a reader can check it
against the text of §5; `test_parity.py` feeds it and `detector.vote.TemporalVote` the same
boxes and compares every frame.

Pyronear orders scores with numpy's default sort, which is not stable: on exactly equal scores
the order, and so the box that survives its NMS, depends on numpy's sort kernel for that array,
which depends on the CPU (AVX-512 machines use another kernel). No code can match that
everywhere. The reference therefore has two orders: `stable` (ties in pool order, the order
SmokeWatch uses and documents) and `numpy` (numpy's default `argsort` on this machine, as
Pyronear runs here); with `numpy` it records whether any of its sorts put tied scores in
another order than the stable one (`reordered_ties`).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

Row = list[float]


def iou(a: Row, b: Row) -> float:
    """IoU of two [x1, y1, x2, y2, ...] boxes; 0 when their union has no area."""
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ascending(scores: list[float], order: str = "stable") -> tuple[list[int], bool]:
    """Indices by ascending score, and whether ties came out in another than pool order.

    `stable`: ties in pool order. `numpy`: numpy's default (unstable) argsort, as Pyronear.
    """
    stable = sorted(range(len(scores)), key=lambda i: scores[i])
    if order == "stable":
        return stable, False
    default = [int(i) for i in np.argsort(np.asarray(scores, dtype=np.float64))]
    return default, default != stable


def nms_iou0(pool: list[Row], order: str = "stable") -> tuple[list[int], bool]:
    """Pool indices NMS keeps (in ascending score order), and whether ties were reordered.

    Walking from the lowest score, a box goes when it overlaps (IoU > 0) any other box still
    in the list; with the stable order, on equal scores the earlier row is met first, so the
    later one survives.
    """
    ranked, reordered = ascending([row[4] for row in pool], order)
    remaining = list(ranked)
    for i in ranked:
        if any(iou(pool[i], pool[j]) > 0 for j in remaining if j != i):
            remaining.remove(i)
    return remaining, reordered


class ReferenceVote:
    """§5's pseudocode, ties included, in the stable order or numpy's default one."""

    def __init__(self, nb: int, conf_thresh: float, order: str = "stable") -> None:
        self.nb = nb
        self.conf_thresh = conf_thresh
        self.order = order
        self.ongoing = False
        self.reordered_ties = False  # the last update met ties its sorts put out of pool order
        self.previous: deque[list[Row]] = deque(maxlen=nb - 1)  # oldest first

    def update(self, boxes: list[Row]) -> tuple[float, list[Row], bool]:
        """(conf, output boxes, ongoing) after this frame."""
        thr = self.conf_thresh * 0.8 if self.ongoing else self.conf_thresh
        pool = list(boxes) + [box for frame in self.previous for box in frame]
        if self.nb > 1:
            self.previous.append(list(boxes))
        valid: list[tuple[Row, float]] = []
        candidates, reordered = nms_iou0(pool, self.order)
        for c in candidates:
            overlapping = [box for box in pool if iou(box, pool[c]) > 0]
            score = sum(box[4] for box in overlapping) / self.nb
            if len(overlapping) >= math.ceil(self.nb / 2) and score > thr:
                valid.append((pool[c], score))
        conf = max((score for _, score in valid), default=0.0)
        out: list[Row] = []
        for box in boxes:
            for candidate, score in valid:  # ascending order of the candidates' confidence
                if iou(box, candidate) > 0:
                    out.append([float(v) for v in np.round([*box[:4], score], 3)])
                    break
        # Descending score, ties reversed from their input order, top 5.
        ranked, out_reordered = ascending([row[4] for row in out], self.order)
        out = [out[i] for i in ranked][::-1][:5]
        self.reordered_ties = reordered or out_reordered
        self.ongoing = conf > thr
        return conf, out, self.ongoing
