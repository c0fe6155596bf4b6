"""What the outbox file says about deliveries: the figures of `bridge status` and the stats.

Read from the file alone, so `bridge status` shows the same as the running bridge's stats,
even while the bridge is stopped. Times are epoch seconds here (None when never);
`stats_payload` in the bridge service writes them as ISO 8601.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

# Counters kept in the file (global and per camera). The counter `failed` counts every final
# refusal there ever was: it is shown as `failed_total`, and `failed` is how many detections
# are refused now (`bridge retry` puts them back in line, a delivery takes them off).
COUNTERS = ("delivered", "failed", "evicted", "duplicates", "resent", "rejected", "skipped")
_SHOWN_AS = {"failed": "failed_total"}
# Facts that are times (epoch seconds in the file).
TIME_FACTS = ("last_success", "last_error_at", "paused_since")
# Facts kept per camera only: why its delivery is paused, since when.
CAMERA_FACTS = ("paused", "paused_since")
# Facts about the file itself (global only): what the last recovery did.
FILE_FACTS = ("recovered",)
ITEM_KEYS = (
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


def empty_figures(*, camera: bool) -> dict[str, Any]:
    """The figures of an outbox with nothing in it (of one camera, or of all)."""
    figures: dict[str, Any] = {
        "pending": 0,
        "failed": 0,
        **{_SHOWN_AS.get(name, name): 0 for name in COUNTERS},
        "last_success": None,
        "last_error": None,
        "last_error_at": None,
        "oldest_pending_age": None,
    }
    if camera:
        figures.update(paused=None, paused_since=None)
    else:
        figures.update(paused=[], recovered=None)
    return figures


def _has_tables(db: sqlite3.Connection) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'items'")
    return row.fetchone() is not None


def figures(db: sqlite3.Connection) -> dict[str, Any]:
    """Counts and the last outcomes, global and per camera (`cameras`)."""
    data = empty_figures(camera=False)
    data["bytes"] = 0
    data["cameras"] = {}
    if not _has_tables(db):  # a file the bridge created but never wrote (read-only open)
        return data
    now = time.time()
    by_status = db.execute(
        "SELECT camera, status, COUNT(*), COALESCE(SUM(size), 0) FROM items GROUP BY camera, status"
    ).fetchall()
    counters = db.execute("SELECT name, camera, value FROM counters").fetchall()
    facts = db.execute("SELECT name, camera, value FROM facts").fetchall()
    oldest = db.execute(
        "SELECT camera, MIN(received_at) FROM items WHERE status = 'pending' GROUP BY camera"
    ).fetchall()
    cameras: dict[str, dict[str, Any]] = {}

    def scope(camera: str) -> dict[str, Any]:
        if camera == "":
            return data
        return cameras.setdefault(camera, empty_figures(camera=True))

    for camera, status, count, status_size in by_status:
        data["bytes"] += status_size
        if status in ("pending", "failed"):
            for figures_of in (data, scope(camera)):
                figures_of[status] += count
    for name, camera, value in counters:
        scope(camera)[_SHOWN_AS.get(name, name)] = value
    for name, camera, value in facts:
        if (name in CAMERA_FACTS and camera == "") or (name in FILE_FACTS and camera != ""):
            continue
        shown = float(value) if name in TIME_FACTS and value is not None else value
        scope(camera)[name] = shown
        if name == "paused" and value is not None:
            data["paused"].append(camera)
    for camera, received in oldest:
        age = round(now - received, 1)
        scope(camera)["oldest_pending_age"] = age
        current = data["oldest_pending_age"]
        data["oldest_pending_age"] = age if current is None else max(current, age)
    data["paused"].sort()
    data["cameras"] = dict(sorted(cameras.items()))
    return data


def item_rows(db: sqlite3.Connection, camera: str | None) -> list[dict[str, Any]]:
    """Every row (without the image), oldest first."""
    if not _has_tables(db):
        return []
    query = f"SELECT {', '.join(ITEM_KEYS)} FROM items"
    args: tuple[Any, ...] = ()
    if camera is not None:
        query += " WHERE camera = ?"
        args = (camera,)
    rows = db.execute(query + " ORDER BY seq", args).fetchall()
    return [dict(zip(ITEM_KEYS, row, strict=True)) for row in rows]
