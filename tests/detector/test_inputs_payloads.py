"""MQTT snapshot payloads: raw image bytes, base64 text, the JSON envelope and its `ts`."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest

from detector.errors import FrameError
from detector.inputs.payloads import parse_frame_payload
from tests.detector.tiny_model import smoke_jpeg

JPEG = smoke_jpeg(120, 64)
ARRIVED = 1_790_000_000.0  # 2026-09-21, the time the payload "arrived"


def png() -> bytes:
    ok, encoded = cv2.imencode(".png", np.full((8, 8, 3), 50, np.uint8))
    assert ok
    return bytes(encoded.tobytes())


def test_raw_images_are_used_as_they_are() -> None:
    data, at = parse_frame_payload(JPEG, ARRIVED)
    assert data is JPEG and at == ARRIVED  # no copy on the scoring path
    image = png()
    assert parse_frame_payload(image, ARRIVED) == (image, ARRIVED)


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(JPEG),
        base64.encodebytes(JPEG),  # MIME: wrapped at 76 columns
        b"data:image/jpeg;base64," + base64.b64encode(JPEG),
        b"  " + base64.urlsafe_b64encode(JPEG).replace(b"-", b"+").replace(b"_", b"/"),
    ],
)
def test_base64_text_is_decoded(text: bytes) -> None:
    assert parse_frame_payload(text, ARRIVED) == (JPEG, ARRIVED)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1_700_000_000, 1_700_000_000.0),  # seconds
        (1_700_000_000_500, 1_700_000_000.5),  # milliseconds, as JavaScript sends
        (1_700_000_000_000_000, 1_700_000_000.0),  # microseconds
    ],
)
def test_the_envelope_gives_its_own_time(ts: int, expected: float) -> None:
    envelope = json.dumps({"image": base64.b64encode(JPEG).decode(), "ts": ts}).encode()
    data, at = parse_frame_payload(envelope, ARRIVED)
    assert data == JPEG and at == pytest.approx(expected)


def test_an_envelope_without_ts_takes_the_arrival_time() -> None:
    envelope = json.dumps({"image": base64.b64encode(JPEG).decode()}).encode()
    assert parse_frame_payload(b" \n" + envelope, ARRIVED) == (JPEG, ARRIVED)


def test_an_implausible_ts_is_reported_and_the_frame_still_scored() -> None:
    # A camera whose clock was never set must not blind the alarm.
    problems: list[str] = []
    envelope = json.dumps({"image": base64.b64encode(JPEG).decode(), "ts": 12}).encode()
    data, at = parse_frame_payload(envelope, ARRIVED, on_bad_time=problems.append)
    assert data == JPEG and at == ARRIVED
    assert len(problems) == 1 and "arrival time is used instead" in problems[0]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (b"\x00\x01binary garbage", "not_an_image"),
        (b"aGVsbG8=", "not_an_image"),  # valid base64 of "hello"
        (b"abc", "bad_base64"),
        (b"{not json", "bad_envelope"),
        (b'{"image": 12}', "bad_envelope"),
        (b'["image"]', "not_an_image"),  # JSON, but no envelope
        (b'{"image": {"deep": {"er": 1}}}', "bad_envelope"),
        (
            json.dumps({"image": base64.b64encode(JPEG).decode(), "ts": "soon"}).encode(),
            "bad_envelope",
        ),
        (b'{"image": "aGVsbG8=", "ts": NaN}', "bad_envelope"),
    ],
)
def test_unusable_payloads_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame_payload(payload, ARRIVED)
    assert caught.value.reason == reason
