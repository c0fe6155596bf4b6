"""The nearby scene's guard against still look-alikes: a box votes only if its content changes.

Smoke rises, spreads, drifts and thins: over a few minutes the picture inside its box changes. A
fog bank, a cloud deck, glare, an infrared view of a garden at night or a corner of a room that
the model mistakes for smoke stay as they are, frame after frame, apart from sensor noise, a
little camera shake and the exposure. The guard compares the box's content in this frame with the
same place `lookback` voted frames earlier, on a small grey thumbnail (noise averages out there)
after matching the two frames' overall brightness (an auto-exposure step is no change); a pixel
counts as changed by how far its new value lies outside the values around it before (a shaken
camera moves edges within that range). The box is dropped when its change stays under
`min_change` grey levels at the `p`-th percentile inside it (smoke changes part of its box a
lot, noise changes all of it a little). A box with no earlier frame to compare with (the
camera's first frames) is kept, and so is a box narrower than `min_width`: a distant plume is
small and changes slowly, and the nearby scene's false alerts came from larger boxes.

The guard gates the onset of an alert: while one is open, the pipeline lets every box vote
(faint smoke that changes little must not end an alarm mid-fire).

Why this rule, and its numbers: EVALUATION.md, "The nearby guard". The horizon scene does not use
it: Pyronear's settings apply there unchanged.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

Thumb = NDArray[np.float32]

GUARD_WIDTH = 160  # thumbnail width: a 0.03-wide box still spans 5 pixels
_NEIGHBOURS = np.ones((3, 3), dtype=np.uint8)


@dataclass(frozen=True)
class GuardSettings:
    """What a box at least `min_width` of the frame wide must show to vote: `min_change` grey
    levels at the `percentile`-th percentile of its content's change since `lookback` voted
    frames ago. Narrower boxes vote as they are: a distant plume is small and changes slowly,
    and the false alerts of the nearby scene came from larger boxes."""

    min_change: float = 4.0
    lookback: int = 5
    percentile: float = 90.0
    min_width: float = 0.1


def guard_thumbnail(image: NDArray[np.uint8], small: NDArray[np.uint8] | None = None) -> Thumb:
    """A decoded BGR frame as the guard compares it: grey, GUARD_WIDTH wide (area averaging).

    `small` is the frame already reduced to GUARD_WIDTH by area averaging (the pipeline's
    `view.reduced`, made once per frame): used as it is, the same pixels as reducing `image`.
    """
    if small is None or small.shape[1] != GUARD_WIDTH:
        height, width = image.shape[:2]
        thumb_height = max(2, round(height * GUARD_WIDTH / max(width, 1)))
        small = np.asarray(
            cv2.resize(image, (GUARD_WIDTH, thumb_height), interpolation=cv2.INTER_AREA),
            dtype=np.uint8,
        )
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return np.asarray(grey, dtype=np.float32)


def box_changes(
    now: Thumb, then: Thumb, boxes: NDArray[np.floating], percentile: float = 90.0
) -> NDArray[np.float64]:
    """Per box (rows x1, y1, x2, y2, … normalised), how much its content changed from `then` to
    `now`, in grey levels: the `percentile`-th percentile, inside the box, of how far each
    pixel's new value lies outside the range of the 3x3 pixels around it before, after scaling
    `then` to `now`'s overall brightness."""
    out = np.zeros(len(boxes), dtype=np.float64)
    if len(boxes) == 0:
        return out
    height, width = now.shape
    mean_then = float(then.mean())
    gain = float(now.mean()) / mean_then if mean_then > 1e-3 else 1.0
    # A pixel has changed only by what its new value lies outside the values around it before
    # (3x3): a camera shaken by up to a thumbnail pixel (8 px of a 1280-wide frame) moves
    # edges within that range, while smoke brings values the place did not have.
    scaled = then * gain
    highest = cv2.dilate(scaled, _NEIGHBOURS)
    lowest = cv2.erode(scaled, _NEIGHBOURS)
    outside = np.maximum(np.maximum(now - highest, lowest - now), 0.0)
    for row, box in enumerate(boxes):
        x1 = min(int(np.floor(float(box[0]) * width)), width - 1)
        y1 = min(int(np.floor(float(box[1]) * height)), height - 1)
        x2 = max(int(np.ceil(float(box[2]) * width)), x1 + 1)
        y2 = max(int(np.ceil(float(box[3]) * height)), y1 + 1)
        out[row] = float(np.percentile(outside[y1:y2, x1:x2], percentile))
    return out


class ChangeGuard:
    """One camera's guard: the thumbnails of its last voted frames, and the rule."""

    def __init__(self, settings: GuardSettings | None = None) -> None:
        self.settings = settings or GuardSettings()
        self._history: deque[Thumb] = deque(maxlen=self.settings.lookback)

    def check(
        self,
        image: NDArray[np.uint8],
        boxes: NDArray[np.floating],
        small: NDArray[np.uint8] | None = None,
    ) -> NDArray[np.float64]:
        """The change of each box of this voted frame (NaN when it is not judged: narrower than
        `min_width`, or no earlier frame to compare with); remembers the frame for the next.
        `small`: the frame already reduced to GUARD_WIDTH (see `guard_thumbnail`)."""
        thumb = guard_thumbnail(image, small)
        changes = np.full(len(boxes), np.nan)
        if len(boxes) and self._history and self._history[0].shape == thumb.shape:
            judged = (boxes[:, 2] - boxes[:, 0]) >= self.settings.min_width
            if judged.any():
                changes[judged] = box_changes(
                    thumb, self._history[0], boxes[judged], self.settings.percentile
                )
        self._history.append(thumb)
        return changes

    def passes(self, changes: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Which boxes may vote: enough change, or not judged."""
        return np.isnan(changes) | (changes >= self.settings.min_change)

    def reset(self) -> None:
        """Forget the frames (a reset of the camera's vote)."""
        self._history.clear()
