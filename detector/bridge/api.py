"""A client of the Pyronear alert API (`/api/v1`), with each answer classified.

Classification follows the contract: 2xx is success only when it is 204 or JSON with an `id`
(a captive portal's HTML 200 is not); 5xx, 408, 425, 429, network errors and timeouts are
temporary; any other 4xx is final. Tokens only ever travel in the Authorization header and
never appear in the outcomes, logs or exceptions this module produces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import cv2
import numpy as np

RETRY_STATUSES = frozenset({408, 425, 429})
Kind = Literal["ok", "retry", "fail"]


@dataclass(frozen=True)
class Outcome:
    """What came of one API call."""

    kind: Kind
    status: int | None
    detail: str
    body: Any = None

    @property
    def ok(self) -> bool:
        """True on success."""
        return self.kind == "ok"


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
    detail = f"HTTP {status}: {text[:300]}"
    if status >= 500 or status in RETRY_STATUSES:
        return Outcome("retry", status, detail)
    return Outcome("fail", status, detail, body)


def iso(timestamp: float) -> str:
    """Epoch seconds as ISO 8601 UTC."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def fit_for_upload(jpeg: bytes, max_width: int, max_height: int) -> bytes:
    """The frame itself, or re-encoded once at most max_width x max_height (4G bandwidth)."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return jpeg
    height, width = image.shape[:2]
    if width <= max_width and height <= max_height:
        return jpeg
    scale = min(max_width / width, max_height / height)
    resized = cv2.resize(
        image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
    )
    ok, encoded = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return bytes(encoded.tobytes()) if ok else jpeg


def crops(jpeg: bytes, boxes: list[list[float]], size: int = 224) -> list[bytes]:
    """One size x size JPEG crop around each box."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return []
    height, width = image.shape[:2]
    out = []
    for x1, y1, x2, y2, *_ in boxes:
        left, top = int(x1 * width), int(y1 * height)
        right, bottom = max(left + 1, int(x2 * width)), max(top + 1, int(y2 * height))
        crop = cv2.resize(image[top:bottom, left:right], (size, size), interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            out.append(bytes(encoded.tobytes()))
    return out


class PyronearClient:
    """The calls a camera makes, over one aiohttp session."""

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

    async def _call(
        self, method: str, path: str, token: str, *, data: Any = None, needs_id: bool = True
    ) -> Outcome:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self.session().request(
                method, self.base + path, data=data, headers=headers
            ) as response:
                text = await response.text(errors="replace")
                return classify(response.status, text, needs_id=needs_id)
        except TimeoutError:
            return Outcome("retry", None, f"no answer within {self.timeout.total:g} s")
        except aiohttp.ClientError as err:
            # The exception's text names the host and the error, never the request headers.
            return Outcome("retry", None, f"{type(err).__name__}: {err}")

    async def post_detection(
        self,
        token: str,
        pose_id: int,
        bboxes: str,
        recorded_at: float,
        jpeg: bytes,
        crop_images: list[bytes] | None = None,
    ) -> Outcome:
        """`POST detections/` (multipart)."""
        form = aiohttp.FormData()
        form.add_field("bboxes", bboxes)
        form.add_field("pose_id", str(pose_id))
        form.add_field("recorded_at", iso(recorded_at))
        form.add_field("file", jpeg, filename="frame.jpg", content_type="image/jpeg")
        for index, crop in enumerate(crop_images or []):
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

    async def occlusion_masks(self, token: str, pose_id: int) -> Outcome:
        """`GET poses/{pose_id}/occlusion_masks`: a JSON list."""
        outcome = await self._call("GET", f"poses/{pose_id}/occlusion_masks", token, needs_id=False)
        if outcome.ok and not isinstance(outcome.body, list):
            return Outcome("retry", outcome.status, "occlusion masks: expected a JSON list")
        return outcome
