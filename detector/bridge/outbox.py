"""The durable outbox: every detection is on disk before the broker learns we have it.

SQLite in WAL mode with synchronous=FULL. With WAL, NORMAL would already survive a crash of the
process (kill -9) but can lose the last commits on a power cut or a kernel panic — after the
MQTT acknowledgement had told the broker it could forget them. FULL syncs the WAL on every
commit, which costs about a millisecond per detection: detections are rare (alerts), so that is
the right trade.

Rows are delivered in order per camera (`seq`). A delivered row keeps its metadata (for
`bridge status` and to recognise a redelivered id) but not its image. Counters and the last
outcomes live in the same file, so `bridge status` reads everything with the bridge stopped.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector.errors import SmokeWatchError

SCHEMA_VERSION = 1

# The image is the last column: SQLite reads the columns before a large blob without walking
# its overflow pages, so counting and summing sizes stays cheap.
SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    camera TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    bboxes TEXT NOT NULL,
    size INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    uncertain INTEGER NOT NULL DEFAULT 0,
    resent INTEGER NOT NULL DEFAULT 0,
    prepared INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    last_error TEXT,
    api_id TEXT,
    received_at REAL NOT NULL,
    done_at REAL,
    jpeg BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_status ON items (status, camera, seq);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT NOT NULL,
    camera TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name, camera)
);
CREATE TABLE IF NOT EXISTS duties (
    camera TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (camera, name)
);
CREATE TABLE IF NOT EXISTS facts (
    name TEXT NOT NULL,
    camera TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (name, camera)
);
"""

# Counters kept in the file (global and per camera).
# delivered and failed count outcomes (rows of either kind may be removed to make room).
COUNTERS = ("delivered", "failed", "evicted", "duplicates", "resent", "rejected", "skipped")
ERROR_LIMIT = 1000


class OutboxError(SmokeWatchError):
    """The outbox file cannot be used."""


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


class Outbox:
    """Thread-safe access to the outbox file (intake and delivery run in different threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise OutboxError(
                    f"{self.path} has outbox format {version}, this version reads"
                    f" {SCHEMA_VERSION}: move it away or use another bridge.outbox path"
                )
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as err:
            self._db.close()
            raise OutboxError(f"cannot open the outbox {self.path}: {err}") from err
        except OutboxError:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, camera: str, by: int = 1) -> None:
        for scope in ("", camera):
            db.execute(
                "INSERT INTO counters (name, camera, value) VALUES (?, ?, ?) "
                "ON CONFLICT(name, camera) DO UPDATE SET value = value + excluded.value",
                (name, scope, by),
            )

    @staticmethod
    def _fact(db: sqlite3.Connection, name: str, camera: str, value: str) -> None:
        for scope in ("", camera):
            db.execute(
                "INSERT INTO facts (name, camera, value) VALUES (?, ?, ?) "
                "ON CONFLICT(name, camera) DO UPDATE SET value = excluded.value",
                (name, scope, value),
            )

    # -- intake ----------------------------------------------------------------------------

    def add(
        self, item_id: str, camera: str, recorded_at: float, bboxes: list[list[float]], jpeg: bytes
    ) -> bool:
        """Store a detection durably; False (and counted) when its id is already known."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO items (id, camera, recorded_at, bboxes, size, received_at,"
                " jpeg) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (item_id, camera, recorded_at, json.dumps(bboxes), len(jpeg), time.time(), jpeg),
            )
            added = cursor.rowcount == 1
            if not added:
                self._bump(db, "duplicates", camera)
        return added

    def count(self, name: str, camera: str) -> None:
        """Add one to a counter (`rejected`, `skipped`...)."""
        with self._transaction() as db:
            self._bump(db, name, camera)

    def enforce_limits(self, max_items: int, max_bytes: int) -> list[tuple[str, str]]:
        """Keep the file within bounds: oldest delivered/failed rows first, then oldest pending.

        Returns (id, camera) of each pending detection evicted; each is also counted.
        """
        evicted: list[tuple[str, str]] = []
        with self._transaction() as db:
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items"
            ).fetchone()
            while count > max_items or size > max_bytes:
                row = db.execute(
                    "SELECT seq, size FROM items WHERE status != 'pending' ORDER BY seq LIMIT 1"
                ).fetchone()
                if row is None:
                    row = db.execute(
                        "SELECT seq, size, id, camera FROM items WHERE status = 'pending'"
                        " ORDER BY seq LIMIT 1"
                    ).fetchone()
                    if row is None:
                        break
                    evicted.append((row[2], row[3]))
                    self._bump(db, "evicted", row[3])
                db.execute("DELETE FROM items WHERE seq = ?", (row[0],))
                count, size = count - 1, size - row[1]
        return evicted

    # -- delivery --------------------------------------------------------------------------

    def cameras_pending(self) -> list[str]:
        """Cameras with something to deliver."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT camera FROM items WHERE status = 'pending'"
            ).fetchall()
        return sorted(row[0] for row in rows)

    def next_pending(self, camera: str) -> Item | None:
        """The oldest undelivered detection of a camera."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, id, camera, recorded_at, bboxes, jpeg, attempts, prepared FROM items"
                " WHERE status = 'pending' AND camera = ? ORDER BY seq LIMIT 1",
                (camera,),
            ).fetchone()
        if row is None:
            return None
        return Item(
            row[0], row[1], row[2], row[3], json.loads(row[4]), bytes(row[5]), row[6], bool(row[7])
        )

    def prepared(self, seq: int, jpeg: bytes | None) -> None:
        """Store the frame's upload form (None: the frame goes as it is).

        Done once, before the first attempt, so a frame is re-encoded once and not per attempt.
        """
        with self._transaction() as db:
            if jpeg is None:
                db.execute("UPDATE items SET prepared = 1 WHERE seq = ?", (seq,))
            else:
                db.execute(
                    "UPDATE items SET jpeg = ?, size = ?, prepared = 1 WHERE seq = ?",
                    (jpeg, len(jpeg), seq),
                )

    def attempt(self, seq: int) -> None:
        """An upload is about to start (if it is cut short, the API may get the item twice)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE items SET attempts = attempts + 1, resent = resent OR uncertain,"
                " uncertain = 1 WHERE seq = ?",
                (seq,),
            )

    def delivered(self, seq: int, api_id: str | None, http_status: int) -> None:
        """The API has it: keep the row (without the image) for status and duplicate checks."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT camera, resent FROM items WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return
            camera, resent = row
            db.execute(
                "UPDATE items SET status = 'delivered', api_id = ?, http_status = ?, done_at = ?,"
                " uncertain = 0, last_error = NULL, jpeg = x'', size = 0 WHERE seq = ?",
                (api_id, http_status, now, seq),
            )
            self._bump(db, "delivered", camera)
            if resent:
                self._bump(db, "resent", camera)
            self._fact(db, "last_success", camera, repr(now))

    def failed(self, seq: int, http_status: int | None, error: str) -> None:
        """The API refused it for good: never retried, never blocking the items behind it."""
        self._finish_attempt(seq, error, http_status=http_status, final=True)

    def retry_later(self, seq: int, error: str, *, answered: bool) -> None:
        """A temporary failure: the item stays first in its camera's line.

        `answered`: the server sent a status, so it did not store the item.
        """
        self._finish_attempt(seq, error, answered=answered)

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
        with self._transaction() as db:
            row = db.execute("SELECT camera FROM items WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return
            if final:
                self._bump(db, "failed", row[0])
                db.execute(
                    "UPDATE items SET status = 'failed', http_status = ?, last_error = ?,"
                    " done_at = ?, uncertain = 0 WHERE seq = ?",
                    (http_status, error, time.time(), seq),
                )
            else:
                db.execute(
                    "UPDATE items SET last_error = ?,"
                    " uncertain = CASE WHEN ? THEN 0 ELSE uncertain END WHERE seq = ?",
                    (error, answered, seq),
                )
            self._fact(db, "last_error", row[0], error)

    def duty_times(self) -> dict[tuple[str, str], str]:
        """When each periodic duty last succeeded, by (camera, duty): survives restarts, so a
        restart does not upload the hourly and daily images again."""
        with self._lock:
            rows = self._db.execute("SELECT camera, name, value FROM duties").fetchall()
        return {(camera, name): value for camera, name, value in rows}

    def set_duty_time(self, camera: str, name: str, value: str) -> None:
        """Record a duty's success."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO duties (camera, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT(camera, name) DO UPDATE SET value = excluded.value",
                (camera, name, value),
            )

    def requeue_failed(self, camera: str | None = None) -> list[tuple[str, str]]:
        """Put every failed detection (of one camera, or all) back in line; (id, camera) of each.

        Their images are still in the file (only delivered rows drop theirs), so they go again
        as they were; the `failed` counter keeps the past outcomes.
        """
        query = "SELECT id, camera FROM items WHERE status = 'failed'"
        args: tuple[Any, ...] = ()
        if camera is not None:
            query += " AND camera = ?"
            args = (camera,)
        with self._transaction() as db:
            rows = db.execute(query + " ORDER BY seq", args).fetchall()
            db.execute(
                "UPDATE items SET status = 'pending', done_at = NULL, http_status = NULL"
                f" WHERE id IN (SELECT id FROM ({query}))",
                args,
            )
        return [(row[0], row[1]) for row in rows]

    # -- figures ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts and the last outcomes, as `bridge status` and the stats topic show them.

        Times are epoch seconds (None when never).
        """
        now = time.time()
        with self._lock:
            by_status = self._db.execute(
                "SELECT camera, status, COUNT(*), COALESCE(SUM(size), 0) FROM items"
                " GROUP BY camera, status"
            ).fetchall()
            counters = self._db.execute("SELECT name, camera, value FROM counters").fetchall()
            facts = self._db.execute("SELECT name, camera, value FROM facts").fetchall()
            oldest = self._db.execute(
                "SELECT camera, MIN(received_at) FROM items WHERE status = 'pending'"
                " GROUP BY camera"
            ).fetchall()
        scopes: dict[str, dict[str, Any]] = {"": _empty_figures()}
        size = 0
        for camera, status, count, status_size in by_status:
            size += status_size
            for scope in ("", camera):
                figures = scopes.setdefault(scope, _empty_figures())
                if status == "pending":
                    figures["pending"] += count
        for name, camera, value in counters:
            scopes.setdefault(camera, _empty_figures())[name] = value
        for name, camera, value in facts:
            figures = scopes.setdefault(camera, _empty_figures())
            figures[name] = float(value) if name == "last_success" else value
        for camera, received in oldest:
            age = round(now - received, 1)
            for scope in ("", camera):
                figures = scopes.setdefault(scope, _empty_figures())
                current = figures["oldest_pending_age"]
                figures["oldest_pending_age"] = age if current is None else max(current, age)
        data = scopes.pop("")
        data["bytes"] = size
        data["cameras"] = dict(sorted(scopes.items()))
        return data

    def items(self, camera: str | None = None) -> list[dict[str, Any]]:
        """Every row (without the image), oldest first: for tests and diagnostics."""
        keys = (
            "seq",
            "id",
            "camera",
            "status",
            "attempts",
            "http_status",
            "last_error",
            "api_id",
            "resent",
        )
        query = f"SELECT {', '.join(keys)} FROM items"
        args: tuple[Any, ...] = ()
        if camera is not None:
            query += " WHERE camera = ?"
            args = (camera,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]


def _empty_figures() -> dict[str, Any]:
    return {
        "pending": 0,
        **{name: 0 for name in COUNTERS},
        "last_success": None,
        "last_error": None,
        "oldest_pending_age": None,
    }
