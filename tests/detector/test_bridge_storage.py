"""The outbox's storage going wrong: bad paths, a read-only disk, a file corrupted or removed
under the running bridge. The user gets an error that says what to do (never a traceback),
`bridge status` keeps working, and a running bridge recovers by itself, without a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.bridge.bridge_service import BridgeService
from detector.bridge.outbox import Outbox, OutboxError
from tests.detector.broker import free_port
from tests.detector.mqtt_helpers import REPO
from tests.detector.test_bridge_service import Env, bridge_env, hosted_bridge

BOX = [[0.1, 0.1, 0.2, 0.2, 0.5]]


def smokewatch(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "detector", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def write_config(folder: Path, outbox: str) -> Path:
    config = folder / "config.yaml"
    config.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {free_port()}}}\n"
        "cameras: {a: {}}\n"
        f"bridge: {{outbox: {json.dumps(outbox)}, cameras: {{a: {{token: t, pose_id: 1}}}}}}\n"
    )
    return config


@pytest.mark.parametrize("command", [("check-config",), ("bridge", "status"), ("bridge",)])
def test_an_outbox_path_that_is_a_folder_is_an_error_that_says_so(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    folder = tmp_path / "outbox"
    folder.mkdir()
    config = write_config(tmp_path, str(folder))
    args = (
        (*command, str(config)) if command == ("check-config",) else (*command, "-c", str(config))
    )
    result = smokewatch(*args)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert "is a directory" in output and f"{folder}/outbox.sqlite3" in output


def test_check_config_refuses_an_outbox_that_cannot_be_created(tmp_path: Path) -> None:
    # root may "write" /proc by access(), yet nothing can be created there.
    config = write_config(tmp_path, "/proc/smokewatch/outbox.sqlite3")
    result = smokewatch("check-config", str(config))
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "bridge.outbox" in output, output
    assert "cannot be created" in output and "Traceback" not in output


@pytest.fixture
def filled_outbox(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    outbox = Outbox(folder / "outbox.sqlite3")
    outbox.add("a1", "a", 1.0, BOX, b"jpeg")
    outbox.add("a2", "a", 2.0, BOX, b"jpeg")
    outbox.close()
    yield folder / "outbox.sqlite3"
    folder.chmod(0o755)


def test_bridge_status_reads_an_outbox_on_a_read_only_disk(
    tmp_path: Path, filled_outbox: Path
) -> None:
    config = write_config(tmp_path, str(filled_outbox))
    folder = filled_outbox.parent
    if os.geteuid() == 0:  # permissions do not stop root: a read-only mount of the folder
        unshare = shutil.which("unshare")
        assert unshare is not None, "unshare (util-linux) is needed to test this as root"
        mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} {folder}"
        prefix: tuple[str, ...] = (unshare, "-m", "sh", "-c", f'{mount} && exec "$@"', "sh")
    else:
        filled_outbox.chmod(0o444)
        folder.chmod(0o555)
        prefix = ()
    result = smokewatch("bridge", "status", "-c", str(config), "--json", prefix=prefix)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["pending"] == 2


def test_a_corrupt_outbox_at_start_is_moved_aside_but_another_file_is_never_touched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path)
    for index in range(300):  # enough pages that damage to one is met
        outbox.add(f"a{index}", "a", float(index), BOX, os.urandom(2000))
    outbox.close()
    with path.open("r+b") as file:  # damage a page in the middle, keep the header
        file.seek(path.stat().st_size // 2)
        file.write(b"\xff" * 8192)
    outbox = Outbox(path)
    stats = outbox.stats()
    assert (
        stats["recovered"] is not None and "moved to outbox.sqlite3.corrupt-" in stats["recovered"]
    )
    assert 0 < stats["pending"] <= 300  # what could be read
    assert len(list(tmp_path.glob("outbox.sqlite3.corrupt-*"))) == 1
    outbox.close()
    # A file that is no database at all (bridge.outbox naming the config by mistake).
    config = tmp_path / "config.yaml"
    config.write_text("cameras: {a: {}}\n" * 100)
    with pytest.raises(OutboxError, match="not a database"):
        Outbox(config)
    assert config.read_text() == "cameras: {a: {}}\n" * 100
    assert not list(tmp_path.glob("config.yaml.corrupt-*"))


env = pytest.fixture(name="env")(bridge_env)
bridge = pytest.fixture(name="bridge")(hosted_bridge)


def test_an_outbox_corrupted_under_the_running_bridge_is_started_afresh(
    env: Env, bridge: BridgeService, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = bridge.outbox.path
    env.api.mode = "down"
    for _ in range(3):
        env.publish("a")
    env.stats(lambda s: s["pending"] == 3)
    # Everything into the main file (as SQLite does by itself past 1000 pages), then damage.
    other = sqlite3.connect(outbox)
    other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    other.close()
    outbox.write_bytes(os.urandom(outbox.stat().st_size))
    env.api.mode = "ok"
    late = env.publish("a")  # stored in the fresh outbox, delivered
    stats = env.stats(lambda s: s["recovered"] is not None and late in env.received(1))
    assert "could not be read" in stats["recovered"]  # the damaged rows: said, not hidden
    assert len(list(outbox.parent.glob("outbox.sqlite3.corrupt-*"))) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("was corrupt" in error and "moved to" in error for error in errors), errors
    assert bridge.intake.storage_errors == 0 or stats["healthy"] is True


def test_an_outbox_removed_under_the_running_bridge_keeps_its_pending_detections(
    env: Env, bridge: BridgeService
) -> None:
    env.api.mode = "down"
    for _ in range(3):
        env.publish("a")
    env.stats(lambda s: s["pending"] == 3)
    path = bridge.outbox.path
    path.unlink()  # "fixed" by hand while it runs; the file's detections must not vanish
    env.publish("a")
    stats = env.stats(lambda s: s["pending"] == 4 and s["recovered"] is not None)
    assert "was removed while the bridge ran" in stats["recovered"]
    assert "3 pending detection(s) carried over" in stats["recovered"]
    assert env.status()["pending"] == 4  # in the file at the configured path
    env.api.mode = "ok"
    env.stats(lambda s: s["delivered"] == 4)
    assert env.received(1) == env.sent["a"]
