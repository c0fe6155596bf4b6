"""The outbox file: idempotent intake, order, outcomes, bounds, figures that survive a restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detector.bridge.outbox import Item, Outbox, OutboxError

BOX = [[0.1, 0.1, 0.2, 0.2, 0.5]]


def one_pending(tmp_path: Path) -> tuple[Outbox, Item]:
    """An outbox file holding one detection of camera "a", and that detection, next to send."""
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.add("a0", "a", 0.0, BOX, b"x")
    item = outbox.next_pending("a")
    assert item is not None
    return outbox, item


def test_intake_is_idempotent_on_the_detection_id(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    assert outbox.add("a1", "a", 1.0, BOX, b"jpeg")
    assert not outbox.add("a1", "a", 1.0, BOX, b"jpeg")
    stats = outbox.stats()
    assert stats["pending"] == 1 and stats["duplicates"] == 1
    assert stats["cameras"]["a"]["duplicates"] == 1
    outbox.close()


def test_order_per_camera_and_outcomes(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    for index in range(3):
        outbox.add(f"a{index}", "a", float(index), BOX, b"x" * 10)
        outbox.add(f"b{index}", "b", float(index), [], b"y")
    assert outbox.cameras_pending() == ["a", "b"]
    first = outbox.next_pending("a")
    assert first is not None and first.id == "a0" and first.bboxes == BOX
    outbox.attempt(first.seq)
    outbox.failed(first.seq, 422, "HTTP 422: bad")
    second = outbox.next_pending("a")
    assert second is not None and second.id == "a1"
    outbox.attempt(second.seq)
    outbox.delivered(second.seq, "7", 201)
    stats = outbox.stats()
    assert (stats["pending"], stats["delivered"], stats["failed"]) == (4, 1, 1)
    assert stats["last_error"] == "HTTP 422: bad" and stats["last_success"] is not None
    rows = {row["id"]: row for row in outbox.items()}
    assert rows["a0"]["status"] == "failed" and rows["a0"]["http_status"] == 422
    assert rows["a1"]["api_id"] == "7"
    outbox.close()
    # Everything is in the file: a new process sees the same figures.
    again = Outbox(tmp_path / "o.sqlite3")
    assert again.stats()["failed"] == 1
    again.close()


def test_an_interrupted_upload_is_counted_as_resent(tmp_path: Path) -> None:
    outbox, item = one_pending(tmp_path)
    outbox.attempt(item.seq)  # ... and the process dies here
    outbox.close()
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.attempt(item.seq)
    outbox.delivered(item.seq, "1", 201)
    assert outbox.stats()["resent"] == 1
    # A refused connection never reached the server: no duplicate possible.
    outbox.add("a1", "a", 0.0, BOX, b"x")
    item = outbox.next_pending("a")
    assert item is not None
    outbox.attempt(item.seq)
    outbox.retry_later(item.seq, "cannot connect", answered=True)
    outbox.attempt(item.seq)
    outbox.delivered(item.seq, "2", 201)
    assert outbox.stats()["resent"] == 1
    outbox.close()


def test_bounds_drop_delivered_rows_first_then_count_evictions(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    for index in range(4):
        outbox.add(f"a{index}", "a", float(index), BOX, b"x" * 100)
    item = outbox.next_pending("a")
    assert item is not None
    outbox.delivered(item.seq, "1", 201)
    outbox.add("a4", "a", 4.0, BOX, b"x" * 100)
    assert outbox.enforce_limits(4, 10**6) == []  # the delivered row made room
    assert [row["id"] for row in outbox.items()] == ["a1", "a2", "a3", "a4"]
    outbox.add("a5", "a", 5.0, BOX, b"x" * 100)
    assert outbox.enforce_limits(4, 10**6) == [("a1", "a")]
    assert outbox.enforce_limits(10, 250) == [("a2", "a"), ("a3", "a")]
    stats = outbox.stats()
    assert stats["evicted"] == 3 and stats["pending"] == 2 and stats["bytes"] == 200
    outbox.close()


def test_every_possible_copy_is_counted(tmp_path: Path) -> None:
    # Five uploads without an answer, then one that succeeded: the API may hold six copies,
    # five of them more than it should; `resent` said 1.
    outbox, item = one_pending(tmp_path)
    for _ in range(5):
        outbox.attempt(item.seq)
        outbox.retry_later(item.seq, "no answer within 10 s", answered=False)
    # An answered failure and a refused connection in between store nothing.
    outbox.attempt(item.seq)
    outbox.retry_later(item.seq, "HTTP 503", answered=True)
    outbox.attempt(item.seq)
    outbox.delivered(item.seq, "1", 201)
    assert outbox.stats()["resent"] == 5
    assert outbox.items()[0]["resent"] == 5
    outbox.close()


def test_a_copy_cut_short_by_a_crash_is_counted(tmp_path: Path) -> None:
    outbox, item = one_pending(tmp_path)
    outbox.attempt(item.seq)
    outbox.retry_later(item.seq, "no answer", answered=False)
    outbox.attempt(item.seq)  # a second copy on its way, and the process is killed
    outbox.close()
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.attempt(item.seq)
    outbox.delivered(item.seq, "1", 201)
    assert outbox.stats()["resent"] == 2  # the killed attempt and the delivered one
    outbox.close()


def test_a_file_put_in_its_place_takes_the_pending_detections_along(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    outbox = Outbox(path)
    outbox.add("a1", "a", 1.0, BOX, b"x")
    other = Outbox(tmp_path / "other.sqlite3")
    other.add("b1", "b", 1.0, BOX, b"y")
    other.close()
    os.replace(tmp_path / "other.sqlite3", path)  # someone puts another outbox there
    outbox.add("a2", "a", 2.0, BOX, b"x")
    assert [row["id"] for row in outbox.items()] == ["b1", "a1", "a2"]
    # Something that is no outbox: refused with the reason, the open file keeps everything.
    (tmp_path / "junk").write_bytes(b"not a database" * 500)
    os.replace(tmp_path / "junk", path)
    with pytest.raises(OutboxError, match="replaced by a file that cannot be used"):
        outbox.add("a3", "a", 3.0, BOX, b"x")
    path.unlink()  # moved away: a new outbox with what the open file held
    assert outbox.add("a3", "a", 3.0, BOX, b"x")
    assert [row["id"] for row in outbox.items()] == ["b1", "a1", "a2", "a3"]
    outbox.close()
    assert [row["id"] for row in Outbox(path, read_only=True).items()] == ["b1", "a1", "a2", "a3"]
