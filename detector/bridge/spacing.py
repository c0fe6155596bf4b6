"""Never the same bytes as two stored objects of one camera within one second.

The Pyronear API names a stored image `{camera_id}-{UTC second}-{sha256[:8]}` and deletes the
previous camera (or pose) image object when it receives a new one. The same JPEG sent as a
detection and as the camera image within one second therefore gets one object name: updating
the camera image deletes the file the detection points to. Every upload of the bridge
(detections, camera image, pose image) goes through `UploadSpacing.upload`, which waits until a
second has passed since the same camera's identical bytes were last answered by the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# A second and a margin, counted from the server's answer (it named the object before).
SPACING = 1.1


class UploadSpacing:
    """Per camera, the recent uploads: digest → (kind, when the server answered)."""

    def __init__(self, spacing: float = SPACING) -> None:
        self.spacing = spacing
        self._recent: dict[str, dict[bytes, tuple[str, float]]] = {}
        self.waits = 0  # how many uploads had to wait (for tests and curiosity)

    @asynccontextmanager
    async def upload(self, camera: str, kind: str, data: bytes) -> AsyncIterator[None]:
        """Wait if needed, let the caller upload, then remember when the answer came.

        `kind` is "detection", "camera" or "pose". Two detections of identical bytes may share
        an object (neither deletes it); an image update next to the same bytes may not.
        """
        digest = hashlib.sha256(data).digest()
        recent = self._recent.setdefault(camera, {})
        now = time.monotonic()
        for old in [d for d, (_, at) in recent.items() if now - at >= self.spacing]:
            del recent[old]
        last = recent.get(digest)
        if last is not None and not (kind == last[0] == "detection"):
            wait = last[1] + self.spacing - now
            if wait > 0:
                self.waits += 1
                await asyncio.sleep(wait)
        try:
            yield
        finally:
            recent[digest] = (kind, time.monotonic())
