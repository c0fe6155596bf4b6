"""Fuzzing of the bridge's untrusted edges (beside test_untrusted.py, which drives the detector's):

- `bridge.url` with every shape of userinfo, port, query and host: refused, without repeating
  a password, or accepted as a plain base URL the client can use;
- the model download sent through generated redirects, by a real local mirror: the file comes
  only from a place the config allows, a refused host never gets a request;
- the outbox under storage faults (writes refused as on a full disk, the file removed,
  replaced, corrupted; restarts and `bridge status` reads in between): the project's errors
  only, it works again once the fault is gone without being reopened, and no detection it
  took vanishes without being counted or said.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from yarl import URL

from detector.bridge.api import PyronearClient
from detector.bridge.outbox import Outbox, OutboxError
from detector.config import validate
from detector.errors import ConfigError, ModelError
from detector.model_fetch import resolve_model
from tests.detector.test_model_fetch import REPO_ID, Server, leftovers, tarball
from tests.detector.tiny_model import make_tiny_model

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- bridge.url ------------------------------------------------------------------------------

SECRET_MARK = "S3cr"
url_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF), max_size=8
)
url_parts = st.fixed_dictionaries(
    {
        "scheme": st.sampled_from(["http", "https", "HTTPS", "ftp", "", "http:"]),
        "user": st.none() | url_text,
        "password": st.none() | url_text.map(lambda text: SECRET_MARK + text),
        "host": st.sampled_from(["api.example", "127.0.0.1", "[::1]", "h_x", ""]) | url_text,
        "port": st.none() | st.integers(-5, 70_000).map(str) | url_text,
        "path": st.sampled_from(["", "/", "/api", "/a/b/"]) | url_text,
        "tail": st.sampled_from(["", "?", "?q=1", "#f", "@x", "/@y"]),
    }
)


def build_url(parts: dict[str, Any]) -> str:
    userinfo = ""
    if parts["user"] is not None or parts["password"] is not None:
        userinfo = (parts["user"] or "") + (
            "" if parts["password"] is None else ":" + parts["password"]
        )
        userinfo += "@"
    port = "" if parts["port"] is None else ":" + parts["port"]
    return f"{parts['scheme']}://{userinfo}{parts['host']}{port}{parts['path']}{parts['tail']}"


@FUZZ
@given(url_parts)
def test_fuzz_bridge_url(parts: dict[str, Any]) -> None:
    url = build_url(parts)
    try:
        config = validate({"cameras": {"a": {}}, "bridge": {"url": url}})
    except ConfigError as err:
        if parts["password"] is not None:
            assert parts["password"] not in str(err)
        return
    accepted = config.bridge.url
    split = urlsplit(accepted)
    assert "@" not in accepted and split.username is None and split.password is None
    assert split.scheme.lower() in ("http", "https") and split.hostname
    assert "?" not in accepted and "#" not in accepted
    assert not any(char.isspace() or not char.isprintable() for char in accepted)
    assert split.port is None or 0 <= split.port <= 65535
    base = URL(PyronearClient(accepted, 1.0).base)  # what aiohttp is given
    assert base.user is None and base.password is None and base.host


# -- model download redirects ----------------------------------------------------------------


@dataclass
class Mirrors:
    """A mirror that redirects, a loopback file server (allowed) and one on another host
    (plain http elsewhere: never allowed), with the model they serve."""

    mirror: Server
    allowed: Server
    refused: Server
    model: bytes


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrors]:
    model = make_tiny_model(tmp_path_factory.mktemp("model") / "best.onnx").read_bytes()
    archive = tarball({"best.onnx": model})
    started = Mirrors(
        Server(b"", path=None),
        Server(archive, path=None),
        Server(archive, host="127.0.0.2", path=None),
        model,
    )
    yield started
    for server in (started.mirror, started.allowed, started.refused):
        server.close()


locations = st.one_of(
    st.tuples(
        st.sampled_from(["allowed", "refused"]),
        st.sampled_from(["http", "HTTP", "Http", "https"]),
        st.sampled_from(["", "user:pw@", "x@"]),
        st.sampled_from(["/f.tar.gz", "/", "", "/../x", "/%2e%2e/"]),
    ),
    st.sampled_from(["/relative", "relative", "//127.0.0.2/x", "file:///etc/passwd", "ftp://x"]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30),
)


@settings(max_examples=60, deadline=None)
@given(locations)
def test_fuzz_model_redirects(mirrors: Mirrors, location: Any) -> None:
    if isinstance(location, tuple):
        target, scheme, userinfo, path = location
        netloc = urlsplit(getattr(mirrors, target).url).netloc
        location = f"{scheme}://{userinfo}{netloc}{path}"
    mirrors.mirror.location = location
    mirrors.refused.requests = mirrors.allowed.requests = 0
    cache = Path(tempfile.mkdtemp(prefix="smokewatch-fuzz-"))
    try:
        try:
            path = resolve_model(REPO_ID, cache, base_url=mirrors.mirror.url, progress=False)
        except ModelError:
            assert not leftovers(cache)
        else:
            assert path.read_bytes() == mirrors.model and mirrors.allowed.requests >= 1
        assert mirrors.refused.requests == 0, location
    finally:
        shutil.rmtree(cache)


# -- the outbox under storage faults ---------------------------------------------------------

BOX = [[0.1, 0.1, 0.2, 0.2, 0.5]]
STORAGE_ERRORS = (sqlite3.Error, OutboxError, OSError)


class OutboxUnderFaults(RuleBasedStateMachine):
    """One outbox file, the operations of intake and delivery, and faults in between."""

    def __init__(self) -> None:
        super().__init__()
        # In memory where the system has it: the outbox syncs the disk at every commit, and
        # the faults, not the disk's speed, are what is tested here.
        memory = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.folder = Path(tempfile.mkdtemp(prefix="smokewatch-outbox-fuzz-", dir=memory))
        self.path = self.folder / "outbox.sqlite3"
        self.outbox = Outbox(self.path)
        self.count = 0
        self.taken: set[str] = set()  # every id add() said it stored
        self.evicted: set[str] = set()
        self.delivered: set[str] = set()  # their rows may go silently (bounds): only records
        self.damaged = False  # a corruption was injected: rows may be unreadable, said so
        self.refusing = False

    def teardown(self) -> None:
        with contextlib.suppress(*STORAGE_ERRORS):
            self.outbox.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _guarded(self, work: Any) -> Any:
        """Run an operation: only storage errors may come out, and only while a fault is on."""
        try:
            return work()
        except STORAGE_ERRORS:
            assert self.refusing, "a storage error with no fault on"
            return None

    # -- operations ------------------------------------------------------------------------

    @rule(camera=st.sampled_from(["a", "b"]), size=st.integers(1, 3000))
    def add(self, camera: str, size: int) -> None:
        self.count += 1
        item_id = f"{camera}{self.count}"
        added = self._guarded(
            lambda: self.outbox.add(item_id, camera, float(self.count), BOX, os.urandom(size))
        )
        if added:
            self.taken.add(item_id)

    @rule(max_items=st.integers(3, 30))
    def bound(self, max_items: int) -> None:
        evicted = self._guarded(lambda: self.outbox.enforce_limits(max_items, 10**9))
        self.evicted.update(item_id for item_id, _ in evicted or [])

    @rule(
        camera=st.sampled_from(["a", "b"]),
        outcome=st.sampled_from(["delivered", "failed", "answered", "unanswered", "cut"]),
    )
    def deliver(self, camera: str, outcome: str) -> None:
        item = self._guarded(lambda: self.outbox.next_pending(camera))
        if item is None:
            return

        def attempt() -> None:
            self.outbox.attempt(item.seq)
            if outcome == "delivered":
                self.outbox.delivered(item.seq, "1", 201)
                self.delivered.add(item.id)
            elif outcome == "failed":
                self.outbox.failed(item.seq, 422, "HTTP 422")
            elif outcome in ("answered", "unanswered"):
                self.outbox.retry_later(item.seq, "HTTP 503", answered=outcome == "answered")

        self._guarded(attempt)

    @rule()
    def retry_failed(self) -> None:
        self._guarded(self.outbox.requeue_failed)

    # -- faults ----------------------------------------------------------------------------

    @precondition(lambda self: not self.refusing)
    @rule()
    def refuse_writes(self) -> None:
        # What a full disk does: every write raises sqlite3.OperationalError.
        with self.outbox._file.lock:
            self.outbox._file.db.execute("PRAGMA query_only=1")
        self.refusing = True

    @precondition(lambda self: self.refusing)
    @rule()
    def accept_writes(self) -> None:
        with self.outbox._file.lock:
            self.outbox._file.db.execute("PRAGMA query_only=0")
        self.refusing = False

    @precondition(lambda self: not self.refusing)
    @rule()
    def remove_file(self) -> None:
        self.path.unlink()

    @precondition(lambda self: not self.refusing)
    @rule()
    def replace_with_another_outbox(self) -> None:
        other = Outbox(self.folder / "other.sqlite3")
        other.close()
        os.replace(self.folder / "other.sqlite3", self.path)

    @precondition(lambda self: not self.refusing)
    @rule(offset=st.floats(0.0, 1.0))
    def corrupt(self, offset: float) -> None:
        checkpoint = sqlite3.connect(self.path)
        checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        checkpoint.close()
        size = self.path.stat().st_size
        with self.path.open("r+b") as file:
            file.seek(int(offset * max(0, size - 4096)))
            file.write(b"\xa5" * 4096)
        self.damaged = True

    @precondition(lambda self: not self.refusing)
    @rule()
    def restart(self) -> None:
        self.outbox.close()
        self.outbox = Outbox(self.path)

    # -- what must hold --------------------------------------------------------------------

    @invariant()
    def works_again_once_the_fault_is_gone(self) -> None:
        if self.refusing:
            return
        stats = self.outbox.stats()  # also notices a removed, replaced or corrupt file
        present = {row["id"] for row in self.outbox.items()}
        recovered = stats["recovered"] or ""
        if self.damaged and "could not be read" in recovered:
            # Unreadable rows are said, not hidden; what is left is readable from here on.
            self.taken &= present | self.evicted
            self.damaged = False
        missing = self.taken - present - self.evicted - self.delivered
        assert not missing, (missing, recovered)
        status = Outbox(self.path, read_only=True)  # `bridge status`, while it runs
        try:
            assert status.stats()["pending"] == stats["pending"]
        finally:
            status.close()


OutboxUnderFaults.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
test_fuzz_outbox_under_storage_faults = OutboxUnderFaults.TestCase
