"""Encoded snapshot bytes → pixels → the model's input tensor.

The scoring path never re-encodes: a JPEG much larger than the model input is decoded at a
reduced scale by the JPEG decoder itself (DCT scaling: 1/2, 1/4 or 1/8), and the letterbox
writes the resized pixels straight into the preallocated input tensor.

Colour order: OpenCV decodes to BGR. Asking it for RGB (IMREAD_COLOR_RGB) costs a third more
than a BGR decode and cannot be combined with the reduced-scale flags, so the hot path decodes
BGR (`rgb=False`) and lets `letterbox_into(..., bgr=True)` read the channels in reverse order
while it writes the tensor: the swap costs nothing there. `decode_image` defaults to RGB for
every other caller.

EXIF orientation is ignored: frames are scored on their stored pixel grid, as Pyronear's
engine does, so the size read from the header is the size decoded and boxes refer to the
pixels that are forwarded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.config.detection import DEFAULT_MAX_FRAME_BYTES
from detector.errors import FrameError

# 40 MP: above any camera (8K UHD is 33 MP), far below a decompression bomb; a 10000x10000
# PNG of 97 KB would cost 300 MB and seconds to decode. Checked from the header, before any
# decode, on the scoring path and for the alert image alike.
MAX_PIXELS = 40_000_000
PAD_VALUE = 114 / 255

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the whole empty IEND chunk, CRC included
# Bytes after the end marker that are still accepted (padding, a multipart boundary, a
# vendor trailer); a payload whose end marker is further back is treated as cut short.
_TRAILER_WINDOW = 64 * 1024
_REDUCTIONS = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)
# Start-of-frame markers that carry the image size (every SOFn but DHT, JPG and DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOS = 0xDA
_STANDALONE_MARKERS = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})


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


def _header(data: bytes) -> tuple[int, int, int]:
    """(width, height, offset where the pixel data starts) of a JPEG or PNG payload."""
    if data.startswith(PNG_MAGIC):
        if len(data) < 33:
            raise FrameError("truncated", "PNG ends inside its header")
        if data[12:16] != b"IHDR":
            raise FrameError("corrupt", "PNG does not start with an IHDR chunk")
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height), 33
    if not data.startswith(JPEG_MAGIC):
        raise FrameError("not_an_image", "payload is neither a JPEG nor a PNG image")
    return _jpeg_header(data)


def _jpeg_header(data: bytes) -> tuple[int, int, int]:
    """Walk the JPEG marker segments up to the first scan; O(number of segments)."""
    size: tuple[int, int] | None = None
    offset = 2
    length = len(data)
    while offset + 4 <= length:
        if data[offset] != 0xFF:
            raise FrameError("corrupt", f"JPEG marker expected at byte {offset}")
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if marker in _STANDALONE_MARKERS:
            offset += 2
            continue
        segment = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if segment < 2:
            raise FrameError("corrupt", f"JPEG segment at byte {offset} has length {segment}")
        if marker in _SOF_MARKERS and size is None:
            if offset + 9 > length:
                break
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            size = (int(width), int(height))
        elif marker == _SOS:
            if size is None:
                raise FrameError("corrupt", "JPEG has no frame header before its image data")
            return size[0], size[1], offset + 2 + segment
        offset += 2 + segment
    raise FrameError("truncated", "JPEG ends before its image data")


def _check_complete(data: bytes, pixels_start: int) -> None:
    """Reject a payload cut short in transit: OpenCV would decode it with grey fill.

    The end marker must follow the pixel data (entropy-coded JPEG data cannot contain
    FF D9, and an embedded EXIF thumbnail's own marker lies before the scan). Trailing
    bytes after it are tolerated: decoders ignore them and some cameras pad their frames.
    Damaged pixel data that still ends properly is beyond this check: libjpeg decodes it
    with only a warning on stderr, which OpenCV does not report; such a frame scores as
    noise once, and the temporal vote absorbs a single frame.
    """
    window_start = max(pixels_start, len(data) - _TRAILER_WINDOW)
    if data.startswith(PNG_MAGIC):
        if data.rfind(_PNG_IEND, window_start) < 0:
            raise FrameError("truncated", "PNG is truncated (no IEND chunk at its end)")
    elif data.rfind(_JPEG_EOI, window_start) < 0:
        raise FrameError("truncated", "JPEG is truncated (no end-of-image marker)")


def decode_image(
    data: bytes,
    *,
    target_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    rgb: bool = True,
) -> NDArray[np.uint8]:
    """Decode JPEG/PNG bytes to a C-contiguous H×W×3 uint8 image (RGB; BGR with rgb=False).

    With `target_size`, a JPEG is decoded at the largest DCT reduction that keeps its longer
    side at least `target_size` pixels. Raises FrameError with a reason for anything unusable.
    """
    return decode_frame(data, target_size=target_size, max_bytes=max_bytes, rgb=rgb)[0]


def check_frame_size(size: int, limit: int) -> None:
    """The frame size rule (`detection.max_frame_bytes`): FrameError "too_large" above it.

    Live frames meet it once, at the inputs' gate (detector.inputs.gate), before they are
    stored; the decoder keeps it as its own precondition for the offline tools (replay, bench),
    whose frames do not pass the gate.
    """
    if size > limit:
        raise FrameError(
            "too_large", f"payload of {size} bytes is over detection.max_frame_bytes ({limit})"
        )


def decode_frame(
    data: bytes,
    *,
    target_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    rgb: bool = True,
) -> tuple[NDArray[np.uint8], tuple[int, int]]:
    """decode_image, also returning the frame's own (width, height) before any reduction.

    Cheap checks run first, in this order: size of the payload, magic bytes, the header's
    dimensions and pixel count, the end marker; only then is anything decoded.
    """
    if not data:
        raise FrameError("empty", "payload is empty")
    check_frame_size(len(data), max_bytes)
    width, height, pixels_start = _header(data)
    if width <= 0 or height <= 0:
        raise FrameError("corrupt", f"image header says {width}x{height} pixels")
    if width * height > MAX_PIXELS:
        raise FrameError("too_many_pixels", f"image is {width}x{height}, over {MAX_PIXELS} pixels")
    _check_complete(data, pixels_start)
    flag = cv2.IMREAD_COLOR
    if target_size and data.startswith(JPEG_MAGIC):
        longer = max(width, height)
        for factor, reduced in _REDUCTIONS:
            if longer // factor >= target_size:
                flag = reduced
                break
    try:
        image = cv2.imdecode(
            np.frombuffer(data, dtype=np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION
        )
    except cv2.error as err:  # e.g. a header OpenCV's own limits refuse
        raise FrameError("corrupt", f"image data cannot be decoded: {err}") from err
    if image is None or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise FrameError("corrupt", "image data cannot be decoded")
    if rgb:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    # A no-op at run time (dtype checked above): it gives the array its static type.
    return np.asarray(image, dtype=np.uint8), (width, height)


def restamped(data: bytes, number: int) -> bytes:
    """The same picture in other bytes, as a live camera's next capture of a still scene (whose
    JPEG carries a new timestamp): a JPEG gets a comment segment holding `number` after its
    start marker; anything else gets `number` appended after its end (decoders ignore it).

    The pixels are unchanged, so a benchmark or a test can send "new" frames of one picture
    without the pipeline taking them for a frozen camera's repeats.
    """
    text = str(number).encode("ascii")
    if data.startswith(JPEG_MAGIC):
        return data[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + data[2:]
    return data + text


def letterbox_into(
    image: NDArray[np.uint8], out: NDArray[np.float32], *, bgr: bool = False
) -> Letterbox:
    """Fit `image` into the float32 tensor `out` [1, 3, H, W]: resize, centre, pad with 114.

    Pixels are written channels-first and scaled by 1/255 straight into `out`; only the
    padding around them is filled, so `out` can be reused frame after frame. With bgr=True
    the channels are read in reverse order, so the tensor is always RGB.
    """
    if out.ndim != 4 or out.shape[:2] != (1, 3) or out.dtype != np.float32:
        raise ValueError(f"expected a float32 [1, 3, H, W] tensor, got {out.dtype} {out.shape}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 H×W×3 image, got {image.dtype} {image.shape}")
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
    bottom, right = pad_y + new_h, pad_x + new_w
    if pad_y:
        planes[:, :pad_y, :] = PAD_VALUE
    if bottom < input_h:
        planes[:, bottom:, :] = PAD_VALUE
    if pad_x:
        planes[:, pad_y:bottom, :pad_x] = PAD_VALUE
    if right < input_w:
        planes[:, pad_y:bottom, right:] = PAD_VALUE
    inverse = np.float32(1 / 255)
    for channel, source in enumerate((2, 1, 0) if bgr else (0, 1, 2)):
        np.multiply(
            image[:, :, source],
            inverse,
            out=planes[channel, pad_y:bottom, pad_x:right],
            casting="unsafe",
        )
    return Letterbox(scale, pad_x, pad_y, width, height, input_w, input_h)
