"""The per-camera mailboxes (detector/service/scheduler.py): latest frame wins, fair turns,
intervals respected, backpressure counted."""

from __future__ import annotations

import threading
import time

from detector.service.scheduler import Scheduler


def test_the_latest_frame_wins_and_overwrites_are_counted() -> None:
    scheduler = Scheduler()
    scheduler.add("a", 0.0)
    for payload in (b"1", b"2", b"3"):
        scheduler.put("a", payload)
    job = scheduler.next_job(timeout=0)
    assert job is not None and job.payload == b"3"
    slot = scheduler.slots["a"]
    assert (slot.frames_in, slot.dropped, slot.taken) == (3, 2, 1)
    assert scheduler.next_job(timeout=0) is None  # nothing new


def test_cameras_take_turns() -> None:
    scheduler = Scheduler()
    for camera in "abc":
        scheduler.add(camera, 0.0)
    served = []
    for _ in range(6):
        for camera in "abc":
            scheduler.put(camera, camera.encode())
        job = scheduler.next_job(timeout=0)
        assert job is not None
        served.append(job.camera)
    assert served == list("abcabc")  # a busy camera never starves the others


def test_a_camera_is_not_scored_faster_than_its_interval() -> None:
    scheduler = Scheduler()
    scheduler.add("a", 60.0)
    scheduler.put("a", b"1")
    assert scheduler.next_job(timeout=0) is not None
    scheduler.put("a", b"2")
    assert scheduler.next_job(timeout=0.05) is None  # due only in a minute
    assert scheduler.slots["a"].payload == b"2"  # kept for then


def test_a_disabled_camera_s_frames_are_only_checked() -> None:
    """A camera switched off still has its frames looked at (at its interval), so its status
    says whether it sends usable frames; replacing such a frame is not a drop."""
    scheduler = Scheduler()
    scheduler.add("a", 0.0)
    scheduler.put("a", b"1")
    scheduler.discard("a")  # switched off with a frame pending: that one is dropped
    scheduler.put("a", b"2", check_only=True)
    scheduler.put("a", b"3", check_only=True)
    slot = scheduler.slots["a"]
    job = scheduler.next_job(timeout=0)
    assert job is not None and job.check_only and job.payload == b"3"
    assert (slot.frames_in, slot.dropped) == (3, 1) and slot.last_frame_at is not None


def test_a_waiting_worker_wakes_for_a_frame_and_for_close() -> None:
    scheduler = Scheduler()
    scheduler.add("a", 0.0)
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(scheduler.next_job(timeout=30)))
    worker.start()
    time.sleep(0.05)
    scheduler.put("a", b"x")
    worker.join(10)
    assert not worker.is_alive() and got[0] is not None
    closing = threading.Thread(target=lambda: got.append(scheduler.next_job(timeout=30)))
    closing.start()
    scheduler.close()
    closing.join(10)
    assert not closing.is_alive() and got[1] is None
