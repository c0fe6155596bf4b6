"""The inputs' gate: every live frame, from MQTT or the built-in poller, meets one size check."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from detector.config import validate
from detector.inputs import FrameInputs
from detector.inputs.pollers import read_newest
from tests.detector.tiny_model import smoke_jpeg

JPEG = smoke_jpeg(150, 64)


class Recorder:
    def __init__(self) -> None:
        self.stored: list[tuple[str, bytes]] = []
        self.refused: list[tuple[str, str, str]] = []
        self.published: list[tuple[str, bytes]] = []

    def store(self, camera: str, payload: bytes) -> None:
        self.stored.append((camera, payload))

    def reject(self, camera: str, reason: str, message: str) -> None:
        self.refused.append((camera, reason, message))

    def publish(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, payload))


def inputs(cameras: dict[str, object], max_bytes: int) -> tuple[FrameInputs, Recorder]:
    config = validate({"detection": {"interval": 0.1}, "cameras": cameras})
    recorder = Recorder()
    gate = FrameInputs(
        list(config.cameras.values()),
        max_bytes=max_bytes,
        store=recorder.store,
        reject=recorder.reject,
        republish=recorder.publish,
    )
    return gate, recorder


def wait(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_mqtt_frames_are_routed_by_topic_and_held_to_the_limit() -> None:
    gate, seen = inputs({"a": {}, "b": {"topic": "cams/b/jpeg"}}, max_bytes=len(JPEG))
    assert gate.image_topics == {"smokewatch/a/image": "a", "cams/b/jpeg": "b"}
    gate.message("smokewatch/a/image", JPEG)  # exactly at the limit: in
    gate.message("cams/b/jpeg", JPEG + b"\0")  # one byte over: out
    gate.message("smokewatch/ghost/image", JPEG)
    assert seen.stored == [("a", JPEG)]
    assert seen.refused == [
        (
            "b",
            "too_large",
            f"payload of {len(JPEG) + 1} bytes is over detection.max_frame_bytes ({len(JPEG)})",
        ),
        ("ghost", "unknown_camera", "frame on smokewatch/ghost/image for a camera not configured"),
    ]


def test_polled_frames_pass_the_same_gate(tmp_path: Path) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    big.mkdir()
    (small / "frame.jpg").write_bytes(JPEG)
    (big / "frame.jpg").write_bytes(JPEG + b"\0" * 10_000)  # a JPEG with trailing junk
    gate, seen = inputs(
        {
            "small": {"source": {"type": "folder", "url": str(small)}},
            "big": {"source": {"type": "folder", "url": str(big)}},
        },
        max_bytes=len(JPEG) + 100,
    )
    gate.start()
    try:
        wait(lambda: seen.stored and seen.refused)
    finally:
        gate.stop()
    assert {camera for camera, _ in seen.stored} == {"small"}
    camera, reason, message = seen.refused[0]
    assert (camera, reason) == ("big", "too_large")
    assert f"detection.max_frame_bytes ({len(JPEG) + 100})" in message


def test_a_big_file_is_read_only_up_to_one_byte_over_the_limit(tmp_path: Path) -> None:
    (tmp_path / "huge.jpg").write_bytes(JPEG + b"\0" * 1_000_000)
    assert len(read_newest("cam", str(tmp_path), 5000)) == 5001


def test_a_published_source_goes_to_the_broker_and_comes_back_through_the_gate(
    tmp_path: Path,
) -> None:
    (tmp_path / "frame.jpg").write_bytes(JPEG)
    gate, seen = inputs(
        {"cam": {"source": {"type": "folder", "url": str(tmp_path), "publish": True}}},
        max_bytes=1 << 20,
    )
    gate.start()
    try:
        wait(lambda: seen.published)
    finally:
        gate.stop()
    # Not stored from the poller: the service's own subscription brings it back.
    assert seen.stored == []
    topic, payload = seen.published[0]
    assert (topic, payload) == ("smokewatch/cam/image", JPEG)
    gate.message(topic, payload)
    assert seen.stored == [("cam", JPEG)]
