"""The durable outbox: every detection is on disk before the broker learns we have it.

SQLite in WAL mode with synchronous=FULL: each commit is on stable storage when `add` returns,
so a kill -9, a reboot or a power cut after the MQTT acknowledgement loses nothing. Items are
delivered in order per camera; a delivered row is kept (for `bridge status` and for dropping a
redelivered duplicate) until space is needed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    camera TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    bboxes TEXT NOT NULL,
    jpeg BLOB NOT NULL,
    size INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    http_status INTEGER,
    api_id TEXT,
    received_at REAL NOT NULL,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS items_pending ON items (status, camera, seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


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


class Outbox:
    """Thread-safe access to the outbox file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def _bump(self, name: str, by: int = 1) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def add(
        self, item_id: str, camera: str, recorded_at: float, bboxes: list[list[float]], jpeg: bytes
    ) -> bool:
        """Store a detection durably; False (and counted) when its id is already known."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO items (id, camera, recorded_at, bboxes, jpeg, size,"
                    " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        item_id,
                        camera,
                        recorded_at,
                        json.dumps(bboxes),
                        jpeg,
                        len(jpeg),
                        time.time(),
                    ),
                )
                added = cursor.rowcount == 1
                if not added:
                    self._bump("duplicates")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def add_failed(self, item_id: str, camera: str, recorded_at: float, reason: str) -> None:
        """Record a detection that can never be delivered (e.g. no token for its camera)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO items (id, camera, recorded_at, bboxes, jpeg, size, status,"
                " last_error, received_at, done_at)"
                " VALUES (?, ?, ?, '[]', x'', 0, 'failed', ?, ?, ?)",
                (item_id, camera, recorded_at, reason, time.time(), time.time()),
            )

    def cameras_pending(self) -> list[str]:
        """Cameras with something to deliver."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT camera FROM items WHERE status = 'pending'"
            ).fetchall()
        return [row[0] for row in rows]

    def next_pending(self, camera: str) -> Item | None:
        """The oldest undelivered detection of a camera."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, id, camera, recorded_at, bboxes, jpeg, attempts FROM items "
                "WHERE status = 'pending' AND camera = ? ORDER BY seq LIMIT 1",
                (camera,),
            ).fetchone()
        if row is None:
            return None
        return Item(row[0], row[1], row[2], row[3], json.loads(row[4]), bytes(row[5]), row[6])

    def delivered(self, seq: int, api_id: str | None, http_status: int) -> None:
        """The API has it."""
        with self._lock:
            self._db.execute(
                "UPDATE items SET status = 'delivered', api_id = ?, http_status = ?, done_at = ?,"
                " attempts = attempts + 1, last_error = NULL WHERE seq = ?",
                (api_id, http_status, time.time(), seq),
            )

    def failed(self, seq: int, http_status: int | None, error: str) -> None:
        """The API refused it for good: never retried, never blocking the items behind it."""
        with self._lock:
            self._db.execute(
                "UPDATE items SET status = 'failed', http_status = ?, last_error = ?, done_at = ?,"
                " attempts = attempts + 1 WHERE seq = ?",
                (http_status, error[:1000], time.time(), seq),
            )

    def attempt_failed(self, seq: int, error: str) -> None:
        """A temporary failure: the item stays first in its camera's line."""
        with self._lock:
            self._db.execute(
                "UPDATE items SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error[:1000], seq),
            )

    def enforce_limits(self, max_items: int, max_bytes: int) -> list[str]:
        """Keep the file within bounds: oldest delivered/failed rows first, then oldest pending.

        Returns the ids of pending detections evicted (each is also counted).
        """
        evicted: list[str] = []
        with self._lock:
            while True:
                count, size = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items"
                ).fetchone()
                if count <= max_items and size <= max_bytes:
                    break
                row = self._db.execute(
                    "SELECT seq FROM items WHERE status != 'pending' ORDER BY seq LIMIT 1"
                ).fetchone()
                if row is None:
                    row = self._db.execute(
                        "SELECT seq, id FROM items WHERE status = 'pending' ORDER BY seq LIMIT 1"
                    ).fetchone()
                    if row is None:
                        break
                    evicted.append(row[1])
                    self._bump("evicted")
                self._db.execute("DELETE FROM items WHERE seq = ?", (row[0],))
        return evicted

    def stats(self) -> dict[str, Any]:
        """Counts and the last outcomes, as `bridge status` and the stats topic show them."""
        with self._lock:
            by_status = dict(
                self._db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall()
            )
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            last_success = self._db.execute(
                "SELECT MAX(done_at) FROM items WHERE status = 'delivered'"
            ).fetchone()[0]
            oldest = self._db.execute(
                "SELECT MIN(received_at) FROM items WHERE status = 'pending'"
            ).fetchone()[0]
            last_error = self._db.execute(
                "SELECT last_error FROM items WHERE last_error IS NOT NULL "
                "AND (status = 'pending' OR status = 'failed') ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            per_camera = self._db.execute(
                "SELECT camera, status, COUNT(*) FROM items GROUP BY camera, status"
            ).fetchall()
            size = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM items").fetchone()[0]
        cameras: dict[str, dict[str, int]] = {}
        for camera, status, count in per_camera:
            cameras.setdefault(camera, {})[status] = count
        return {
            "pending": by_status.get("pending", 0),
            "delivered": by_status.get("delivered", 0),
            "failed": by_status.get("failed", 0),
            "evicted": counters.get("evicted", 0),
            "duplicates": counters.get("duplicates", 0),
            "bytes": size,
            "last_success": last_success,
            "last_error": last_error[0] if last_error else None,
            "oldest_pending_age": None if oldest is None else round(time.time() - oldest, 1),
            "cameras": cameras,
        }

    def items(self, camera: str | None = None) -> list[dict[str, Any]]:
        """Every row (without the image), oldest first: for tests and `bridge status`."""
        query = (
            "SELECT seq, id, camera, status, attempts, http_status, last_error, api_id FROM items"
        )
        args: tuple[Any, ...] = ()
        if camera is not None:
            query += " WHERE camera = ?"
            args = (camera,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        keys = ("seq", "id", "camera", "status", "attempts", "http_status", "last_error", "api_id")
        return [dict(zip(keys, row, strict=True)) for row in rows]
