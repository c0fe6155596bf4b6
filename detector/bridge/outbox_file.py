"""The outbox's SQLite file: opened, watched while the bridge runs, started afresh when broken.

The bridge must resume by itself, without a restart, whatever happens to the file:
- removed or replaced while the bridge runs (someone "fixed" a bad outbox by moving it away):
  the connection would go on writing into the old, unlinked file, whose detections nobody would
  ever see again. Before each use the path is compared with the file that is open; when they
  differ the path is opened (created when absent) and the pending detections of the old file
  are carried over to it.
- corrupt (SQLite says "malformed", at start or later, or "not a database" once it was open
  as the outbox; at start such a file may be another file of the user's that bridge.outbox
  names by mistake, and is refused, untouched): the file is moved
  aside as `<name>.corrupt-<UTC time>`, kept for whoever wants to look at it, and a fresh
  outbox takes its place with every row that could still be read; the interrupted operation
  is then done again on the fresh file.
Each of these is logged as an error saying what was carried over, and remembered for the
stats (`recovered`).

`bridge status` opens the file read-only: it changes nothing, so it works on a read-only file
or disk, and on a file another process holds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from detector.errors import SmokeWatchError

_LOGGER = logging.getLogger(__name__)

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
ITEM_COLUMNS = (
    "seq, id, camera, recorded_at, bboxes, size, status, attempts, uncertain, resent, prepared,"
    " http_status, last_error, api_id, received_at, done_at, jpeg"
)
# SQLite's primary result codes for a file that is not (or no longer) a database.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

T = TypeVar("T")


class OutboxError(SmokeWatchError):
    """The outbox file cannot be used."""


def is_corrupt(err: BaseException, *, at_start: bool = False) -> bool:
    """True for SQLite's "malformed" and "not a database" errors.

    At start only "malformed" counts: a file that is not a database at all may be another file
    of the user's that bridge.outbox names by mistake, and must not be moved. Once it was
    open as the outbox, whatever became of it is the outbox's.
    """
    code = getattr(err, "sqlite_errorcode", None)
    if not isinstance(err, sqlite3.DatabaseError) or code is None:
        return False
    if code & 0xFF == _SQLITE_CORRUPT:
        return True
    # A damaged header: "not a database", or a schema format number it cannot have.
    damaged = code & 0xFF == _SQLITE_NOTADB or "unsupported file format" in str(err)
    return damaged and not at_start


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise OutboxError(
            f"{path} is a directory: bridge.outbox names the outbox file itself, e.g."
            f" {path / 'outbox.sqlite3'}"
        )
    if path.exists() and not path.is_file():
        raise OutboxError(f"{path} is not a regular file: bridge.outbox names a file")


class OutboxFile:
    """One SQLite connection to the outbox, used under `lock` by every thread."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self.lock = threading.Lock()
        # What the last recovery did (None when the file never had to be started afresh).
        self.recovered: str | None = None
        _check_path(path)
        if read_only:
            self.db = _open_read_only(path)
            self._identity = _identity(path)
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutboxError(f"cannot create the folder of the outbox {path}: {err}") from err
        db = _connect(path)
        try:
            _prepare(db, path)
        except sqlite3.DatabaseError as err:
            if not is_corrupt(err, at_start=True):
                db.close()
                raise OutboxError(
                    f"cannot open the outbox {path}: {err} (if bridge.outbox names the right"
                    " file, move it away: the bridge then starts a fresh outbox)"
                ) from err
            self.db = db
            self._start_afresh(err)
        except OutboxError:
            db.close()
            raise
        else:
            self.db = db
        self._identity = _identity(path)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.db.close()

    def run(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """`work(db)` under the lock (in one transaction when `write`), on the file that is at
        the path now; done again on a fresh file when this one turns out to be corrupt."""
        with self.lock:
            if not self.read_only:
                self._follow_path()
            try:
                return self._once(work, write)
            except sqlite3.DatabaseError as err:
                if self.read_only or not is_corrupt(err):
                    raise
                self._start_afresh(err)
            return self._once(work, write)

    def _once(self, work: Callable[[sqlite3.Connection], T], write: bool) -> T:
        if not write:
            return work(self.db)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            result = work(self.db)
        except BaseException:
            # The rollback of a broken file can fail too: the first error is the one to tell.
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return result

    # -- the path changed under us, or the file broke --------------------------------------

    def _follow_path(self) -> None:
        current = _identity(self.path)
        if current == self._identity:
            return
        if current is None:
            carried, complete = self._rebuild(everything=True)
            how = "removed"
        else:
            # Checked without its write-ahead log (`immutable`): the log at that name is still
            # the open file's, and would be read as the new file's.
            try:
                _open_read_only(self.path, immutable=True).close()
            except (OutboxError, sqlite3.Error) as err:
                # Keep using the open file (nothing is lost); the next use looks again.
                raise OutboxError(
                    f"the outbox {self.path} was replaced by a file that cannot be used ({err}):"
                    " move it away, and the bridge makes a new outbox there"
                ) from err
            carried, complete = self._rebuild(everything=False, merge=True)
            how = "replaced"
        self._recovered(
            f"the outbox file was {how} while the bridge ran ({_now()}): {carried} pending"
            " detection(s) carried over" + ("" if complete else ", the rest could not be read")
        )

    def _start_afresh(self, err: BaseException) -> None:
        """Move the corrupt file aside and put a fresh outbox, with what can be read of the
        old one, at the path."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        carried, complete = self._rebuild(everything=True, aside=aside)
        self._recovered(
            f"the outbox was corrupt ({err}) and was moved to {aside.name} ({_now()}):"
            f" {carried} pending detection(s) carried over to a fresh outbox"
            + ("" if complete else ", the rest could not be read")
        )

    def _rebuild(
        self, *, everything: bool, aside: Path | None = None, merge: bool = False
    ) -> tuple[int, bool]:
        """Copy what can be read of the open file into a scratch file, close it (only then:
        its write-ahead log and shared memory are files named after the path), move it
        `aside` if given, and open the path: the scratch file itself, or, with `merge`, the
        file already there with the scratch file's rows added. On a failure before the open
        file is closed, it stays in use; this is tried again at the next use."""
        scratch = self.path.with_name(f"{self.path.name}.recovering")
        _remove(scratch)
        fresh = _connect(scratch)
        try:
            _prepare(fresh, scratch)
            carried, complete = _carry(self.db, fresh, everything=everything)
        finally:
            fresh.close()  # its write-ahead log goes into the file, which can now be moved
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        # The write-ahead log and shared memory at the path's names are the closed file's (a
        # file that was removed or replaced keeps them: SQLite does not fold them back): they
        # must go, or the file opened next at the path would take that log for its own.
        journals = _with_journals(self.path)
        for source, target in zip(journals, _with_journals(aside or self.path), strict=True):
            with contextlib.suppress(FileNotFoundError):
                if aside is not None:
                    os.replace(source, target)
                elif source != self.path:
                    source.unlink()
        if not merge:
            os.replace(scratch, self.path)
        self.db = _connect(self.path)
        _prepare(self.db, self.path)
        if merge:
            rows = sqlite3.connect(str(scratch))
            try:
                _carry(rows, self.db, everything=False)
            finally:
                rows.close()
            _remove(scratch)
        self._identity = _identity(self.path)
        return carried, complete

    def _recovered(self, what: str) -> None:
        """Log a recovery and keep it in the file for the stats and `bridge status`."""
        self.recovered = what
        _LOGGER.error("Outbox %s: %s", self.path, what)
        with contextlib.suppress(sqlite3.Error):  # the log line says it already
            self.db.execute(
                "INSERT INTO facts (name, camera, value) VALUES ('recovered', '', ?)"
                " ON CONFLICT(name, camera) DO UPDATE SET value = excluded.value",
                (what,),
            )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _remove(path: Path) -> None:
    for file in _with_journals(path):
        with contextlib.suppress(FileNotFoundError):
            file.unlink()


def _with_journals(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _text(raw: bytes) -> str:
    """Text of the file as it is: a damaged byte must not make a whole figure unreadable."""
    return raw.decode("utf-8", "replace")


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    except sqlite3.Error as err:
        raise OutboxError(f"cannot open the outbox {path}: {err}") from err
    db.text_factory = _text
    return db


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    """Settings and schema of a writable outbox (sqlite3.Error when the file is not one)."""
    db.execute("PRAGMA busy_timeout=10000")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise OutboxError(
            f"{path} has outbox format {version}, this version reads {SCHEMA_VERSION}: move it"
            " away or use another bridge.outbox path"
        )
    db.executescript(SCHEMA)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _open_read_only(path: Path, *, immutable: bool = False) -> sqlite3.Connection:
    """A connection that never writes: `mode=ro`, or `immutable` where even the shared
    memory file of the write-ahead log cannot be created (a read-only folder or disk)."""
    uri = f"file:{quote(str(path))}?mode=ro"
    last: sqlite3.Error | None = None
    for suffix in ("&immutable=1",) if immutable else ("", "&immutable=1"):
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(uri + suffix, uri=True, check_same_thread=False)
            db.text_factory = _text
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as err:
            if db is not None:
                db.close()
            last = err
            continue
        if version not in (0, SCHEMA_VERSION):
            db.close()
            raise OutboxError(
                f"{path} has outbox format {version}, this version reads {SCHEMA_VERSION}"
            )
        return db
    raise OutboxError(f"cannot open the outbox {path} (read-only): {last}")


def _carry(
    old: sqlite3.Connection, new: sqlite3.Connection, *, everything: bool
) -> tuple[int, bool]:
    """Copy the detections of `old` into `new` (and, with `everything`, the other rows:
    counters, facts, duty times), as far as `old` can be read: (pending ones copied, whether
    everything could be read). A failure to write `new` raises, with nothing written."""
    unreadable: list[sqlite3.Error] = []
    carried = 0
    marks = ", ".join("?" * len(ITEM_COLUMNS.split(",")))
    new.execute("BEGIN IMMEDIATE")  # one commit for all: each would cost a sync of the disk
    try:
        for row in _item_rows(old, unreadable):
            cursor = new.execute(
                f"INSERT OR IGNORE INTO items ({ITEM_COLUMNS}) VALUES ({marks})", row
            )
            if cursor.rowcount == 0:  # the seq is taken in a replacement file: a new one
                new.execute(
                    f"INSERT OR IGNORE INTO items ({ITEM_COLUMNS.removeprefix('seq, ')})"
                    f" VALUES ({marks.removeprefix('?, ')})",
                    row[1:],
                )
            carried += row[6] == "pending"
        tables = (("counters", "name, camera, value"), ("facts", "name, camera, value"))
        for table, columns in (*tables, ("duties", "camera, name, value")) if everything else ():
            for row in _readable(old, f"SELECT {columns} FROM {table}", unreadable):
                new.execute(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES (?, ?, ?)", row)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            new.execute("ROLLBACK")
        raise
    new.execute("COMMIT")
    return carried, not unreadable


def _item_rows(db: sqlite3.Connection, problems: list[sqlite3.Error]) -> Iterator[tuple[Any, ...]]:
    """The rows of a damaged file, as many as can be read: pending and failed detections
    (with their images), delivered ones (their records: a broker sending one again is then
    still known). The table itself, not its index (one more thing that can be damaged), from
    the oldest on, then from the newest back to where the first pass stopped (the newest
    rows, in the write-ahead log, are often readable when older pages are not)."""
    query = f"SELECT {ITEM_COLUMNS} FROM items NOT INDEXED ORDER BY seq"
    seen: set[int] = set()
    for row in _readable(db, query, problems):
        seen.add(row[0])
        yield row
    if not problems:
        return
    for row in _readable(db, query + " DESC", problems):
        if row[0] in seen:
            return
        yield row


def _readable(
    db: sqlite3.Connection, query: str, problems: list[sqlite3.Error]
) -> Iterator[tuple[Any, ...]]:
    """The rows of `query` up to the first that cannot be read (its error goes to
    `problems`): a damaged file gives what it still can."""
    try:
        yield from db.execute(query)
    except sqlite3.Error as err:
        problems.append(err)
