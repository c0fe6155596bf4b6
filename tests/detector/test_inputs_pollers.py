"""The built-in poller against local servers that behave like each source, through the inputs'
gate as in the service; and the Frigate events output, which shares the poller's HTTP loop."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web

from detector.config import validate
from detector.config.cameras import CameraConfig
from detector.inputs import FrameInputs
from detector.inputs.pollers import SourceRunner
from detector.outputs.frigate import FrigateEvents
from tests.detector.tiny_model import smoke_jpeg

JPEG = smoke_jpeg(180, 64)


class FakeServers:
    """An aiohttp app on 127.0.0.1 in its own thread, with every source's endpoints."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.events: list[tuple[str, str, Any]] = []
        self.frigate_offline = False
        self.loop = asyncio.new_event_loop()
        self.app = web.Application()
        routes = [
            web.get("/snap/basic", self.basic),
            web.get("/snap/bearer", self.bearer),
            web.get("/snap/digest", self.digest),
            web.get("/snap/headers", self.headers),
            web.get("/snap/slow", self.slow),
            web.get("/snap/error", self.error),
            web.get("/snap/html", self.html),
            web.get("/snap/endless", self.endless),
            web.get("/api/{camera}/latest.jpg", self.frigate),
            web.get("/api/frame.jpeg", self.go2rtc),
            web.get("/api/camera_proxy/{entity}", self.homeassistant),
            web.post("/api/events/{camera}/{label}/create", self.event_create),
            web.put("/api/events/{event}/end", self.event_end),
        ]
        self.app.add_routes(routes)
        self.app.middlewares.append(self._record)
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        started.wait(10)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request)
        response: web.StreamResponse = await handler(request)
        return response

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        self.loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @staticmethod
    def jpeg() -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def basic(self, request: web.Request) -> web.Response:
        # "user:secret" in base64
        if request.headers.get("Authorization") != "Basic dXNlcjpzZWNyZXQ=":
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="cam"'})
        return self.jpeg()

    async def bearer(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer tok-123":
            return web.Response(status=401)
        return self.jpeg()

    async def digest(self, request: web.Request) -> web.Response:
        realm, nonce = "cam", "abc123"
        header = request.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return web.Response(
                status=401,
                headers={
                    "WWW-Authenticate": f'Digest realm="{realm}", nonce="{nonce}", qop="auth"'
                },
            )
        fields = dict(
            part.strip().split("=", 1)
            for part in header[len("Digest ") :].split(",")
            if "=" in part
        )
        fields = {k: v.strip('"') for k, v in fields.items()}
        ha1 = hashlib.md5(f"user:{realm}:secret".encode()).hexdigest()
        ha2 = hashlib.md5(f"GET:{fields.get('uri')}".encode()).hexdigest()
        expected = hashlib.md5(
            f"{ha1}:{nonce}:{fields.get('nc')}:{fields.get('cnonce')}:{fields.get('qop')}:{ha2}".encode()
        ).hexdigest()
        if fields.get("username") != "user" or fields.get("response") != expected:
            return web.Response(status=401)
        return self.jpeg()

    async def headers(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != "k1":
            return web.Response(status=403)
        return self.jpeg()

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return self.jpeg()

    async def error(self, request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy")

    async def html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Login</body></html>", content_type="text/html")

    async def endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        await response.prepare(request)
        await response.write(JPEG[:100])
        try:
            for _ in range(10_000):
                await response.write(b"\0" * 65536)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    async def frigate(self, request: web.Request) -> web.Response:
        if self.frigate_offline:
            return web.Response(
                body=JPEG, content_type="image/jpeg", headers={"X-Frigate-Offline": "true"}
            )
        return self.jpeg()

    async def go2rtc(self, request: web.Request) -> web.Response:
        return self.jpeg() if request.query.get("src") == "yard" else web.Response(status=404)

    async def homeassistant(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer ha-token":
            return web.Response(status=401)
        return (
            self.jpeg()
            if request.match_info["entity"] == "camera.yard"
            else web.Response(status=404)
        )

    async def event_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.events.append(
            ("create", f"{request.match_info['camera']}/{request.match_info['label']}", body)
        )
        return web.json_response({"success": True, "event_id": "1700000000.1-abc"})

    async def event_end(self, request: web.Request) -> web.Response:
        self.events.append(("end", request.match_info["event"], None))
        return web.json_response({"success": True})


@pytest.fixture
def servers() -> Iterator[FakeServers]:
    fake = FakeServers()
    yield fake
    fake.close()


class Collector:
    """deliver/report callbacks that record per camera."""

    def __init__(self) -> None:
        self.frames: dict[str, list[tuple[float, bytes]]] = defaultdict(list)
        self.problems: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.published: list[tuple[str, bytes]] = []

    def deliver(self, camera: str, data: bytes) -> None:
        self.frames[camera].append((time.monotonic(), data))

    def report(self, camera: str, reason: str, message: str) -> None:
        self.problems[camera].append((reason, message))

    def publish(self, topic: str, data: bytes) -> None:
        self.published.append((topic, data))


def cameras(sources: dict[str, dict[str, Any]], interval: float = 0.3) -> list[CameraConfig]:
    config = validate(
        {
            "detection": {"interval": interval},
            "cameras": {name: {"source": source} for name, source in sources.items()},
        }
    )
    return list(config.cameras.values())


def run_for(seconds: float, configs: list[CameraConfig], max_bytes: int = 1 << 20) -> Collector:
    """Poll for a while; frames pass the inputs' gate (the size check) as in the service."""
    collector = Collector()
    inputs = FrameInputs(
        configs,
        max_bytes=max_bytes,
        store=collector.deliver,
        reject=collector.report,
        republish=collector.publish,
    )
    inputs.start()
    time.sleep(seconds)
    inputs.stop()
    return collector


def test_every_http_source_and_auth_scheme(servers: FakeServers) -> None:
    url = servers.url
    configs = cameras(
        {
            "basic": {
                "type": "http",
                "url": f"{url}/snap/basic",
                "auth": "basic",
                "username": "user",
                "password": "secret",
            },
            "digest": {
                "type": "http",
                "url": f"{url}/snap/digest",
                "auth": "digest",
                "username": "user",
                "password": "secret",
            },
            "bearer": {
                "type": "http",
                "url": f"{url}/snap/bearer",
                "auth": "bearer",
                "token": "tok-123",
            },
            "headers": {
                "type": "http",
                "url": f"{url}/snap/headers",
                "headers": {"X-Api-Key": "k1"},
            },
            "frigate": {"type": "frigate", "url": url, "camera": "yard", "height": 360},
            "go2rtc": {"type": "go2rtc", "url": url, "camera": "yard"},
            "ha": {
                "type": "homeassistant",
                "url": url,
                "camera": "camera.yard",
                "token": "ha-token",
            },
        }
    )
    result = run_for(1.0, configs)
    for camera in ("basic", "digest", "bearer", "headers", "frigate", "go2rtc", "ha"):
        frames = result.frames[camera]
        assert frames, (camera, result.problems[camera])
        assert frames[0][1] == JPEG
        # Polled once per interval: 1 s / 0.3 s → 3 or 4 frames, never a burst.
        assert 2 <= len(frames) <= 5, (camera, len(frames))
        assert not result.problems[camera]
    frigate = [r for r in servers.requests if r.path == "/api/yard/latest.jpg"]
    assert frigate[0].query["height"] == "360"


def test_wrong_credentials_name_the_camera(servers: FakeServers) -> None:
    configs = cameras(
        {
            "gate": {
                "type": "http",
                "url": f"{servers.url}/snap/basic",
                "auth": "basic",
                "username": "user",
                "password": "nope",
            }
        }
    )
    result = run_for(0.5, configs)
    assert not result.frames["gate"]
    reason, message = result.problems["gate"][0]
    assert reason == "auth"
    assert "camera gate" in message and "401" in message and "nope" not in message


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("slow", "timeout"),
        ("error", "http_503"),
        ("html", "not_an_image"),
        ("endless", "too_large"),
    ],
)
def test_failures_are_per_camera(servers: FakeServers, path: str, reason: str) -> None:
    configs = cameras(
        {
            "bad": {"type": "http", "url": f"{servers.url}/snap/{path}", "timeout": 0.5},
            "good": {"type": "go2rtc", "url": servers.url, "camera": "yard"},
        }
    )
    result = run_for(1.2, configs, max_bytes=256 * 1024)
    assert not result.frames["bad"]
    assert result.problems["bad"][0][0] == reason
    # The dead camera delays nobody: the good one is fetched at its interval all along.
    assert len(result.frames["good"]) >= 3


def test_frigate_offline_header_is_not_a_frame(servers: FakeServers) -> None:
    servers.frigate_offline = True
    result = run_for(0.5, cameras({"yard": {"type": "frigate", "url": servers.url}}))
    assert not result.frames["yard"]
    assert result.problems["yard"][0][0] == "camera_offline"


def test_connection_refused(servers: FakeServers) -> None:
    from tests.detector.broker import free_port

    result = run_for(
        0.5, cameras({"cam": {"type": "http", "url": f"http://127.0.0.1:{free_port()}/x"}})
    )
    assert result.problems["cam"][0][0] == "unreachable"


def test_folder_newest_file(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(smoke_jpeg(10, 64))
    newest = smoke_jpeg(250, 64)
    (folder / "b.jpg").write_bytes(newest)
    result = run_for(0.4, cameras({"cam": {"type": "folder", "url": str(folder)}}))
    assert result.frames["cam"][0][1] == newest
    empty = run_for(0.4, cameras({"cam": {"type": "folder", "url": str(tmp_path / "none")}}))
    assert empty.problems["cam"][0][0] == "unreachable"


def test_stream_source_reads_video_and_reconnects_at_the_end(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for level in (10, 90, 170):
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    configs = cameras(
        {"cam": {"type": "stream", "url": str(video), "keep_open": True}}, interval=0.1
    )
    result = run_for(2.5, configs)
    levels = [
        int(cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_GRAYSCALE).mean())
        for _, d in result.frames["cam"]
    ]
    # Three frames, then the end of the file: reopened, the frames come again.
    assert len(levels) >= 4
    assert levels[:3] == pytest.approx([10, 90, 170], abs=6)
    assert levels[3] == pytest.approx(10, abs=6)
    assert "stream_ended" in {reason for reason, _ in result.problems["cam"]}


def test_stream_that_cannot_open(tmp_path: Path) -> None:
    configs = cameras({"cam": {"type": "stream", "url": str(tmp_path / "missing.mp4")}})
    result = run_for(0.5, configs)
    assert result.problems["cam"][0][0] == "unreachable"


def test_frigate_event_created_and_ended(servers: FakeServers) -> None:
    config = validate(
        {"cameras": {"yard": {"frigate_events": {"url": servers.url, "camera": "back_yard"}}}}
    ).cameras["yard"]
    assert config.frigate_events is not None
    collector = Collector()
    runner = SourceRunner([config], collector.deliver, collector.report, 1 << 20)
    runner.start()
    events = FrigateEvents(runner, collector.report)
    events.alert("yard", config.frigate_events, True, 0.61)
    deadline = time.monotonic() + 5
    while not servers.events and time.monotonic() < deadline:
        time.sleep(0.05)
    events.alert("yard", config.frigate_events, False, 0.0)
    while len(servers.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.stop()
    assert servers.events[0][:2] == ("create", "back_yard/smoke")
    assert servers.events[0][2]["score"] == 0.61
    assert servers.events[1][:2] == ("end", "1700000000.1-abc")
    assert not collector.problems


def test_source_errors_never_show_the_url_credentials(servers: FakeServers) -> None:
    # "HTTP 404 from http://admin:GateP4ss@..." used to reach the log.
    from tests.detector.broker import free_port

    url = servers.url.replace("http://", "http://admin:GateP4ss@")
    refused = f"http://admin:GateP4ss@127.0.0.1:{free_port()}/x"
    result = run_for(
        0.6,
        cameras(
            {
                "missing": {"type": "http", "url": f"{url}/snap/nothing-here"},
                "down": {"type": "http", "url": refused},
            }
        ),
    )
    messages = [m for camera in ("missing", "down") for _, m in result.problems[camera]]
    assert messages and result.problems["missing"][0][0] == "http_404"
    assert all("GateP4ss" not in message for message in messages), messages


def test_a_poller_failure_is_shown_and_the_poller_restarted(tmp_path: Path) -> None:
    # Anything but a SourceError (here the newest "image" is a directory: IsADirectoryError)
    # used to end the camera's poller silently.
    from detector.supervise import Health

    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "frame.jpg").mkdir()
    health = Health("test")
    collector = Collector()
    runner = SourceRunner(
        cameras({"cam": {"type": "folder", "url": str(folder)}}, interval=0.1),
        collector.deliver,
        collector.report,
        1 << 20,
        health=health,
    )
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while "source of cam" not in health.faults and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "IsADirectoryError" in health.faults["source of cam"].reason
        (folder / "frame.jpg").rmdir()
        (folder / "frame.jpg").write_bytes(JPEG)
        deadline = time.monotonic() + 10
        while not collector.frames["cam"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    assert collector.frames["cam"] and health.healthy
