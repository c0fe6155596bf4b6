"""The same bytes never become two stored objects of one camera within a second, even when the
uploads run at the same time (a slow API keeps a detection in flight while the duties upload)."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime
from pathlib import Path

from detector.bridge.duties import Duties
from detector.bridge.spacing import UploadSpacing
from tests.detector.fake_pyronear import FakePyronear
from tests.detector.test_bridge_delivery import Rig
from tests.detector.tiny_model import smoke_jpeg


async def test_an_upload_waits_for_one_of_the_same_bytes_in_flight() -> None:
    spacing = UploadSpacing(0.2)
    first_inside, release = asyncio.Event(), asyncio.Event()
    events: list[tuple[str, float]] = []

    async def first() -> None:
        async with spacing.upload("a", "detection", b"frame"):
            events.append(("first in", time.monotonic()))
            first_inside.set()
            await release.wait()
            # The answer: the spacing starts when the upload leaves, at this time or later
            # (a time taken after leaving could come late on a loaded machine).
            events.append(("first out", time.monotonic()))

    async def second() -> None:
        await first_inside.wait()
        async with spacing.upload("a", "camera", b"frame"):
            events.append(("second in", time.monotonic()))

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_inside.wait()
    for _ in range(10):  # every chance to start while the first is still in flight
        await asyncio.sleep(0)
    assert [name for name, _ in events] == ["first in"]
    release.set()
    await asyncio.gather(*tasks)
    assert [name for name, _ in events] == ["first in", "first out", "second in"]
    assert events[2][1] - events[1][1] >= 0.2  # a full spacing after the first's answer


async def test_two_detections_of_the_same_bytes_and_other_cameras_do_not_wait() -> None:
    spacing = UploadSpacing(5.0)
    async with spacing.upload("a", "detection", b"frame"):
        pass
    async with spacing.upload("a", "detection", b"frame"), spacing.upload("b", "camera", b"frame"):
        pass
    assert spacing.waits == 0


class Clock:
    """Local time after pose_image_hour: the daily pose image is due."""

    def __call__(self) -> datetime:
        return datetime(2026, 6, 1, 13, 30)


async def test_a_slow_api_never_stores_the_same_frame_as_two_kinds_within_a_second(
    tmp_path: Path, api: FakePyronear
) -> None:
    # 300 ms per answer: the camera image was still in flight when the same frame went as a
    # detection (the real server gave both one object name, and the next camera image
    # deleted the file the detection pointed to).
    api.mode, api.slow_seconds = "slow", 0.3
    frame = smoke_jpeg(200, 64)
    rig = Rig(tmp_path, api)
    duties = Duties(
        rig.settings,
        rig.client,
        publish_masks=lambda *_: None,
        on_outcome=lambda _: None,
        local_now=Clock(),
        spacing=rig.delivery.spacing,
    )
    await rig.start()
    try:
        duties.frame("a", frame)
        uploads = asyncio.create_task(duties.run_due())
        await rig.until(lambda: any(kind == "camera" for kind, _, _ in api.processed))
        rig.add("a", jpeg=frame)  # the camera image's answer has not come yet
        await uploads
        await rig.until(lambda: rig.outbox.stats()["delivered"] == 1)
    finally:
        await rig.close()
    kinds = sorted(kind for kind, _, _ in api.processed)
    assert kinds == ["camera", "detection", "pose"]
    times = sorted(at for _, at, _ in api.processed)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 1.0, gaps
    assert api.shared == [] and api.dangling() == []
