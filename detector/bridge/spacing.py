"""Never the same bytes as two stored objects of one camera within one second.

The Pyronear API names a stored image `{camera_id}-{UTC second}-{sha256[:8]}` and deletes the
previous camera (or pose) image object when it receives a new one. The same JPEG sent as a
detection and as the camera image within one second therefore gets one object name: updating
the camera image deletes the file the detection points to. Every upload of the bridge
(detections, camera image, pose image) goes through `UploadSpacing.upload`.

Uploads of the same camera and the same bytes take turns (one lock per camera and digest):
an upload that starts while another of those bytes is in flight waits for its answer, because
the server named that object when it got the request, not when it answered (with a slow API,
the detection, the camera image and the pose image of one frame were all in flight within
one second). Then it waits until a second (and a margin) has passed since that answer, unless
both are detections: two detections of identical bytes may share an object, neither deletes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

# A second and a margin, counted from the server's answer (it named the object before).
SPACING = 1.1


@dataclass
class _Bytes:
    """One camera's uploads of one JPEG: whose turn it is, and the last one's answer."""

    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # uploads holding or waiting for the turn
    kind: str = ""
    answered_at: float = 0.0


class UploadSpacing:
    """Per camera and digest, the uploads in flight and the last answer (one event loop)."""

    def __init__(self, spacing: float = SPACING) -> None:
        self.spacing = spacing
        self._recent: dict[tuple[str, bytes], _Bytes] = {}
        self.waits = 0  # how many uploads had to wait (for tests and curiosity)

    @asynccontextmanager
    async def upload(self, camera: str, kind: str, data: bytes) -> AsyncIterator[None]:
        """Wait for the turn and the spacing, let the caller upload, then remember when the
        answer came.

        `kind` is "detection", "camera" or "pose".
        """
        self._forget_old()
        key = (camera, hashlib.sha256(data).digest())
        entry = self._recent.setdefault(key, _Bytes())
        entry.users += 1
        try:
            if entry.turn.locked():
                self.waits += 1
            async with entry.turn:
                wait = entry.answered_at + self.spacing - time.monotonic()
                if entry.kind and not (kind == entry.kind == "detection") and wait > 0:
                    self.waits += 1
                    await asyncio.sleep(wait)
                try:
                    yield
                finally:
                    entry.kind, entry.answered_at = kind, time.monotonic()
        finally:
            entry.users -= 1

    def _forget_old(self) -> None:
        """Drop what no upload uses and whose spacing is over: memory stays bounded."""
        now = time.monotonic()
        for key in [
            key
            for key, entry in self._recent.items()
            if entry.users == 0 and now - entry.answered_at >= self.spacing
        ]:
            del self._recent[key]
