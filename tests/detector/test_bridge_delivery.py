"""Delivery from the outbox, in-process against the contract-enforcing server."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detector.bridge.api import Outcome, PyronearClient
from detector.bridge.delivery import Backoff, Delivery
from detector.bridge.outbox import Outbox
from detector.config.bridge import BridgeCameraConfig, BridgeConfig
from tests.detector.fake_pyronear import FakePyronear, make_token
from tests.detector.tiny_model import smoke_jpeg

BOX = [[0.1, 0.1, 0.3, 0.3, 0.7]]


class Rig:
    """Outbox + delivery tasks + the fake API."""

    def __init__(self, tmp_path: Path, server: FakePyronear, **settings: Any) -> None:
        self.server = server
        self.settings = BridgeConfig(
            url=server.url,
            timeout=1.0,
            backoff_initial=0.05,
            backoff_max=0.3,
            cameras={
                "a": BridgeCameraConfig(token=make_token(1), pose_id=11),
                "b": BridgeCameraConfig(token=make_token(2), pose_id=22),
            },
            **settings,
        )
        self.outbox = Outbox(tmp_path / "outbox.sqlite3")
        self.client = PyronearClient(server.url, self.settings.timeout)
        self.outcomes: list[Outcome] = []
        self.delivery = Delivery(
            self.settings,
            self.outbox,
            self.client,
            on_outcome=self.outcomes.append,
            on_change=lambda: None,
            rng=random.Random(1),
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.count = 0

    def add(self, camera: str, boxes: list[list[float]] = BOX, jpeg: bytes | None = None) -> str:
        self.count += 1
        item_id = f"{camera}{self.count:03d}"
        # recorded_at carries the sequence number, to check order and completeness at the API.
        self.outbox.add(
            item_id, camera, 1_700_000_000 + self.count, boxes, jpeg or smoke_jpeg(200, 64)
        )
        self.delivery.wake()
        return item_id

    async def start(self) -> None:
        self.task = asyncio.create_task(self.delivery.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)
        await self.client.close()
        self.outbox.close()

    async def until(self, check: Callable[[], Any], within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not check():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.02)

    def received(self, camera_id: int) -> list[str]:
        return [d.recorded_at or "" for d in self.server.detections if d.camera_id == camera_id]


@pytest.fixture
async def rig(tmp_path: Path, api: FakePyronear) -> AsyncIterator[Rig]:
    r = Rig(tmp_path, api)
    await r.start()
    yield r
    await r.close()


async def test_api_down_then_back_delivers_everything_in_order(rig: Rig) -> None:
    rig.server.mode = "down"
    for index in range(12):
        rig.add("a" if index % 3 else "b")
    await rig.until(lambda: sum(o.status == 503 for o in rig.outcomes) >= 4)
    assert rig.server.detections == []
    assert rig.outbox.stats()["last_error"].startswith("HTTP 503")
    rig.server.mode = "ok"
    await rig.until(lambda: rig.outbox.stats()["pending"] == 0)
    for camera_id in (1, 2):
        received = rig.received(camera_id)
        assert received == sorted(received) and len(set(received)) == len(received)
    assert len(rig.server.detections) == 12 and rig.outbox.stats()["delivered"] == 12


async def test_a_refused_item_does_not_delay_the_next(rig: Rig) -> None:
    rig.server.script = [422]
    first, second = rig.add("a"), rig.add("a")
    started = time.monotonic()
    await rig.until(lambda: rig.outbox.stats()["delivered"] == 1)
    assert time.monotonic() - started < 1.0
    rows = {row["id"]: row for row in rig.outbox.items()}
    assert rows[first]["status"] == "failed" and rows[first]["http_status"] == 422
    assert "scripted 422" in rows[first]["last_error"] and rows[first]["attempts"] == 1
    assert rows[second]["status"] == "delivered"


async def test_portal_and_refused_connections_are_retried(rig: Rig) -> None:
    rig.server.mode = "portal"
    rig.add("a")
    await rig.until(lambda: len(rig.outcomes) >= 2)
    assert rig.outbox.stats()["pending"] == 1
    rig.server.stop()
    await rig.until(lambda: any(o.network and not o.sent for o in rig.outcomes))
    rig.server.mode = "ok"
    rig.server.start()
    await rig.until(lambda: rig.outbox.stats()["delivered"] == 1)
    assert rig.outbox.stats()["resent"] == 0  # a portal answer and refused connections: no copy


async def test_slow_answers_time_out_and_count_as_possible_duplicates(rig: Rig) -> None:
    rig.server.mode, rig.server.slow_seconds = "slow", 1.5
    rig.add("a")
    await rig.until(lambda: any(o.network for o in rig.outcomes), within=5)
    rig.server.mode = "ok"
    await rig.until(lambda: rig.outbox.stats()["delivered"] == 1, within=5)
    # The slow server stored it too: the bridge cannot know, so it counts it.
    await rig.until(lambda: len(rig.server.detections) >= 2, within=5)
    assert rig.outbox.stats()["resent"] == 1


async def test_big_frames_are_reencoded_once_and_crops_sent(
    tmp_path: Path, api: FakePyronear
) -> None:
    rig = Rig(tmp_path, api, send_crops=True)
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    big = cv2.imencode(".jpg", frame)[1].tobytes()
    rig.server.script = [503]
    rig.add("a", [[0.1, 0.1, 0.2, 0.2, 0.5], [0.5, 0.5, 0.6, 0.6, 0.4]], jpeg=big)
    await rig.start()
    try:
        await rig.until(lambda: rig.outbox.stats()["delivered"] == 1)
    finally:
        await rig.close()
    received = api.detections[0]
    image = cv2.imdecode(np.frombuffer(received.file, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (720, 1280) and received.crops == 2


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    backoff = Backoff(1.0, 30.0, random.Random(3))
    delays = [backoff.failed() for _ in range(40)]
    assert all(0 <= d <= min(30.0, 2**i) for i, d in enumerate(delays))
    assert max(delays[10:]) > 15  # the cap, not the first step, bounds late delays
    backoff.reset()
    assert backoff.failed() <= 1.0


async def test_a_frozen_server_gets_one_copy_more_at_most_and_every_copy_is_counted(
    tmp_path: Path, api: FakePyronear
) -> None:
    # A server stuck on its database for longer than the timeout still stores every upload
    # it received once it thaws. Uploading again at each timeout stacked one stored copy per
    # attempt (6 rows for one detection against the real server) while `resent` said 1.
    rig = Rig(tmp_path, api)
    api.freeze()
    rig.add("a")
    await rig.start()
    try:
        # The bridge kept trying through the freeze (four requests held, at a 1 s timeout)...
        await rig.until(lambda: len(api.frozen) >= 4, within=30)
        api.thaw()
        await rig.until(lambda: rig.outbox.stats()["delivered"] == 1)
        # ...every held request has been handled by now.
        await rig.until(lambda: len(api.calls) >= len(api.frozen))
        resent = rig.outbox.stats()["resent"]
    finally:
        await rig.close()
    uploads = [request for request in api.frozen if request[0] == "POST"]
    assert len(uploads) == 1, api.frozen  # only the first upload waited in the freeze
    stored = len(api.detections)
    assert stored == 2, api.detections  # that one, and the one sent once the server answered
    assert resent == stored - 1


async def test_a_pause_ends_with_its_cause_even_when_nothing_waits(rig: Rig) -> None:
    rig.server.inactive.add(11)  # camera a's pose, deactivated on the platform
    rig.add("a")
    await rig.until(lambda: "pose of a" in rig.delivery.health.snapshot()["faults"])
    # The outbox's record of the pause follows the fault (written right after it).
    await rig.until(lambda: rig.outbox.stats()["paused"] == ["a"])
    assert rig.outbox.enforce_limits(10, 1) != []  # the waiting detection evicted: none left
    rig.server.inactive.discard(11)
    await rig.until(lambda: rig.delivery.health.snapshot()["healthy"])
    await rig.until(lambda: rig.outbox.stats()["paused"] == [])
