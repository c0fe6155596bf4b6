"""Alert images (detector/annotate.py): boxes drawn where they belong, bad frames refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.annotate import ALERT_IMAGE_SIZE, BOX_COLOUR, annotate_jpeg
from detector.errors import FrameError


def _jpeg(width: int, height: int, level: int = 40) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), level, np.uint8))
    assert ok
    return bytes(data.tobytes())


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_the_box_is_drawn_where_it_is() -> None:
    boxes = np.array([[0.5, 0.5, 0.9, 0.9, 0.7]], dtype=np.float32)
    image = _decode(annotate_jpeg(_jpeg(640, 360), boxes))
    assert image.shape == (360, 640, 3)
    # The box's right edge (x = 0.9 * 640) is drawn in the box colour; the top-left quarter,
    # far from the box and its label, is the frame as it was.
    edge = image[250, 576].astype(int)
    assert np.abs(edge - np.array(BOX_COLOUR)).max() < 60, edge
    assert np.abs(image[20:100, 20:200].astype(int) - 40).max() < 10


def test_a_large_frame_is_drawn_reduced() -> None:
    boxes = np.zeros((0, 5), dtype=np.float32)
    image = _decode(annotate_jpeg(_jpeg(4096, 2048), boxes, banner="TEST"))
    assert max(image.shape[:2]) <= 2 * ALERT_IMAGE_SIZE
    assert image.shape[1] < 4096


@pytest.mark.parametrize("data", [b"", b"not an image", _jpeg(64, 64)[:40]])
def test_a_bad_frame_is_refused(data: bytes) -> None:
    with pytest.raises(FrameError):
        annotate_jpeg(data, np.zeros((0, 5), dtype=np.float32))
