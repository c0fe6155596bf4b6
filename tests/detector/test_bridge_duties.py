"""Periodic duties against the contract-enforcing server: heartbeat, images, masks."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from detector.bridge.api import Outcome, PyronearClient
from detector.bridge.api_masks import translate_api_masks
from detector.bridge.duties import RETRY_AFTER, Duties
from detector.bridge.outbox import Outbox
from detector.config.bridge import BridgeCameraConfig, BridgeConfig
from tests.detector.fake_pyronear import FakePyronear, make_token
from tests.detector.tiny_model import smoke_jpeg


class Clock:
    def __init__(self, hour: int) -> None:
        self.now = datetime(2026, 6, 1, hour, 30)

    def __call__(self) -> datetime:
        return self.now


async def test_duties_follow_frames_and_the_clock(api: FakePyronear) -> None:
    settings = BridgeConfig(
        url=api.url,
        timeout=2,
        heartbeat_interval=0.2,
        cameras={
            "a": BridgeCameraConfig(token=make_token(1), pose_id=11),
            "b": BridgeCameraConfig(token=make_token(2), pose_id=22),
        },
    )
    client = PyronearClient(api.url, 2)
    published: list[tuple[str, str]] = []
    outcomes: list[Outcome] = []
    clock = Clock(hour=9)
    duties = Duties(
        settings,
        client,
        publish_masks=lambda camera, payload: published.append((camera, payload)),
        on_outcome=outcomes.append,
        local_now=clock,
    )
    try:
        await duties.run_due()
        # No frames: no heartbeat, no image; the masks are fetched (and published once).
        assert api.heartbeats == [] and api.images == []
        remote_a = json.dumps(translate_api_masks(api.masks[11]).masks)
        assert published == [("a", remote_a), ("b", "[]")]
        duties.frame("a", smoke_jpeg(100, 64))
        await duties.run_due()
        assert api.heartbeats == [1] and api.images == [("camera", 1)]  # 9:30: no pose image
        clock.now = clock.now.replace(hour=12)
        await duties.run_due()
        assert api.images == [("camera", 1), ("pose", 11)]
        await duties.run_due()
        assert api.images.count(("pose", 11)) == 1  # once a day
        assert api.heartbeats == [1]  # not due yet
        # Frames stop: after two heartbeat intervals no more heartbeats.
        assert duties.cameras["a"].frame_at is not None
        duties.cameras["a"].frame_at -= 0.5
        duties.cameras["a"].next_heartbeat = 0
        await duties.run_due()
        assert api.heartbeats == [1]
        # Masks unchanged: not published again.
        duties.cameras["a"].next_masks = 0
        await duties.run_due()
        assert len(published) == 2
        assert all(o.ok for o in outcomes)
    finally:
        await client.close()


async def test_failed_duties_retry_sooner_and_log_once(
    api: FakePyronear, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_token(1)
    settings = BridgeConfig(url=api.url, cameras={"a": BridgeCameraConfig(token=token, pose_id=11)})
    client = PyronearClient(api.url, 2)
    duties = Duties(settings, client, publish_masks=lambda *_: None, on_outcome=lambda _: None)
    api.mode = "down"
    try:
        for _ in range(3):
            duties.cameras["a"].next_masks = 0
            await duties.run_due()
        # Retried within a minute, not at the hourly cadence.
        assert duties.cameras["a"].next_masks - time.monotonic() <= RETRY_AFTER
    finally:
        await client.close()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "occlusion masks failed" in warnings[0].getMessage()
    assert token not in caplog.text


async def test_duty_times_survive_a_restart_and_same_bytes_are_a_second_apart(
    api: FakePyronear, tmp_path: Path
) -> None:
    # The bridge re-uploaded the camera image and the "daily" pose image at every start, and
    # sent the same JPEG as camera and pose image within a second: the real server names
    # objects by camera, second and hash, and deleted the file a detection pointed to.
    settings = BridgeConfig(
        url=api.url, timeout=2, cameras={"a": BridgeCameraConfig(token=make_token(1), pose_id=11)}
    )
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    client = PyronearClient(api.url, 2)
    try:
        for run in range(2):  # the second run is the bridge after a restart
            duties = Duties(
                settings,
                client,
                publish_masks=lambda *_: None,
                on_outcome=lambda _: None,
                local_now=Clock(hour=13),
                outbox=outbox,
            )
            duties.frame("a", smoke_jpeg(100, 64))
            await duties.run_due()
            if run == 0:
                assert api.images == [("camera", 1), ("pose", 11)]
                assert duties.spacing.waits == 1
                assert api.image_times[1] - api.image_times[0] >= 1.0
        assert api.images == [("camera", 1), ("pose", 11)]  # nothing again after the restart
        assert [c for c in api.calls if "occlusion_masks" in c[1]] == [
            ("GET", "/api/v1/poses/11/occlusion_masks", 200)
        ]
    finally:
        await client.close()
        outbox.close()


async def test_bad_api_masks_are_skipped_counted_and_logged_once(
    api: FakePyronear, caplog: pytest.LogCaptureFixture
) -> None:
    settings = BridgeConfig(
        url=api.url, timeout=2, cameras={"a": BridgeCameraConfig(token=make_token(1), pose_id=11)}
    )
    # The real API stores any '(a,b,c,d)' text: one without area beside a good one. The log
    # names the mask by its id at the API (it named its place in the list: "API mask 1").
    api.masks[11] = [
        {"id": 17, "mask": "(0.2,0.2,0.4,0.4)"},
        {"id": 42, "mask": "(0.5,0.5,0.1,0.1)"},
    ]
    client = PyronearClient(api.url, 2)
    published: list[tuple[str, str]] = []
    duties = Duties(
        settings,
        client,
        publish_masks=lambda camera, payload: published.append((camera, payload)),
        on_outcome=lambda _: None,
    )
    try:
        for _ in range(2):  # the same masks fetched twice: logged and counted once
            duties.cameras["a"].next_masks = 0
            await duties.run_due()
    finally:
        await client.close()
    assert len(published) == 1
    assert json.loads(published[0][1]) == [
        {"name": "remote-17", "rect": [0.2, 0.2, 0.4, 0.4], "rule": "iou"}
    ]
    assert duties.masks_skipped == {"a": 1}
    skipped = [r.getMessage() for r in caplog.records if "mask skipped" in r.getMessage()]
    assert skipped == [
        "Camera a: occlusion mask skipped: API mask id 42.rect: needs x1 < x2 and y1 < y2"
    ]


async def test_a_masks_time_saved_by_an_older_bridge_does_not_delay_the_first_fetch(
    api: FakePyronear, tmp_path: Path
) -> None:
    # An older bridge published the API's own mask strings, retained on the broker; the
    # detector now refuses them. The upgraded bridge must replace them at once, not up to
    # masks_interval (an hour) after the upgrade.
    settings = BridgeConfig(
        url=api.url, timeout=2, cameras={"a": BridgeCameraConfig(token=make_token(1), pose_id=11)}
    )
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.set_duty_time("a", "masks", repr(time.time()))  # what the older bridge saved
    client = PyronearClient(api.url, 2)
    published: list[tuple[str, str]] = []
    try:
        for _run in range(2):  # the upgrade, then a restart of the upgraded bridge
            duties = Duties(
                settings,
                client,
                publish_masks=lambda camera, payload: published.append((camera, payload)),
                on_outcome=lambda _: None,
                outbox=outbox,
            )
            await duties.run_due()
    finally:
        await client.close()
        outbox.close()
    # Fetched and published after the upgrade; the upgraded bridge's own time is kept.
    assert [c for c in api.calls if "occlusion_masks" in c[1]] == [
        ("GET", "/api/v1/poses/11/occlusion_masks", 200)
    ]
    assert published == [("a", json.dumps(translate_api_masks(api.masks[11]).masks))]
