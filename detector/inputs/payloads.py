"""Snapshot payloads as they arrive on MQTT: raw JPEG/PNG, base64 text, or a JSON envelope."""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from typing import Any

from detector.errors import FrameError
from detector.frames import JPEG_MAGIC, PNG_MAGIC
from detector.untrusted import epoch_seconds, finite_number, parse_json

_BASE64_TEXT = re.compile(rb"^(data:[\w/+.-]+;base64,)?[A-Za-z0-9+/=_\-\s]+$")


def parse_frame_payload(
    payload: bytes,
    received_at: float | None = None,
    *,
    on_bad_time: Callable[[str], None] | None = None,
) -> tuple[bytes, float]:
    """The image bytes of a snapshot payload and its capture time.

    Raw JPEG/PNG bytes are used as they are (no copy); `{"image": "<base64>", "ts": <epoch>}`
    gives its own time; base64 text (Blue Iris and friends) is decoded. The capture time is the
    envelope's `ts` when given, else the time the payload arrived. A `ts` that is a number but
    no plausible time (a camera whose clock was never set) is replaced by the arrival time and
    reported to `on_bad_time`: the frame is still scored, so a wrong clock cannot blind the
    alarm. A `ts` that is not a finite number makes the envelope invalid (FrameError).
    """
    arrived = time.time() if received_at is None else received_at
    if not payload:
        raise FrameError("empty", "payload is empty")
    if payload.startswith((JPEG_MAGIC, PNG_MAGIC)):
        return payload, arrived
    stripped = payload.lstrip()
    if stripped.startswith(b"{"):
        return _envelope(stripped, arrived, on_bad_time)
    if not _BASE64_TEXT.match(stripped[:4096]):
        raise FrameError(
            "not_an_image", "payload is neither a JPEG/PNG image, base64 text nor a JSON envelope"
        )
    return _base64(stripped), arrived


def _envelope(
    payload: bytes, arrived: float, on_bad_time: Callable[[str], None] | None
) -> tuple[bytes, float]:
    # The envelope is {"image", "ts"}: two levels are all it can need.
    try:
        data: Any = parse_json(payload, max_depth=2)
    except ValueError as err:
        raise FrameError("bad_envelope", f"JSON envelope: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("image"), str):
        raise FrameError("bad_envelope", 'JSON envelope must be {"image": "<base64>", "ts": ...}')
    if "ts" not in data:
        return _base64(data["image"].encode("ascii", "replace")), arrived
    image = _base64(data["image"].encode("ascii", "replace"))
    try:
        finite_number(data["ts"], "ts")
    except ValueError as err:
        raise FrameError("bad_envelope", f"JSON envelope: {err}") from None
    try:
        # Seconds, or milliseconds as JavaScript clients send, µs or ns; checked here so a
        # time no date can hold never reaches the vote, the stats or the API.
        return image, epoch_seconds(data["ts"], now=max(arrived, time.time()))
    except ValueError as err:
        if on_bad_time is not None:
            on_bad_time(f"{err}; the arrival time is used instead")
        return image, arrived


def _base64(text: bytes) -> bytes:
    if text.startswith(b"data:"):  # a data URL: data:image/jpeg;base64,....
        text = text.partition(b",")[2]
    # MIME encoders wrap base64 at 76 columns: line breaks and spaces are not data.
    compact = b"".join(text.split())
    try:
        image = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError(
            "bad_base64", "payload is neither a JPEG/PNG image nor valid base64 text"
        ) from None
    if not image.startswith((JPEG_MAGIC, PNG_MAGIC)):
        raise FrameError("not_an_image", "base64 payload does not decode to a JPEG or PNG image")
    return image
