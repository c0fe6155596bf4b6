"""Alert images: the scored frame with its boxes drawn. Runs off the scoring path."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.errors import FrameError
from detector.frames import decode_image

# The alert image is for a phone notification: a frame larger than this is drawn on a
# reduced-scale decode (JPEG DCT scaling), never on a full-size one.
ALERT_IMAGE_SIZE = 1920

BOX_COLOUR = (0, 64, 255)  # BGR: orange-red, visible on sky, forest and smoke
TEXT_COLOUR = (255, 255, 255)


def annotate_jpeg(
    jpeg: bytes,
    boxes: NDArray[np.float32],
    *,
    label: str = "smoke",
    banner: str | None = None,
    quality: int = 85,
) -> bytes:
    """Draw normalised [x1, y1, x2, y2, conf] boxes (and an optional banner) on a frame, as JPEG.

    The frame goes through the same checks as a scored one (size, header, pixel count before
    any decode) and is decoded at reduced scale when it is much larger than ALERT_IMAGE_SIZE.
    """
    image = decode_image(jpeg, target_size=ALERT_IMAGE_SIZE, rgb=False)
    height, width = image.shape[:2]
    thickness = max(2, round(min(width, height) / 300))
    font_scale = max(0.5, min(width, height) / 900)
    for x1, y1, x2, y2, conf in boxes.tolist():
        top_left = (round(x1 * width), round(y1 * height))
        bottom_right = (round(x2 * width), round(y2 * height))
        cv2.rectangle(image, top_left, bottom_right, BOX_COLOUR, thickness)
        _text(image, f"{label} {conf:.0%}", top_left, font_scale, thickness)
    if banner:
        _text(image, banner, (0, 0), font_scale * 1.5, thickness)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise FrameError("corrupt", "the annotated frame cannot be encoded")
    return bytes(encoded.tobytes())


def _text(
    image: NDArray[np.uint8], text: str, corner: tuple[int, int], scale: float, thickness: int
) -> None:
    """Write text on a filled box whose top-left corner is `corner`, kept inside the image."""
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = min(max(corner[0], 0), max(image.shape[1] - text_w - 4, 0))
    y = max(corner[1] - text_h - baseline - 4, 0)
    cv2.rectangle(image, (x, y), (x + text_w + 4, y + text_h + baseline + 4), BOX_COLOUR, -1)
    cv2.putText(
        image,
        text,
        (x + 2, y + text_h + 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        TEXT_COLOUR,
        thickness,
        cv2.LINE_AA,
    )
