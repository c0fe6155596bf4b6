"""Decoding snapshots and letterboxing them into the model input."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from detector.errors import FrameError
from detector.frames import PAD_VALUE, decode_image, image_size, letterbox, letterbox_into


def encode(image_rgb: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, data = cv2.imencode(ext, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return bytes(data.tobytes())


def solid(width: int, height: int, rgb: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = rgb
    return image


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_decode_gives_rgb(ext: str) -> None:
    image = decode_image(encode(solid(40, 30, (255, 0, 0)), ext))
    assert image.shape == (30, 40, 3)
    assert image[..., 0].min() > 240 and image[..., 2].max() < 15


def test_bgr_decode_for_the_hot_path() -> None:
    image = decode_image(encode(solid(40, 30, (255, 0, 0))), rgb=False)
    assert image[..., 2].min() > 240


def test_header_size_without_decoding() -> None:
    assert image_size(encode(solid(123, 45, (1, 2, 3)))) == (123, 45)
    assert image_size(encode(solid(123, 45, (1, 2, 3)), ".png")) == (123, 45)


@pytest.mark.parametrize(
    ("size", "target", "expected"),
    [
        ((4000, 3000), 640, (1000, 750)),  # 4000 / 4 = 1000 >= 640, / 8 = 500 < 640
        ((3840, 2160), 1024, (1920, 1080)),  # / 2 = 1920 >= 1024, / 4 = 960 < 1024
        ((1920, 1080), 1024, (1920, 1080)),  # / 2 = 960 < 1024: full size
        ((1920, 1080), None, (1920, 1080)),
    ],
)
def test_reduced_scale_decode(
    size: tuple[int, int], target: int | None, expected: tuple[int, int]
) -> None:
    data = encode(solid(size[0], size[1], (10, 200, 30)))
    image = decode_image(data, target_size=target)
    assert (image.shape[1], image.shape[0]) == expected
    assert abs(int(image[5, 5, 1]) - 200) < 6


def jpeg() -> bytes:
    rng = np.random.default_rng(0)
    return encode(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (os.urandom(2000), "not_an_image"),
        (b"hello, this is text and not an image", "not_an_image"),
        (jpeg()[: len(jpeg()) // 2], "truncated"),
        (jpeg()[:200], "truncated"),
        (b"\xff\xd8\xff", "truncated"),
        (encode(solid(50, 50, (9, 9, 9)), ".png")[:-30], "truncated"),
    ],
)
def test_malformed_payloads(payload: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode_image(payload)
    assert caught.value.reason == reason
    assert str(caught.value)


def test_corrupt_jpeg_body() -> None:
    data = bytearray(jpeg())
    # Keep the headers and the end marker, wreck the entropy-coded data and the tables.
    start = data.index(b"\xff\xda")
    data[20:start] = b"\x00" * (start - 20)
    with pytest.raises(FrameError) as caught:
        decode_image(bytes(data))
    assert caught.value.reason in {"corrupt", "truncated"}


def test_oversized_payload_refused_before_decoding() -> None:
    with pytest.raises(FrameError) as caught:
        decode_image(b"\xff\xd8\xff" + b"\x00" * 5000, max_bytes=4096)
    assert caught.value.reason == "too_large"
    assert "4096" in str(caught.value)


def test_decompression_bomb_header_refused() -> None:
    data = bytearray(encode(solid(16, 16, (0, 0, 0))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # claims 60000 x 60000
    with pytest.raises(FrameError) as caught:
        decode_image(bytes(data))
    assert caught.value.reason == "too_many_pixels"


def test_zero_dimension_header() -> None:
    data = bytearray(encode(solid(16, 16, (0, 0, 0))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 7] = b"\x00\x00"
    with pytest.raises(FrameError) as caught:
        decode_image(bytes(data))
    assert caught.value.reason == "corrupt"


def test_letterbox_values_hand_computed() -> None:
    # 200x100 into 64x64: scale min(64/200, 64/100) = 0.32 → 64x32, pad_y = (64 - 32) // 2 = 16.
    image = solid(200, 100, (255, 0, 51))
    tensor, box = letterbox(image, 64)
    assert (box.scale, box.pad_x, box.pad_y, box.width, box.height) == (0.32, 0, 16, 200, 100)
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, :, :16, :], PAD_VALUE)
    np.testing.assert_allclose(tensor[0, :, 48:, :], PAD_VALUE)
    np.testing.assert_allclose(tensor[0, 0, 16:48, :], 1.0)
    np.testing.assert_allclose(tensor[0, 1, 16:48, :], 0.0)
    np.testing.assert_allclose(tensor[0, 2, 16:48, :], 0.2)


def test_letterbox_into_reused_tensor_and_bgr() -> None:
    out = np.zeros((1, 3, 64, 64), dtype=np.float32)
    letterbox_into(solid(200, 100, (0, 0, 0)), out)
    # A tall BGR frame next: the previous frame's pixels must not survive in the new padding.
    bgr = solid(100, 200, (255, 0, 0))  # blue in BGR order
    box = letterbox_into(bgr, out, bgr=True)
    assert (box.pad_x, box.pad_y) == (16, 0)
    np.testing.assert_allclose(out[0, :, :, :16], PAD_VALUE)
    np.testing.assert_allclose(out[0, 2, :, 16:48], 1.0)
    np.testing.assert_allclose(out[0, 0, :, 16:48], 0.0)
