"""A client of the Pyronear alert API (`/api/v1`), with each answer classified.

Classification follows the contract: 2xx is success only when it is 204 or JSON with an `id`
(a captive portal's HTML 200 is not); 5xx, 408, 425, 429, network errors and timeouts are
temporary; 401, 403 and 406 say the camera's token (or pose) is not accepted: a configuration
fault of the whole camera, never of one item; any other 4xx is final. Tokens only ever travel
in the Authorization header and never appear in the outcomes, logs or exceptions this module
produces; answers are redacted before they become an outcome's detail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import cv2
import numpy as np

from detector.contract import iso_utc
from detector.redact import redact_text

RETRY_STATUSES = frozenset({408, 425, 429})
# Not authenticated (or token expired / signed with another secret), wrong scope or another
# camera's pose, undecodable token: what changes this is the token, not the item.
AUTH_STATUSES = frozenset({401, 403, 406})
# Bytes of an answer read at most (a portal page or an error body), and kept in errors.
MAX_BODY = 1024 * 1024
BODY_IN_ERRORS = 300
CROP_SIZE = 224
Kind = Literal["ok", "retry", "fail", "auth"]


@dataclass(frozen=True)
class Outcome:
    """What came of one API call.

    `status` is None when no HTTP answer came back (network error or timeout); `sent` is False
    only when the request certainly never reached the server (connection refused).
    """

    kind: Kind
    status: int | None
    detail: str
    body: Any = None
    sent: bool = True

    @property
    def ok(self) -> bool:
        """True on success."""
        return self.kind == "ok"

    @property
    def network(self) -> bool:
        """No HTTP answer at all: the link (not one camera's item) is the problem."""
        return self.status is None


def classify(status: int, text: str, *, needs_id: bool = True) -> Outcome:
    """The outcome of an HTTP answer."""
    body: Any = None
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        if status == 204:
            return Outcome("ok", status, "no content", None)
        if body is None:
            return Outcome(
                "retry", status, f"HTTP {status} without JSON (a proxy or captive portal?)"
            )
        if needs_id and not (isinstance(body, dict) and "id" in body):
            return Outcome("retry", status, f"HTTP {status} JSON without an id")
        return Outcome("ok", status, "ok", body)
    # The body goes into logs, `last_error` and the retained stats: a server that echoes the
    # request's headers must not put the token there.
    detail = redact_text(f"HTTP {status}: {' '.join(text[:BODY_IN_ERRORS].split())}")
    if status in AUTH_STATUSES:
        return Outcome("auth", status, detail)
    if status >= 500 or status in RETRY_STATUSES:
        return Outcome("retry", status, detail)
    return Outcome("fail", status, detail, body)


def _decode(jpeg: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image)


def _encode(image: np.ndarray) -> bytes | None:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return bytes(encoded.tobytes()) if ok else None


def fit_for_upload(jpeg: bytes, max_width: int, max_height: int) -> bytes:
    """The frame itself, or re-encoded once at most max_width x max_height (4G bandwidth).

    A frame that does not decode is sent as it is: the API stores what it gets, and the item
    must not stay stuck in the outbox for a local reason.
    """
    image = _decode(jpeg)
    if image is None:
        return jpeg
    height, width = image.shape[:2]
    if width <= max_width and height <= max_height:
        return jpeg
    scale = min(max_width / width, max_height / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return _encode(resized) or jpeg


def crops(jpeg: bytes, boxes: Sequence[Sequence[float]], size: int = CROP_SIZE) -> list[bytes]:
    """One size x size JPEG per box: the square around the box, scaled (no distortion)."""
    image = _decode(jpeg)
    if image is None:
        return []
    height, width = image.shape[:2]
    out = []
    for x1, y1, x2, y2, *_ in boxes:
        side = max(8, round(max((x2 - x1) * width, (y2 - y1) * height)))
        side = min(side, width, height)
        cx, cy = (x1 + x2) / 2 * width, (y1 + y2) / 2 * height
        left = min(max(0, round(cx - side / 2)), width - side)
        top = min(max(0, round(cy - side / 2)), height - side)
        square = image[top : top + side, left : left + side]
        encoded = _encode(cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA))
        if encoded is not None:
            out.append(encoded)
    return out


class PyronearClient:
    """The calls a camera makes, over one aiohttp session.

    The token is passed per call and only ever goes into the Authorization header: no outcome,
    log line or exception text built here contains it.
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.base = url.rstrip("/") + "/api/v1/"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The session, created on first use (no network at start-up)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, method: str, path: str, token: str, *, data: Any = None, needs_id: bool = True
    ) -> Outcome:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self.session().request(
                method, self.base + path, data=data, headers=headers
            ) as response:
                raw = await response.content.read(MAX_BODY)
                return classify(response.status, raw.decode("utf-8", "replace"), needs_id=needs_id)
        except TimeoutError:
            return Outcome("retry", None, f"no answer within {self.timeout.total:g} s")
        except aiohttp.ClientConnectorError as err:
            # Only the OS error: the exception never carries the request headers anyway.
            return Outcome("retry", None, f"cannot connect: {err.os_error}", sent=False)
        except (aiohttp.ClientError, OSError, ValueError) as err:
            # ValueError: aiohttp refusing the request itself (e.g. a header it cannot send).
            return Outcome("retry", None, f"{type(err).__name__}: {_safe(err)}")

    async def post_detection(
        self,
        token: str,
        pose_id: int,
        bboxes: str,
        recorded_at: float,
        jpeg: bytes,
        crop_images: Sequence[bytes] = (),
    ) -> Outcome:
        """`POST detections/` (multipart): 201 with an id, or 204 for an empty frame."""
        form = aiohttp.FormData()
        form.add_field("bboxes", bboxes)
        form.add_field("pose_id", str(pose_id))
        form.add_field("recorded_at", iso_utc(recorded_at))
        form.add_field("file", jpeg, filename="frame.jpg", content_type="image/jpeg")
        for index, crop in enumerate(crop_images):
            form.add_field("crop", crop, filename=f"crop{index}.jpg", content_type="image/jpeg")
        return await self._call("POST", "detections/", token, data=form)

    async def heartbeat(self, token: str) -> Outcome:
        """`PATCH cameras/heartbeat`."""
        return await self._call("PATCH", "cameras/heartbeat", token)

    async def last_image(self, token: str, jpeg: bytes) -> Outcome:
        """`PATCH cameras/image`."""
        form = aiohttp.FormData()
        form.add_field("file", jpeg, filename="image.jpg", content_type="image/jpeg")
        return await self._call("PATCH", "cameras/image", token, data=form)

    async def pose_image(self, token: str, pose_id: int, jpeg: bytes) -> Outcome:
        """`PATCH poses/{pose_id}/image`."""
        form = aiohttp.FormData()
        form.add_field("file", jpeg, filename="pose.jpg", content_type="image/jpeg")
        return await self._call("PATCH", f"poses/{pose_id}/image", token, data=form)

    async def poses(self, token: str) -> Outcome:
        """`GET poses/`: the camera's active poses, a JSON list. Read-only and cheap: the
        bridge asks it to learn whether the server answers again after a request it never
        answered, and whether a refusal is the token's, the pose's or the detection's."""
        outcome = await self._call("GET", "poses/", token, needs_id=False)
        if outcome.ok and not isinstance(outcome.body, list):
            return Outcome("retry", outcome.status, "poses: expected a JSON list")
        return outcome

    async def occlusion_masks(self, token: str, pose_id: int) -> Outcome:
        """`GET poses/{pose_id}/occlusion_masks`: a JSON list."""
        outcome = await self._call("GET", f"poses/{pose_id}/occlusion_masks", token, needs_id=False)
        if outcome.ok and not isinstance(outcome.body, list):
            return Outcome("retry", outcome.status, "occlusion masks: expected a JSON list")
        return outcome


def _safe(err: BaseException) -> str:
    """An exception's text, cut before anything that looks like a credential (defence in depth)."""
    text = str(err)
    for marker in ("Authorization", "Bearer"):
        if marker in text:
            text = text[: text.index(marker)] + "[...]"
    return redact_text(text)[:BODY_IN_ERRORS]
