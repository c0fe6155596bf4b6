"""A local Pyronear alert API that enforces the real contract, with faults to inject.

Auth: HS256 JWTs (401 without a header or with a bad signature / expired token, 406 for an
undecodable one, 403 for a wrong scope or another camera's pose). `POST detections/`: the
`bboxes` regex, at most 5 boxes and x1 < x2, y1 < y2 (422), 201 with an id, 204 for an empty
frame with no recent detection; 422 for an inactive pose. `GET poses/`: the active poses of the
token's camera. Stored images are named as the real server names them,
`{camera_id}-{UTC second}-{sha256[:8]}.jpg`, and a camera or pose image update deletes the
previous one: `shared` lists uploads that reused a live object name, `dangling()` the
detections whose image was deleted that way.

Faults: `mode` = ok, down (503), slow (does the work, answers `slow_seconds` late), portal (an
HTML 200); `freeze()` holds every request (received in full) until `thaw()`, then does its
work, as a server stuck on its database does, even for a client that gave up waiting;
`stop()` gives connection refused.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

SECRET = b"test-secret"
NUMBER = r"(0?\.[0-9]{1,3}|0|1)"
BOX = rf"\({NUMBER},{NUMBER},{NUMBER},{NUMBER},{NUMBER}\)"
BBOXES = re.compile(rf"^\[({BOX}(,{BOX})*)?\]$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(
    camera_id: int,
    *,
    scopes: tuple[str, ...] = ("camera",),
    expires_in: float = 3600,
    secret: bytes = SECRET,
) -> str:
    """A camera token as the API mints them."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(
        json.dumps(
            {
                "sub": str(camera_id),
                "scopes": list(scopes),
                "organization_id": 1,
                "exp": time.time() + expires_in,
            }
        ).encode()
    )
    signature = _b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def bboxes_error(text: str) -> str | None:
    """The server's check of the `bboxes` field: None when valid, else the reason."""
    if not BBOXES.match(text):
        return "does not match the bboxes pattern"
    boxes = re.findall(BOX, text)
    if len(boxes) > 5:
        return "more than 5 boxes"
    for box in boxes:
        x1, y1, x2, y2, _conf = (float(v) for v in box)
        if not (x1 < x2 and y1 < y2):
            return "x1 < x2 and y1 < y2 are required"
    return None


@dataclass
class Received:
    """A detection the fake stored."""

    id: int
    camera_id: int
    pose_id: int
    bboxes: str
    recorded_at: str | None
    file: bytes
    crops: int
    arrived: float = field(default_factory=time.time)
    bucket_key: str = ""


def object_name(camera_id: int, data: bytes, at: float) -> str:
    """The real server's name of a stored image: camera, UTC second, hash."""
    second = datetime.fromtimestamp(at, UTC).strftime("%Y%m%d%H%M%S")
    return f"{camera_id}-{second}-{hashlib.sha256(data).hexdigest()[:8]}.jpg"


class FakePyronear:
    """The fake API on 127.0.0.1 in a thread of its own."""

    def __init__(self, poses: dict[int, int] | None = None, port: int = 0) -> None:
        # pose id → camera id
        self.poses = poses or {11: 1, 22: 2}
        self.inactive: set[int] = set()
        self.mode = "ok"
        # The server's JWT secret: change it to act out a pyro-api restarted without a fixed
        # JWT_SECRET (every camera token is refused with 401 until it is back).
        self.secret = SECRET
        self.reject_next = 0  # answer the next N detections with a 422 (a permanent refusal)
        self.slow_seconds = 3.0
        self.detections: list[Received] = []
        self.invalid: list[str] = []
        # Statuses to answer to the next detection POSTs (before the contract checks).
        self.script: list[int] = []
        # Scripted answers echo the request's headers, as some misconfigured servers do.
        self.echo_headers = False
        self.calls: list[tuple[str, str, int]] = []  # method, path, status
        self.heartbeats: list[int] = []
        self.images: list[tuple[str, int]] = []
        self.image_times: list[float] = []  # when each of `images` arrived (epoch seconds)
        # Stored objects, as the real server's bucket: name -> kind (detection, camera, pose).
        self.objects: dict[str, str] = {}
        self.deleted: set[str] = set()
        # (name, kind already there, kind of the new upload): an upload that reused the name of
        # a live object (same camera, second and bytes), which the real server overwrites.
        self.shared: list[tuple[str, str, str]] = []
        self._current_image: dict[tuple[str, int], str] = {}  # (kind, camera or pose) -> name
        self.processed: list[tuple[str, float, str]] = []  # kind, time, sha256 of each upload
        self.frozen: list[tuple[str, str]] = []  # method, path of each request held by a freeze
        self._thawed: asyncio.Event | None = None
        self.masks: dict[int, list[dict[str, Any]]] = {
            11: [
                {
                    "id": 5,
                    "pose_id": 11,
                    "mask": "(0.1,0.1,0.3,0.3)",
                    "created_at": "2026-01-01T00:00:00",
                }
            ]
        }
        self._port = port
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None
        self.runner: web.AppRunner | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> FakePyronear:
        """Serve (again, on the same port after a stop)."""
        started = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("fake API did not start")
        return self

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application(middlewares=[self._faults])
        app.add_routes(
            [
                web.post("/api/v1/detections/", self.post_detection),
                web.patch("/api/v1/cameras/heartbeat", self.heartbeat),
                web.patch("/api/v1/cameras/image", self.camera_image),
                web.patch("/api/v1/poses/{pose_id}/image", self.pose_image),
                web.get("/api/v1/poses/{pose_id}/occlusion_masks", self.occlusion_masks),
                web.get("/api/v1/poses/", self.list_poses),
            ]
        )
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", self._port)
        self.loop.run_until_complete(site.start())
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        self.loop.run_forever()

    def stop(self) -> None:
        """Stop serving: connections are refused until start()."""
        if self.runner is not None and self.thread is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.runner = None

    @property
    def url(self) -> str:
        """Base URL (the client adds /api/v1/)."""
        return f"http://127.0.0.1:{self._port}"

    # -- contract --------------------------------------------------------------------------

    def freeze(self) -> None:
        """Hold every request from now on until `thaw()` (then each is handled in full)."""
        self._thawed = asyncio.Event()

    def thaw(self) -> None:
        """Handle the held requests, and the next ones at once."""
        thawed = self._thawed
        if thawed is not None:
            self._thawed = None
            self.loop.call_soon_threadsafe(thawed.set)

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        thawed = self._thawed
        if thawed is not None:
            # Received in full, then stuck: the work is done after the thaw, whether or not
            # the client is still waiting for the answer.
            if request.method in request.POST_METHODS:
                await request.post()  # kept by the request for the handler
            self.frozen.append((request.method, request.path))
            await thawed.wait()
        try:
            response = await self._answer(request, handler)
        except web.HTTPException as refusal:  # a contract check refused it: recorded too
            self.calls.append((request.method, request.path, refusal.status))
            raise
        self.calls.append((request.method, request.path, response.status))
        return response

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.mode == "down":
            response: web.StreamResponse = web.json_response({"detail": "maintenance"}, status=503)
        elif self.mode == "slow":
            # The work is done, only the answer is late: what a client timing out cannot know.
            response = await handler(request)
            await asyncio.sleep(self.slow_seconds)
        elif self.mode == "portal":
            response = web.Response(
                text="<html><body>Please log in to the hotspot</body></html>",
                content_type="text/html",
            )
        else:
            response = await handler(request)
        return response

    def _camera(self, request: web.Request) -> int:
        header = request.headers.get("Authorization")
        if not header or not header.startswith("Bearer "):
            raise web.HTTPUnauthorized(
                text=json.dumps({"detail": "Not authenticated"}), content_type="application/json"
            )
        token = header[len("Bearer ") :]
        parts = token.split(".")
        try:
            if len(parts) != 3:
                raise ValueError
            payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            # A misconfigured server may quote what it refused (`echo_headers`).
            detail = f"Invalid token: refused {token}." if self.echo_headers else "Invalid token."
            raise web.HTTPNotAcceptable(
                text=json.dumps({"detail": detail}), content_type="application/json"
            ) from None
        expected = _b64(
            hmac.new(self.secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        )
        if not hmac.compare_digest(expected, parts[2]) or payload.get("exp", 0) < time.time():
            raise web.HTTPUnauthorized(
                text=json.dumps({"detail": "Could not validate credentials"}),
                content_type="application/json",
            )
        if "camera" not in payload.get("scopes", []):
            raise web.HTTPForbidden(
                text=json.dumps({"detail": "Incompatible token scope."}),
                content_type="application/json",
            )
        return int(payload["sub"])

    def _store(self, kind: str, owner: tuple[str, int], camera_id: int, data: bytes) -> str:
        """Name and keep an uploaded image; an image update deletes the previous one."""
        now = time.time()
        name = object_name(camera_id, data, now)
        self.processed.append((kind, now, hashlib.sha256(data).hexdigest()))
        if name in self.objects:
            self.shared.append((name, self.objects[name], kind))
        self.objects[name] = kind
        if kind != "detection":
            previous = self._current_image.get(owner)
            if previous is not None and previous != name:
                self.objects.pop(previous, None)
                self.deleted.add(previous)
            self._current_image[owner] = name
        return name

    def dangling(self) -> list[Received]:
        """Detections whose image object was deleted by a later image update."""
        return [d for d in self.detections if d.bucket_key in self.deleted]

    def _pose(self, camera_id: int, pose_id: int) -> None:
        if pose_id not in self.poses:
            raise web.HTTPNotFound(
                text=json.dumps({"detail": "Table Pose has no corresponding entry."}),
                content_type="application/json",
            )
        if self.poses[pose_id] != camera_id:
            raise web.HTTPForbidden(
                text=json.dumps({"detail": "Access forbidden."}), content_type="application/json"
            )

    @staticmethod
    def _unprocessable(detail: str) -> web.HTTPUnprocessableEntity:
        return web.HTTPUnprocessableEntity(
            text=json.dumps({"detail": detail}), content_type="application/json"
        )

    async def post_detection(self, request: web.Request) -> web.Response:
        camera_id = self._camera(request)
        form = await request.post()
        if self.script:
            status = self.script.pop(0)
            body: dict[str, Any] = {"detail": f"scripted {status}"}
            if self.echo_headers:
                body["headers"] = dict(request.headers)
            return web.json_response(body, status=status)
        bboxes, pose_text = form.get("bboxes"), form.get("pose_id")
        file = form.get("file")
        if (
            not isinstance(bboxes, str)
            or not isinstance(pose_text, str)
            or not hasattr(file, "file")
        ):
            raise self._unprocessable("bboxes, pose_id and file are required")
        problem = bboxes_error(bboxes)
        if problem is not None:
            self.invalid.append(bboxes)
            raise self._unprocessable(f"invalid bboxes {bboxes}: {problem}")
        pose_id = int(pose_text)
        self._pose(camera_id, pose_id)
        if pose_id in self.inactive:
            raise self._unprocessable("pose is not active")
        if self.reject_next > 0:
            self.reject_next -= 1
            raise self._unprocessable("injected refusal")
        recorded_at = form.get("recorded_at")
        crops = [v for k, v in form.items() if k == "crop"]
        if bboxes == "[]":
            recent = [
                d
                for d in self.detections
                if d.camera_id == camera_id and time.time() - d.arrived < 120
            ]
            if not recent:
                return web.Response(status=204)
        data = file.file.read()  # type: ignore[union-attr]
        received = Received(
            id=len(self.detections) + 1,
            camera_id=camera_id,
            pose_id=pose_id,
            bboxes=bboxes,
            recorded_at=recorded_at if isinstance(recorded_at, str) else None,
            file=data,
            crops=len(crops),
            bucket_key=self._store("detection", ("detection", pose_id), camera_id, data),
        )
        self.detections.append(received)
        answer = {
            "id": received.id,
            "camera_id": camera_id,
            "pose_id": pose_id,
            "sequence_id": None,
            "bbox": bboxes,
            "others_bboxes": None,
            "created_at": "2026-01-01T00:00:00",
            "recorded_at": received.recorded_at,
        }
        return web.json_response(answer, status=201)

    async def heartbeat(self, request: web.Request) -> web.Response:
        camera_id = self._camera(request)
        self.heartbeats.append(camera_id)
        return web.json_response({"id": camera_id, "last_active_at": "2026-01-01T00:00:00"})

    async def camera_image(self, request: web.Request) -> web.Response:
        camera_id = self._camera(request)
        form = await request.post()
        file = form.get("file")
        if not hasattr(file, "file"):
            raise self._unprocessable("file is required")
        self._store("camera", ("camera", camera_id), camera_id, file.file.read())  # type: ignore[union-attr]
        self.images.append(("camera", camera_id))
        self.image_times.append(time.time())
        return web.json_response({"id": camera_id})

    async def pose_image(self, request: web.Request) -> web.Response:
        camera_id = self._camera(request)
        pose_id = int(request.match_info["pose_id"])
        self._pose(camera_id, pose_id)
        form = await request.post()
        file = form.get("file")
        if not hasattr(file, "file"):
            raise self._unprocessable("file is required")
        self._store("pose", ("pose", pose_id), camera_id, file.file.read())  # type: ignore[union-attr]
        self.images.append(("pose", pose_id))
        self.image_times.append(time.time())
        return web.json_response(_pose_read(pose_id, camera_id, image="x"))

    async def list_poses(self, request: web.Request) -> web.Response:
        camera_id = self._camera(request)
        return web.json_response(
            [
                _pose_read(pose_id, camera_id, image=None)
                for pose_id, owner in sorted(self.poses.items())
                if owner == camera_id and pose_id not in self.inactive
            ]
        )

    async def occlusion_masks(self, request: web.Request) -> web.Response:
        self._camera(request)
        pose_id = int(request.match_info["pose_id"])
        # Only the organization is checked (every camera here is in one): a pose of another
        # camera is readable, an unknown one is not found.
        self._pose(self.poses.get(pose_id, 0), pose_id)
        return web.json_response(self.masks.get(pose_id, []))


def bboxes_valid(text: str) -> bool:
    """True when the server accepts the `bboxes` field."""
    return bboxes_error(text) is None


def write_bridge_section(config: Path, api: FakePyronear, outbox: Path) -> Path:
    """Append a bridge section for camera `a` (token in secrets.yaml, pose 11) on the fake,
    with short backoffs and stats every 0.5 s."""
    (config.parent / "secrets.yaml").write_text(f"token_a: {make_token(1)}\n")
    with config.open("a") as stream:
        stream.write(
            "bridge:\n"
            "  enabled: true\n"
            f"  url: {api.url}\n"
            f"  outbox: {outbox}\n"
            "  backoff_initial: 0.05\n"
            "  backoff_max: 0.5\n"
            "  stats_interval: 0.5\n"
            "  cameras: {a: {token: !secret token_a, pose_id: 11}}\n"
        )
    return config


def _pose_read(pose_id: int, camera_id: int, *, image: str | None) -> dict[str, Any]:
    """A pose as the API returns it (PoseRead)."""
    return {
        "id": pose_id,
        "camera_id": camera_id,
        "azimuth": 0,
        "patrol_id": None,
        "active": True,
        "image": image,
    }
