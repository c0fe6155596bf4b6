"""Decoding snapshots and letterboxing them into the model input."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.annotate import annotate_jpeg
from detector.errors import FrameError
from detector.frames import (
    PAD_VALUE,
    Letterbox,
    decode_frame,
    decode_image,
    letterbox_into,
)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """A fresh [1, 3, size, size] tensor with an RGB image letterboxed into it."""
    out = np.empty((1, 3, size, size), dtype=np.float32)
    return out, letterbox_into(image, out)


def encode(image_rgb: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, data = cv2.imencode(ext, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return bytes(data.tobytes())


def solid(width: int, height: int, rgb: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = rgb
    return image


def noisy_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    return encode(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def with_exif(jpeg: bytes, orientation: int = 1, thumbnail: bytes = b"") -> bytes:
    """`jpeg` with an APP1 EXIF segment (orientation tag) and optional trailing thumbnail bytes."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + thumbnail
    return jpeg[:2] + segment(0xE1, b"Exif\x00\x00" + tiff) + jpeg[2:]


def png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_decode_gives_rgb(ext: str) -> None:
    image = decode_image(encode(solid(40, 30, (255, 0, 0)), ext))
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8
    assert image.flags.c_contiguous
    assert image[..., 0].min() > 240 and image[..., 1:].max() < 15


def test_png_colours_are_exact() -> None:
    image = decode_image(encode(solid(8, 4, (255, 0, 51)), ".png"))
    assert image[0, 0].tolist() == [255, 0, 51]


def test_bgr_decode_for_the_hot_path() -> None:
    image, size = decode_frame(encode(solid(40, 30, (255, 0, 0))), rgb=False)
    assert image[..., 2].min() > 240 and image[..., 0].max() < 15
    assert size == (40, 30)


def test_progressive_jpeg() -> None:
    ok, data = cv2.imencode(".jpg", solid(64, 48, (0, 0, 255)), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok and b"\xff\xc2" in data.tobytes()  # SOF2: progressive frame header
    image = decode_image(data.tobytes())
    assert image.shape == (48, 64, 3) and image[..., 0].min() > 240  # BGR red → RGB red


@pytest.mark.parametrize(
    ("size", "target", "expected"),
    [
        ((4000, 3000), 640, (1000, 750)),  # / 4 = 1000 >= 640, / 8 = 500 < 640
        ((4000, 3000), 320, (500, 375)),  # / 8
        ((3840, 2160), 1024, (1920, 1080)),  # / 2 = 1920 >= 1024, / 4 = 960 < 1024
        ((1280, 720), 640, (640, 360)),  # exactly the target: / 2
        ((1920, 1080), 1024, (1920, 1080)),  # / 2 = 960 < 1024: full size
        ((1080, 1920), 1024, (1080, 1920)),  # portrait: the longer side counts
        ((1920, 1080), None, (1920, 1080)),
    ],
)
def test_reduced_scale_decode(
    size: tuple[int, int], target: int | None, expected: tuple[int, int]
) -> None:
    data = encode(solid(size[0], size[1], (10, 200, 30)))
    image, own = decode_frame(data, target_size=target)
    assert (image.shape[1], image.shape[0]) == expected
    assert own == size  # the frame's own size, whatever the reduction
    assert abs(int(image[5, 5, 1]) - 200) < 6


def test_png_is_never_reduced() -> None:
    image = decode_image(encode(solid(1400, 700, (5, 5, 5)), ".png"), target_size=320)
    assert image.shape == (700, 1400, 3)


def test_exif_orientation_is_ignored() -> None:
    # Orientation 6 would rotate the frame 90°: scored on its stored grid, like Pyronear.
    image, size = decode_frame(with_exif(encode(solid(40, 30, (9, 9, 9))), orientation=6))
    assert image.shape == (30, 40, 3) and size == (40, 30)


@pytest.mark.parametrize("trailer", [b"\x00" * 100, b"\r\n", b"--boundary--\r\n"])
def test_bytes_after_the_end_marker_are_tolerated(trailer: bytes) -> None:
    assert decode_image(noisy_jpeg() + trailer).shape == (120, 160, 3)


# --- malformed payloads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (os.urandom(2000), "not_an_image"),
        (b"hello, this is text and not an image", "not_an_image"),
        (b"GIF89a" + b"\x00" * 50, "not_an_image"),
        (noisy_jpeg()[: len(noisy_jpeg()) // 2], "truncated"),
        (noisy_jpeg()[:-2], "truncated"),  # only the end marker is missing
        (noisy_jpeg()[:200], "truncated"),
        (b"\xff\xd8\xff", "truncated"),
        (encode(solid(50, 50, (9, 9, 9)), ".png")[:-30], "truncated"),
        (encode(solid(50, 50, (9, 9, 9)), ".png")[:20], "truncated"),
    ],
)
def test_malformed_payloads(payload: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode_image(payload)
    assert caught.value.reason == reason
    assert str(caught.value)


def test_truncated_jpeg_with_a_thumbnail_end_marker() -> None:
    # An EXIF thumbnail brings its own FF D9 before the scan: it must not pass for the image's.
    data = with_exif(noisy_jpeg(), thumbnail=encode(solid(8, 8, (1, 1, 1))))
    assert decode_image(data).shape == (120, 160, 3)
    with pytest.raises(FrameError) as caught:
        decode_image(data[: len(data) - 500])
    assert caught.value.reason == "truncated"


def test_corrupt_jpeg_tables() -> None:
    data = bytearray(noisy_jpeg())
    # Keep SOI, the scan and the end marker; wreck the segments in between.
    start = data.index(b"\xff\xda")
    data[20:start] = b"\x00" * (start - 20)
    with pytest.raises(FrameError) as caught:
        decode_image(bytes(data))
    assert caught.value.reason == "corrupt"


def test_corrupt_jpeg_body_the_decoder_refuses() -> None:
    data = noisy_jpeg()
    dht = data.index(b"\xff\xc4")
    # A Huffman table whose code counts overflow (256 codes of length 1) makes libjpeg give up.
    length = int.from_bytes(data[dht + 2 : dht + 4], "big")
    bad = bytes([0x00]) + bytes([0xFF] * 16) + bytes(length - 2 - 17)
    broken = data[:dht] + segment(0xC4, bad) + data[dht + 2 + length :]
    with pytest.raises(FrameError) as caught:
        decode_image(broken)
    assert caught.value.reason == "corrupt"


def test_jpeg_without_frame_header() -> None:
    data = noisy_jpeg()
    sof = data.index(b"\xff\xc0")
    length = int.from_bytes(data[sof + 2 : sof + 4], "big")
    with pytest.raises(FrameError) as caught:
        decode_image(data[:sof] + data[sof + 2 + length :])
    assert caught.value.reason == "corrupt"


def test_jpeg_segment_with_impossible_length() -> None:
    with pytest.raises(FrameError) as caught:
        decode_image(b"\xff\xd8\xff\xe0\x00\x01" + b"\x00" * 100 + b"\xff\xd9")
    assert caught.value.reason == "corrupt"


def test_oversized_payload_refused_before_anything_else() -> None:
    with pytest.raises(FrameError) as caught:
        decode_image(b"not even an image" + b"\x00" * 5000, max_bytes=4096)
    assert caught.value.reason == "too_large"
    assert "4096" in str(caught.value)


def test_payload_at_the_limit_is_accepted() -> None:
    data = noisy_jpeg()
    assert decode_image(data, max_bytes=len(data)).shape == (120, 160, 3)


def test_decompression_bomb_jpeg_header_refused() -> None:
    data = bytearray(encode(solid(16, 16, (0, 0, 0))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # claims 60000 x 60000
    with pytest.raises(FrameError) as caught:
        decode_image(bytes(data))
    assert caught.value.reason == "too_many_pixels"


def test_decompression_bomb_png_header_refused() -> None:
    with pytest.raises(FrameError) as caught:
        decode_image(png_header_claiming(100_000, 100_000))
    assert caught.value.reason == "too_many_pixels"


def test_ten_thousand_squared_png_is_refused_before_decoding() -> None:
    # A 97 KB PNG of 10000x10000 used to be decoded: 540 MB more RSS and 3 s per frame.
    with pytest.raises(FrameError) as caught:
        decode_image(png_header_claiming(10_000, 10_000))
    assert caught.value.reason == "too_many_pixels"


def test_alert_image_checks_pixels_before_decoding() -> None:
    # A 12 KB JPEG whose header claims 10000x10000 was decoded at full size (700 MB) to draw
    # the alert image, off the scoring path's own checks.
    data = bytearray(encode(solid(16, 16, (0, 0, 0))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (10_000).to_bytes(2, "big") * 2
    boxes = np.array([[0.1, 0.1, 0.2, 0.2, 0.9]], dtype=np.float32)
    with pytest.raises(FrameError) as caught:
        annotate_jpeg(bytes(data), boxes)
    assert caught.value.reason == "too_many_pixels"


def test_alert_image_of_a_large_frame_is_drawn_at_reduced_scale() -> None:
    big = encode(solid(4000, 3000, (40, 80, 120)))
    boxes = np.array([[0.1, 0.1, 0.2, 0.2, 0.9]], dtype=np.float32)
    drawn = decode_image(annotate_jpeg(big, boxes))
    assert drawn.shape == (1500, 2000, 3)  # DCT 1/2: the longer side still >= 1920


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_zero_dimension_header(ext: str) -> None:
    if ext == ".png":
        data = png_header_claiming(0, 16)
    else:
        jpeg = bytearray(encode(solid(16, 16, (0, 0, 0))))
        sof = jpeg.index(b"\xff\xc0")
        jpeg[sof + 5 : sof + 7] = b"\x00\x00"
        data = bytes(jpeg)
    with pytest.raises(FrameError) as caught:
        decode_image(data)
    assert caught.value.reason == "corrupt"


def test_png_with_unreadable_pixels() -> None:
    with pytest.raises(FrameError) as caught:
        decode_image(png_header_claiming(16, 16))  # a header and IEND, no image data
    assert caught.value.reason == "corrupt"


# --- letterbox ------------------------------------------------------------------------------


def test_letterbox_values_hand_computed() -> None:
    # 200x100 into 64x64: scale min(64/200, 64/100) = 0.32 → 64x32, pad_y = (64 - 32) // 2 = 16.
    image = solid(200, 100, (255, 0, 51))
    tensor, box = letterbox(image, 64)
    assert (box.scale, box.pad_x, box.pad_y, box.width, box.height) == (0.32, 0, 16, 200, 100)
    assert (box.input_w, box.input_h) == (64, 64)
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, :, :16, :], PAD_VALUE)
    np.testing.assert_allclose(tensor[0, :, 48:, :], PAD_VALUE)
    np.testing.assert_allclose(tensor[0, 0, 16:48, :], 1.0)
    np.testing.assert_allclose(tensor[0, 1, 16:48, :], 0.0)
    np.testing.assert_allclose(tensor[0, 2, 16:48, :], 0.2)
    assert abs(PAD_VALUE - 0.447) < 1e-3


def test_letterbox_odd_padding_and_non_square_input() -> None:
    # 100x100 into W=64, H=48: scale 0.48 → 48x48, pad_x = (64 - 48) // 2 = 8, right pad 8.
    out = np.full((1, 3, 48, 64), np.nan, dtype=np.float32)
    box = letterbox_into(solid(100, 100, (0, 0, 0)), out)
    assert (box.scale, box.pad_x, box.pad_y) == (0.48, 8, 0)
    np.testing.assert_allclose(out[0, :, :, :8], PAD_VALUE)
    np.testing.assert_allclose(out[0, :, :, 56:], PAD_VALUE)
    np.testing.assert_allclose(out[0, :, :, 8:56], 0.0)
    # 3 rows of padding to share: the smaller half goes on top.
    out = np.full((1, 3, 64, 64), np.nan, dtype=np.float32)
    box = letterbox_into(solid(64, 61, (255, 255, 255)), out)
    assert (box.pad_y, box.scale) == (1, 1.0)
    np.testing.assert_allclose(out[0, :, :1], PAD_VALUE)
    np.testing.assert_allclose(out[0, :, 62:], PAD_VALUE)
    np.testing.assert_allclose(out[0, :, 1:62], 1.0)


def test_letterbox_of_the_exact_input_size_copies_pixels() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    tensor, box = letterbox(image, 32)
    assert (box.scale, box.pad_x, box.pad_y) == (1.0, 0, 0)
    np.testing.assert_allclose(tensor[0], image.transpose(2, 0, 1) / 255, rtol=1e-6)


def test_letterbox_into_reused_tensor_and_bgr() -> None:
    out = np.zeros((1, 3, 64, 64), dtype=np.float32)
    letterbox_into(solid(200, 100, (0, 0, 0)), out)
    # A tall BGR frame next: the previous frame's pixels must not survive in the new padding.
    bgr = solid(100, 200, (255, 0, 0))  # blue in BGR order
    box = letterbox_into(bgr, out, bgr=True)
    assert (box.pad_x, box.pad_y) == (16, 0)
    np.testing.assert_allclose(out[0, :, :, :16], PAD_VALUE)
    np.testing.assert_allclose(out[0, :, :, 48:], PAD_VALUE)
    np.testing.assert_allclose(out[0, 2, :, 16:48], 1.0)
    np.testing.assert_allclose(out[0, 0, :, 16:48], 0.0)


def test_bgr_hot_path_equals_rgb_path() -> None:
    rng = np.random.default_rng(2)
    data = encode(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    rgb_tensor, _ = letterbox(decode_image(data), 64)
    bgr_tensor = np.empty_like(rgb_tensor)
    letterbox_into(decode_frame(data, rgb=False)[0], bgr_tensor, bgr=True)
    np.testing.assert_array_equal(rgb_tensor, bgr_tensor)


def test_letterbox_rejects_wrong_arrays() -> None:
    with pytest.raises(ValueError, match="float32"):
        letterbox_into(solid(8, 8, (0, 0, 0)), np.zeros((1, 3, 8, 8), dtype=np.float64))
    with pytest.raises(ValueError, match="uint8"):
        letterbox_into(np.zeros((8, 8), dtype=np.uint8), np.zeros((1, 3, 8, 8), dtype=np.float32))


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    input_w=st.integers(8, 96),
    input_h=st.integers(8, 96),
)
def test_letterbox_fills_every_cell(width: int, height: int, input_w: int, input_h: int) -> None:
    out = np.full((1, 3, input_h, input_w), np.nan, dtype=np.float32)
    box = letterbox_into(solid(width, height, (255, 255, 255)), out)
    new_w, new_h = round(width * box.scale), round(height * box.scale)
    assert not np.isnan(out).any()
    assert max(new_w, 1) <= input_w and max(new_h, 1) <= input_h
    assert new_w == input_w or new_h == input_h or min(new_w, new_h) <= 1
    image_cells = np.isclose(out[0, 0], 1.0).sum()
    assert image_cells == max(new_w, 1) * max(new_h, 1)
    assert np.isclose(out, PAD_VALUE).sum() == 3 * (input_w * input_h - image_cells)
