"""Encoded snapshot bytes → pixels → the model's input tensor.

The scoring path never re-encodes: a JPEG much larger than the model input is decoded at a
reduced scale by the JPEG decoder itself (DCT scaling, 1/2, 1/4 or 1/8), and the letterbox
writes the resized pixels straight into the preallocated input tensor, swapping OpenCV's BGR
order to the model's RGB on the way instead of in a separate full-frame pass.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.errors import FrameError

DEFAULT_MAX_FRAME_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 100_000_000  # 100 MP: larger than any camera, smaller than a decompression bomb
PAD_VALUE = 114 / 255

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_REDUCTIONS = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)
# Start-of-frame markers that carry the image size (every SOFn but DHT, JPG and DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class Letterbox:
    """How a decoded frame was placed in the model input.

    width/height are the decoded image's size; boxes are normalised to it, so a reduced-scale
    decode changes nothing downstream.
    """

    scale: float
    pad_x: int
    pad_y: int
    width: int
    height: int
    input_w: int
    input_h: int


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from a JPEG or PNG header without decoding; FrameError otherwise."""
    if data.startswith(PNG_MAGIC):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise FrameError("truncated", "PNG header is truncated")
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if not data.startswith(JPEG_MAGIC):
        raise FrameError("not_an_image", "payload is neither a JPEG nor a PNG image")
    offset = 2
    length = len(data)
    while offset + 4 <= length:
        if data[offset] != 0xFF:
            raise FrameError("corrupt", f"JPEG marker expected at byte {offset}")
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            offset += 2
            continue
        segment = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        if marker in _SOF_MARKERS:
            if offset + 9 > length:
                break
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return int(width), int(height)
        if marker == 0xDA:  # start of scan before any frame header
            raise FrameError("corrupt", "JPEG has no frame header before its image data")
        offset += 2 + segment
    raise FrameError("truncated", "JPEG ends before its frame header")


def _check_complete(data: bytes) -> None:
    """Reject a payload cut short in transit: OpenCV would decode it with grey fill."""
    tail = data[-1024:]
    if data.startswith(JPEG_MAGIC):
        if b"\xff\xd9" not in tail:
            raise FrameError("truncated", "JPEG is truncated (no end-of-image marker)")
    elif b"IEND" not in tail:
        raise FrameError("truncated", "PNG is truncated (no IEND chunk)")


def decode_image(
    data: bytes,
    *,
    target_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    rgb: bool = True,
) -> NDArray[np.uint8]:
    """Decode JPEG/PNG bytes to an H×W×3 uint8 image (RGB, or OpenCV's BGR with rgb=False).

    With `target_size`, a JPEG is decoded at the largest DCT reduction that keeps its longer
    side at least `target_size` pixels. Raises FrameError with a reason for anything unusable.
    """
    return decode_frame(data, target_size=target_size, max_bytes=max_bytes, rgb=rgb)[0]


def decode_frame(
    data: bytes,
    *,
    target_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    rgb: bool = True,
) -> tuple[NDArray[np.uint8], tuple[int, int]]:
    """decode_image, also returning the frame's own (width, height) before any reduction."""
    if not data:
        raise FrameError("empty", "payload is empty")
    if len(data) > max_bytes:
        raise FrameError(
            "too_large", f"payload is {len(data)} bytes, over the limit of {max_bytes} bytes"
        )
    width, height = image_size(data)
    if width <= 0 or height <= 0:
        raise FrameError("corrupt", f"image header says {width}x{height} pixels")
    if width * height > MAX_PIXELS:
        raise FrameError("too_many_pixels", f"image is {width}x{height}, over {MAX_PIXELS} pixels")
    _check_complete(data)
    flag = cv2.IMREAD_COLOR
    if target_size and data.startswith(JPEG_MAGIC):
        longer = max(width, height)
        for factor, reduced in _REDUCTIONS:
            if longer // factor >= target_size:
                flag = reduced
                break
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise FrameError("corrupt", "image data cannot be decoded")
    if rgb:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image.astype(np.uint8, copy=False), (width, height)


def letterbox_into(
    image: NDArray[np.uint8], out: NDArray[np.float32], *, bgr: bool = False
) -> Letterbox:
    """Fit `image` into the float32 tensor `out` [1, 3, H, W]: resize, centre, pad with 114.

    Pixels are written channels-first and scaled by 1/255 straight into `out`; with bgr=True the
    channel order is reversed on the way, so the tensor is always RGB.
    """
    input_h, input_w = out.shape[2], out.shape[3]
    height, width = image.shape[:2]
    scale = min(input_w / width, input_h / height)
    new_w = max(1, min(input_w, round(width * scale)))
    new_h = max(1, min(input_h, round(height * scale)))
    pad_x = (input_w - new_w) // 2
    pad_y = (input_h - new_h) // 2
    if (new_w, new_h) != (width, height):
        resized: NDArray[np.uint8] = cv2.resize(  # type: ignore[assignment]
            image, (new_w, new_h), interpolation=cv2.INTER_LINEAR
        )
        image = resized
    planes = out[0]
    if pad_y:
        planes[:, :pad_y, :] = PAD_VALUE
    if pad_y + new_h < input_h:
        planes[:, pad_y + new_h :, :] = PAD_VALUE
    if pad_x:
        planes[:, pad_y : pad_y + new_h, :pad_x] = PAD_VALUE
    if pad_x + new_w < input_w:
        planes[:, pad_y : pad_y + new_h, pad_x + new_w :] = PAD_VALUE
    order = (2, 1, 0) if bgr else (0, 1, 2)
    for channel, source in enumerate(order):
        np.multiply(
            image[:, :, source],
            np.float32(1 / 255),
            out=planes[channel, pad_y : pad_y + new_h, pad_x : pad_x + new_w],
            casting="unsafe",
        )
    return Letterbox(scale, pad_x, pad_y, width, height, input_w, input_h)


def letterbox(image: NDArray[np.uint8], size: int) -> tuple[NDArray[np.float32], Letterbox]:
    """Allocate a [1, 3, size, size] tensor and letterbox an RGB image into it."""
    out = np.empty((1, 3, size, size), dtype=np.float32)
    return out, letterbox_into(image, out)
