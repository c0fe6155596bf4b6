"""The built-in poller: fetch one frame per interval from what the user already has.

Every frame it gets goes to `deliver` (the inputs' gate, detector.inputs.gate, which checks its
size and stores it); a fetch reads at most one byte over the frame size limit, so an endless
answer costs bounded memory and the gate refuses it like any other oversized frame.

HTTP-like sources (IP camera snapshot URLs, Frigate, go2rtc, Home Assistant's camera proxy) and
folders are polled by tasks on one asyncio loop in a thread of its own; each camera has its own
timeout and retry delay, so a dead camera never delays another. RTSP/RTMP streams and video
files go through OpenCV in one thread per camera, since OpenCV blocks.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import cv2

from detector.config import CameraConfig
from detector.config.sources import SourceConfig
from detector.frames import JPEG_MAGIC, PNG_MAGIC
from detector.redact import redact_text, redact_url
from detector.supervise import Health, run_supervised, supervise

_LOGGER = logging.getLogger(__name__)

Deliver = Callable[[str, bytes], None]
Report = Callable[[str, str, str], None]  # camera, reason, message
RETRY_FIRST = 1.0
STREAM_OPEN_TIMEOUT_MS = 10_000


class SourceError(Exception):
    """A fetch that gave no frame; `reason` is a short word for counters."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def snapshot_request(source: SourceConfig) -> tuple[str, dict[str, str]]:
    """URL and headers (auth included) of one snapshot request for an HTTP-like source."""
    base = source.url.rstrip("/")
    headers = dict(source.headers)
    if source.type == "frigate":
        url = f"{base}/api/{source.camera}/latest.jpg"
        if source.height:
            url += f"?height={source.height}"
    elif source.type == "go2rtc":
        url = f"{base}/api/frame.jpeg?src={source.camera}"
    elif source.type == "homeassistant":
        url = f"{base}/api/camera_proxy/{source.camera}"
    else:
        url = source.url
    token = source.token
    if token and (source.type in ("homeassistant", "frigate") or source.auth == "bearer"):
        headers["Authorization"] = f"Bearer {token}"
    if source.auth == "basic" and source.username is not None:
        pair = f"{source.username}:{source.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    return url, headers


async def fetch_snapshot(
    session: aiohttp.ClientSession, camera: str, source: SourceConfig, max_bytes: int
) -> bytes | None:
    """One frame of an HTTP-like source, at most `max_bytes` + 1 bytes of it (enough for the
    gate to refuse it as too large); None when Frigate says the camera is offline."""
    url, headers = snapshot_request(source)
    timeout = aiohttp.ClientTimeout(total=source.timeout)
    try:
        async with session.get(
            url, headers=headers, timeout=timeout, ssl=source.verify_tls
        ) as response:
            if response.status in (401, 403):
                raise SourceError(
                    "auth",
                    f"camera {camera}: {response.url.host} refused the credentials "
                    f"(HTTP {response.status}); check the source's auth settings",
                )
            if response.status != 200:
                raise SourceError(
                    f"http_{response.status}",
                    f"camera {camera}: HTTP {response.status} from {redact_url(url)}",
                )
            if response.headers.get("X-Frigate-Offline", "").lower() == "true":
                return None
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > max_bytes:
                    del body[max_bytes + 1 :]
                    break
    except TimeoutError:
        raise SourceError(
            "timeout", f"camera {camera}: no answer within {source.timeout:g} s"
        ) from None
    except aiohttp.ClientError as err:
        raise SourceError(
            "unreachable", f"camera {camera}: {type(err).__name__}: {redact_text(str(err))}"
        ) from None
    data = bytes(body)
    if not data.startswith((JPEG_MAGIC, PNG_MAGIC)):
        kind = response.headers.get("Content-Type", "unknown type")
        raise SourceError("not_an_image", f"camera {camera}: the answer is not an image ({kind})")
    return data


def newest_image(folder: Path) -> Path | None:
    """The most recently modified JPEG/PNG of a folder."""
    images = [p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return max(images, key=lambda p: p.stat().st_mtime, default=None)


def read_newest(camera: str, path: str, max_bytes: int) -> bytes:
    """The bytes of a folder's newest image, at most `max_bytes` + 1 of them (enough for the
    gate to refuse it as too large); SourceError when there is none."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise SourceError("unreachable", f"camera {camera}: {folder} is not a folder")
    newest = newest_image(folder)
    if newest is None:
        raise SourceError("no_frame", f"camera {camera}: no image in {folder}")
    with newest.open("rb") as file:
        return file.read(max_bytes + 1)


class StreamSource(threading.Thread):
    """Grabs frames of an RTSP/RTMP stream or a video file with OpenCV, one per interval.

    With keep_open a live stream is read continuously (so the frame handed over is the newest,
    not one buffered seconds ago) and a file is read in order; otherwise the stream is opened
    for each frame and released. The end of a stream or a read failure reopens it with
    exponential backoff.
    """

    def __init__(
        self,
        camera: CameraConfig,
        deliver: Deliver,
        report: Report,
        stop: threading.Event,
        health: Health | None = None,
    ) -> None:
        super().__init__(name=f"stream-{camera.id}", daemon=True)
        self.health = health or Health("sources")
        assert camera.source is not None
        self.camera, self.source = camera, camera.source
        self.deliver, self.report, self.stop_event = deliver, report, stop
        self.capture: Any = None
        # A file is read in order, one frame per interval; a live stream is drained so the
        # newest frame is scored.
        self.live = "://" in self.source.url and not self.source.url.startswith("file://")

    def _open(self) -> bool:
        capture = cv2.VideoCapture(
            self.source.url,
            cv2.CAP_ANY,
            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_OPEN_TIMEOUT_MS],
        )
        if not capture.isOpened():
            capture.release()
            self.report(
                self.camera.id, "unreachable", f"camera {self.camera.id}: cannot open the stream"
            )
            return False
        self.capture = capture
        return True

    def _release(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None

    def run(self) -> None:
        """Deliver one frame per interval until stopped (supervised: restarted on a failure)."""
        run_supervised(f"source of {self.camera.id}", self._frames, self.health, self.stop_event)
        self._release()

    def _frames(self) -> None:
        delay = RETRY_FIRST
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            if self.capture is None and not self._open():
                self.stop_event.wait(delay)
                delay = min(delay * 2, max(self.camera.interval, RETRY_FIRST))
                continue
            if self.source.keep_open and self.live:
                # Drain what the stream buffered until the frame is due, so the frame
                # handed over is the newest one.
                while time.monotonic() < next_at and not self.stop_event.is_set():
                    if not self.capture.grab():
                        break
            else:
                self.stop_event.wait(max(0.0, next_at - time.monotonic()))
            ok, image = self.capture.read()
            if not ok:
                self._release()
                self.report(
                    self.camera.id,
                    "stream_ended",
                    f"camera {self.camera.id}: the stream ended; reopening",
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, max(self.camera.interval, RETRY_FIRST))
                continue
            delay = RETRY_FIRST
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if ok:
                self.deliver(self.camera.id, encoded.tobytes())
            if not self.source.keep_open:
                self._release()
            next_at = max(next_at + self.camera.interval, time.monotonic())
            self.health.ok(f"source of {self.camera.id}")


class SourceRunner:
    """Runs every configured source; its asyncio loop and HTTP session also carry the Frigate
    events (detector.outputs.frigate)."""

    def __init__(
        self,
        cameras: list[CameraConfig],
        deliver: Deliver,
        report: Report,
        max_bytes: int,
        health: Health | None = None,
    ) -> None:
        self.health = health or Health("sources")
        self.cameras = [camera for camera in cameras if camera.source is not None]
        self.deliver, self.report, self.max_bytes = deliver, report, max_bytes
        self.stop_event = threading.Event()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="sources", daemon=True)
        self._streams: list[StreamSource] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._async_stop: list[asyncio.Event] = []

    def start(self) -> None:
        """Start polling."""
        self._thread.start()
        for camera in self.cameras:
            assert camera.source is not None
            if camera.source.type == "stream":
                stream = StreamSource(
                    camera, self.deliver, self.report, self.stop_event, self.health
                )
                self._streams.append(stream)
                stream.start()
            else:
                asyncio.run_coroutine_threadsafe(self._start_task(camera), self.loop).result(10)

    async def _start_task(self, camera: CameraConfig) -> None:
        # Supervised: anything but a SourceError (a permission error on a folder, a surprise
        # from the HTTP client) is logged once, shown in stats and the poller restarted.
        stop = asyncio.Event()
        self._async_stop.append(stop)
        work = supervise(f"source of {camera.id}", lambda: self._poll(camera), self.health, stop)
        self._tasks.append(asyncio.create_task(work, name=f"poll-{camera.id}"))

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def session(self) -> aiohttp.ClientSession:
        """The shared HTTP session (created on the loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _poll(self, camera: CameraConfig) -> None:
        source = camera.source
        assert source is not None
        digest = None
        if source.auth == "digest":
            digest = aiohttp.ClientSession(
                middlewares=(
                    aiohttp.DigestAuthMiddleware(str(source.username), str(source.password)),
                )
            )
        failures = 0
        try:
            while not self.stop_event.is_set():
                started = time.monotonic()
                try:
                    data = await self._fetch(camera, source, digest)
                except SourceError as err:
                    failures += 1
                    self.report(camera.id, err.reason, str(err))
                    await asyncio.sleep(min(camera.interval, RETRY_FIRST * 2 ** (failures - 1)))
                    continue
                failures = 0
                if data is None:
                    self.report(
                        camera.id,
                        "camera_offline",
                        f"camera {camera.id}: Frigate reports it offline",
                    )
                else:
                    self.deliver(camera.id, data)
                self.health.ok(f"source of {camera.id}")
                await asyncio.sleep(max(0.0, camera.interval - (time.monotonic() - started)))
        except asyncio.CancelledError:
            pass
        finally:
            if digest is not None:
                await digest.close()

    async def _fetch(
        self,
        camera: CameraConfig,
        source: SourceConfig,
        digest: aiohttp.ClientSession | None,
    ) -> bytes | None:
        if source.type == "folder":
            return await asyncio.to_thread(read_newest, camera.id, source.url, self.max_bytes)
        return await fetch_snapshot(digest or self.session(), camera.id, source, self.max_bytes)

    def stop(self) -> None:
        """Stop every poller and close the HTTP session."""
        self.stop_event.set()
        if self._thread.is_alive():

            async def close() -> None:
                for stop in self._async_stop:
                    stop.set()
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                if self._session is not None:
                    await self._session.close()

            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        for stream in self._streams:
            stream.join(10)


__all__ = ["SourceError", "SourceRunner", "fetch_snapshot", "newest_image", "read_newest"]
