"""The durable outbox: every detection is on disk before the broker learns we have it.

SQLite in WAL mode with synchronous=FULL. With WAL, NORMAL would already survive a crash of the
process (kill -9) but can lose the last commits on a power cut or a kernel panic — after the
MQTT acknowledgement had told the broker it could forget them. FULL syncs the WAL on every
commit, which costs about a millisecond per detection: detections are rare (alerts), so that is
the right trade. The file itself (opening, a file removed or corrupted under the running
bridge) is `outbox_file`'s concern, the figures read from it `outbox_figures`'.

Rows are delivered in order per camera (`seq`). A delivered row keeps its metadata (for
`bridge status` and to recognise a redelivered id) but not its image. Counters and the last
outcomes live in the same file, so `bridge status` reads everything with the bridge stopped.

Copies at the API: the API has no idempotency key, so an upload whose answer never came (a
timeout, a cut link, the process killed during it) may have been stored. The row's `uncertain`
column holds two flags: IN_FLIGHT (an attempt started and has not finished: if the process
dies, the next start knows) and MAYBE_STORED (an earlier attempt may have been stored). Every
later upload that may itself be stored (delivered, or unanswered again) while MAYBE_STORED is
set is a possible second copy at the API: counted in `resent`, each one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from detector.bridge.outbox_figures import figures, item_rows
from detector.bridge.outbox_file import OutboxError, OutboxFile

__all__ = ["ERROR_LIMIT", "IN_FLIGHT", "MAYBE_STORED", "Item", "Outbox", "OutboxError"]

ERROR_LIMIT = 1000
IN_FLIGHT, MAYBE_STORED = 1, 2

T = TypeVar("T")


@dataclass(frozen=True)
class Item:
    """A detection waiting in the outbox."""

    seq: int
    id: str
    camera: str
    recorded_at: float
    bboxes: list[list[float]]
    jpeg: bytes
    attempts: int
    prepared: bool


def _bump(db: sqlite3.Connection, name: str, camera: str, by: int = 1) -> None:
    for scope in ("", camera):
        db.execute(
            "INSERT INTO counters (name, camera, value) VALUES (?, ?, ?) "
            "ON CONFLICT(name, camera) DO UPDATE SET value = value + excluded.value",
            (name, scope, by),
        )


def _fact(db: sqlite3.Connection, name: str, camera: str, value: str, *scopes: str) -> None:
    for scope in scopes or ("", camera):
        db.execute(
            "INSERT INTO facts (name, camera, value) VALUES (?, ?, ?) "
            "ON CONFLICT(name, camera) DO UPDATE SET value = excluded.value",
            (name, scope, value),
        )


class Outbox:
    """Thread-safe access to the outbox file (intake and delivery run in different threads).

    `read_only`: for `bridge status`: nothing is written, not even the schema.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self._file = OutboxFile(self.path, read_only=read_only)

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._file.run(work, write=True)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._file.run(work, write=False)

    # -- intake ----------------------------------------------------------------------------

    def add(
        self, item_id: str, camera: str, recorded_at: float, bboxes: list[list[float]], jpeg: bytes
    ) -> bool:
        """Store a detection durably; False (and counted) when its id is already known."""

        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO items (id, camera, recorded_at, bboxes, size, received_at,"
                " jpeg) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (item_id, camera, recorded_at, json.dumps(bboxes), len(jpeg), time.time(), jpeg),
            )
            if cursor.rowcount != 1:
                _bump(db, "duplicates", camera)
            return cursor.rowcount == 1

        return self._write(work)

    def count(self, name: str, camera: str) -> None:
        """Add one to a counter (`rejected`, `skipped`...)."""
        self._write(lambda db: _bump(db, name, camera))

    def enforce_limits(self, max_items: int, max_bytes: int) -> list[tuple[str, str]]:
        """Keep the file within bounds: the oldest delivered rows first, then the oldest failed
        ones, then the oldest pending.

        Returns (id, camera) of each undelivered detection (failed or pending) evicted; each is
        also counted as `evicted`.
        """

        def work(db: sqlite3.Connection) -> list[tuple[str, str]]:
            evicted: list[tuple[str, str]] = []
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items"
            ).fetchone()
            while count > max_items or size > max_bytes:
                row = None
                for status in ("delivered", "failed", "pending"):
                    row = db.execute(
                        "SELECT seq, size, id, camera FROM items WHERE status = ?"
                        " ORDER BY seq LIMIT 1",
                        (status,),
                    ).fetchone()
                    if row is not None:
                        if status != "delivered":
                            evicted.append((row[2], row[3]))
                            _bump(db, "evicted", row[3])
                        break
                if row is None:
                    break
                db.execute("DELETE FROM items WHERE seq = ?", (row[0],))
                count, size = count - 1, size - row[1]
            return evicted

        return self._write(work)

    # -- delivery --------------------------------------------------------------------------

    def cameras_pending(self) -> list[str]:
        """Cameras with something to deliver."""
        rows = self._read(
            lambda db: db.execute(
                "SELECT DISTINCT camera FROM items WHERE status = 'pending'"
            ).fetchall()
        )
        return sorted(row[0] for row in rows)

    def next_pending(self, camera: str) -> Item | None:
        """The oldest undelivered detection of a camera."""
        row = self._read(
            lambda db: db.execute(
                "SELECT seq, id, camera, recorded_at, bboxes, jpeg, attempts, prepared FROM items"
                " WHERE status = 'pending' AND camera = ? ORDER BY seq LIMIT 1",
                (camera,),
            ).fetchone()
        )
        if row is None:
            return None
        return Item(
            row[0], row[1], row[2], row[3], json.loads(row[4]), bytes(row[5]), row[6], bool(row[7])
        )

    def prepared(self, seq: int, jpeg: bytes | None) -> None:
        """Store the frame's upload form (None: the frame goes as it is).

        Done once, before the first attempt, so a frame is re-encoded once and not per attempt.
        """

        def work(db: sqlite3.Connection) -> None:
            if jpeg is None:
                db.execute("UPDATE items SET prepared = 1 WHERE seq = ?", (seq,))
            else:
                db.execute(
                    "UPDATE items SET jpeg = ?, size = ?, prepared = 1 WHERE seq = ?",
                    (jpeg, len(jpeg), seq),
                )

        self._write(work)

    def attempt(self, seq: int) -> None:
        """An upload is about to start (if it is cut short, the API may get the item twice).

        An attempt still marked in flight never finished (the process stopped during it): it
        may have been stored, and if an earlier one may have been too, it was a copy.
        """

        def work(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT camera, uncertain FROM items WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return
            camera, flags = row
            copies = 0
            if flags & IN_FLIGHT:
                copies = 1 if flags & MAYBE_STORED else 0
                flags |= MAYBE_STORED
            db.execute(
                "UPDATE items SET attempts = attempts + 1, uncertain = ?, resent = resent + ?"
                " WHERE seq = ?",
                (flags | IN_FLIGHT, copies, seq),
            )
            if copies:
                _bump(db, "resent", camera, copies)

        self._write(work)

    def delivered(self, seq: int, api_id: str | None, http_status: int) -> None:
        """The API has it: keep the row (without the image) for status and duplicate checks."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            camera = self._settle(db, seq, stored=True)
            if camera is None:
                return
            db.execute(
                "UPDATE items SET status = 'delivered', api_id = ?, http_status = ?, done_at = ?,"
                " uncertain = 0, last_error = NULL, jpeg = x'', size = 0 WHERE seq = ?",
                (api_id, http_status, now, seq),
            )
            _bump(db, "delivered", camera)
            _fact(db, "last_success", camera, repr(now))

        self._write(work)

    def failed(self, seq: int, http_status: int | None, error: str) -> None:
        """The API refused it for good: never retried, never blocking the items behind it."""
        self._finish_attempt(seq, error, http_status=http_status, final=True)

    def retry_later(self, seq: int, error: str, *, answered: bool) -> None:
        """A temporary failure: the item stays first in its camera's line.

        `answered`: the server sent a status (or the request never left), so this attempt did
        not store the item.
        """
        self._finish_attempt(seq, error, answered=answered)

    @staticmethod
    def _settle(db: sqlite3.Connection, seq: int, *, stored: bool) -> str | None:
        """End an attempt: count it as a copy when it may be stored while an earlier one may
        be too; the flags that stay. Returns the row's camera (None: no such row)."""
        row = db.execute("SELECT camera, uncertain FROM items WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            return None
        camera, flags = row
        in_flight, maybe = flags & IN_FLIGHT, flags & MAYBE_STORED
        if in_flight and maybe and stored:
            db.execute("UPDATE items SET resent = resent + 1 WHERE seq = ?", (seq,))
            _bump(db, "resent", camera)
        flags = maybe | (MAYBE_STORED if in_flight and stored else 0)
        db.execute("UPDATE items SET uncertain = ? WHERE seq = ?", (flags, seq))
        return str(camera)

    def _finish_attempt(
        self,
        seq: int,
        error: str,
        *,
        http_status: int | None = None,
        answered: bool = True,
        final: bool = False,
    ) -> None:
        error = error[:ERROR_LIMIT]
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            camera = self._settle(db, seq, stored=not final and not answered)
            if camera is None:
                return
            if final:
                _bump(db, "failed", camera)
                db.execute(
                    "UPDATE items SET status = 'failed', http_status = ?, last_error = ?,"
                    " done_at = ?, uncertain = 0 WHERE seq = ?",
                    (http_status, error, now, seq),
                )
            else:
                db.execute("UPDATE items SET last_error = ? WHERE seq = ?", (error, seq))
            _fact(db, "last_error", camera, error)
            _fact(db, "last_error_at", camera, repr(now))

        self._write(work)

    def set_paused(self, camera: str, reason: str | None) -> None:
        """Record that a camera's delivery is paused, and why (None: it is not), so that
        `bridge status` says so, even while the bridge is stopped."""

        def work(db: sqlite3.Connection) -> None:
            if reason is None:
                db.execute(
                    "DELETE FROM facts WHERE camera = ? AND name IN ('paused', 'paused_since')",
                    (camera,),
                )
                return
            since = db.execute(
                "SELECT value FROM facts WHERE camera = ? AND name = 'paused_since'", (camera,)
            ).fetchone()
            _fact(db, "paused", camera, reason[:ERROR_LIMIT], camera)
            if since is None:
                _fact(db, "paused_since", camera, repr(time.time()), camera)

        self._write(work)

    def clear_paused(self) -> None:
        """Forget every recorded pause (a new run of the bridge finds them again)."""
        self._write(
            lambda db: db.execute("DELETE FROM facts WHERE name IN ('paused', 'paused_since')")
        )

    def duty_times(self) -> dict[tuple[str, str], str]:
        """When each periodic duty last succeeded, by (camera, duty): survives restarts, so a
        restart does not upload the hourly and daily images again."""
        rows = self._read(
            lambda db: db.execute("SELECT camera, name, value FROM duties").fetchall()
        )
        return {(camera, name): value for camera, name, value in rows}

    def set_duty_time(self, camera: str, name: str, value: str) -> None:
        """Record a duty's success."""
        self._write(
            lambda db: db.execute(
                "INSERT INTO duties (camera, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT(camera, name) DO UPDATE SET value = excluded.value",
                (camera, name, value),
            )
        )

    def requeue_failed(self, camera: str | None = None) -> list[tuple[str, str]]:
        """Put every failed detection (of one camera, or all) back in line; (id, camera) of each.

        Their images are still in the file (only delivered rows drop theirs), so they go again
        as they were; `failed` counts them no more, `failed_total` keeps the past outcomes.
        """
        query = "SELECT id, camera FROM items WHERE status = 'failed'"
        args: tuple[Any, ...] = ()
        if camera is not None:
            query += " AND camera = ?"
            args = (camera,)

        def work(db: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = db.execute(query + " ORDER BY seq", args).fetchall()
            db.execute(
                "UPDATE items SET status = 'pending', done_at = NULL, http_status = NULL"
                f" WHERE id IN (SELECT id FROM ({query}))",
                args,
            )
            return [(row[0], row[1]) for row in rows]

        return self._write(work)

    # -- figures ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts and the last outcomes, as `bridge status` and the stats topic show them
        (outbox_figures.figures)."""
        return self._read(figures)

    def items(self, camera: str | None = None) -> list[dict[str, Any]]:
        """Every row (without the image), oldest first: for tests and diagnostics."""
        return self._read(lambda db: item_rows(db, camera))
