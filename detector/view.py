"""What a camera can see: clear, night (infrared), frozen (a stuck camera) or obscured.

Measured on every decoded frame, before the model, for the camera's `view` entity:

- **frozen**: the same bytes arrived `frozen_after` times in a row. A live sensor's noise makes
  two captures differ, so identical JPEGs mean a stuck camera, or an NVR re-serving its last
  frame while the camera is down.
- **night**: Pyronear's day/night rule: a frame whose red and green channels are equal on every
  pixel is an infrared (grey) image.
- **obscured**: the spread of brightness is too small to show a landscape: fog, glare, a covered
  or soaked lens all squeeze the scene's grey levels together. The measure is the distance
  between the 2nd and 98th percentiles of the luma of a 64-pixel-wide thumbnail: the thumbnail
  averages sensor noise away (else a covered lens in the dark reads as contrast), and the
  percentiles ignore what covers less than 2% of the frame, such as a timestamp overlay or a
  few hot pixels. Measured: the ten D-Fire tower frames and Pyronear's background clip span
  124 to 225 levels; generated fog (90% towards uniform grey) and a covered lens fall under
  20, the threshold (tests/detector/test_view.py).

The state is one word for the camera's health, so it names the worst: frozen, then night, then
obscured (a stuck frame says nothing of the scene, and an infrared frame is grey by nature). The
scoring does not read that word but the measures behind it, in its own order (pipeline.py): a
grey frame on a camera whose `night` is `pause` is not scored, whether or not it repeats; then a
frame whose bytes repeat the previous frame's brings no new evidence and is not voted on. An
obscured view is still scored: thick smoke in front of the lens also reads as obscured.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

ViewState = Literal["clear", "night", "frozen", "obscured"]
VIEW_STATES: tuple[ViewState, ...] = ("clear", "night", "frozen", "obscured")

FROZEN_AFTER = 3
OBSCURED_SPREAD = 20.0
_THUMB_WIDTH = 64
# The frame reduced once, by area averaging, for every measure taken on a small copy (this
# thumbnail and the nearby guard's, guard.GUARD_WIDTH): reading the whole decoded frame costs
# ≈ 1.5 ms at 1920x1080, so it is read once per frame, not once per measure.
REDUCED_WIDTH = 160


@dataclass(frozen=True)
class ViewReport:
    """The view state of one frame and the measures behind it."""

    state: ViewState
    grey: bool
    spread: float
    repeats: int

    def to_json(self) -> dict[str, Any]:
        """The report as published in the camera's attributes."""
        return {
            "state": self.state,
            "grey": self.grey,
            "contrast": round(self.spread, 1),
            "repeats": self.repeats,
        }


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def is_grey(image: NDArray[np.uint8]) -> bool:
    """Pyronear's infrared test on a BGR image: red equals green on every pixel."""
    return bool(np.array_equal(image[..., 2], image[..., 1]))


def area_reduced(image: NDArray[np.uint8], width: int, *, min_height: int = 1) -> NDArray[np.uint8]:
    """The frame `width` pixels wide, its aspect kept (area averaging)."""
    height, own_width = image.shape[:2]
    reduced_height = max(min_height, round(height * width / max(own_width, 1)))
    small = cv2.resize(image, (width, reduced_height), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8)


def reduced(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The decoded frame at REDUCED_WIDTH pixels wide, from which the pipeline's thumbnails are
    made (a frame narrower than that is kept as it is)."""
    if image.shape[1] <= REDUCED_WIDTH:
        return image
    return area_reduced(image, REDUCED_WIDTH, min_height=2)


def thumbnail(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The frame reduced to _THUMB_WIDTH pixels wide (area averaging)."""
    return area_reduced(image, _THUMB_WIDTH)


def brightness_spread(image: NDArray[np.uint8], thumb: NDArray[np.uint8] | None = None) -> float:
    """Grey levels between the 2nd and 98th percentiles of a small thumbnail's luma."""
    luma = cv2.cvtColor(thumbnail(image) if thumb is None else thumb, cv2.COLOR_BGR2GRAY)
    low, high = np.percentile(luma, [2, 98])
    return float(high - low)


class ViewMonitor:
    """Follows one camera's frames and says what it can see."""

    def __init__(
        self, *, frozen_after: int = FROZEN_AFTER, obscured_below: float = OBSCURED_SPREAD
    ) -> None:
        self.frozen_after = frozen_after
        self.obscured_below = obscured_below
        self._last_digest: bytes | None = None
        self._repeats = 0
        self.last: ViewReport | None = None

    def repeats_last(self, data: bytes) -> bool:
        """True when `data` are the very bytes of the last frame observed (no new capture)."""
        return self.last is not None and _digest(data) == self._last_digest

    def observe(
        self,
        data: bytes,
        image: NDArray[np.uint8] | None,
        small: NDArray[np.uint8] | None = None,
    ) -> ViewReport:
        """The view state after this frame (its encoded bytes and its decoded BGR image).

        `image` may be None only for a repeat of the last frame's bytes (`repeats_last`): its
        measures are those of the last frame, so the caller need not decode it again. `small`
        is the image already reduced by area averaging (`reduced`): the thumbnail is then made
        from it instead of reading the whole frame again (an area average of area averages,
        rounded twice: within a few grey levels of the direct thumbnail, under one on average;
        tests/detector/test_view.py).
        """
        digest = _digest(data)
        repeat = self.last is not None and digest == self._last_digest
        if image is None and not repeat:
            raise ValueError("only a repeat of the last frame may be observed without its image")
        self._repeats = self._repeats + 1 if repeat else 1
        self._last_digest = digest
        if image is None and self.last is not None:
            grey, spread = self.last.grey, self.last.spread
        else:
            assert image is not None
            thumb = thumbnail(image if small is None else small)
            # Area averaging treats every channel alike, so a frame whose red equals its green
            # everywhere gives a thumbnail that does too: a thumbnail with colour proves a colour
            # frame, and the full-size comparison runs only for frames that may be infrared.
            grey = is_grey(thumb) and is_grey(image)
            spread = brightness_spread(image, thumb)
        state: ViewState = "clear"
        if self._repeats >= self.frozen_after:
            state = "frozen"
        elif grey:
            state = "night"
        elif spread < self.obscured_below:
            state = "obscured"
        self.last = ViewReport(state, grey, spread, self._repeats)
        return self.last
