"""A local copy of the detector's health, for container health checks (`smokewatch health`).

The detector tells Home Assistant how it is over MQTT: `<prefix>/available` (online while it
is connected, its last will says offline) and `<prefix>/stats` (`healthy`, `faults`). A
container's health check should say the same without a broker round trip, so `smokewatch run`
can also write those facts to a small JSON file at every stats interval (`--health-file`, or
the SMOKEWATCH_HEALTH_FILE environment variable the container image sets), and
`smokewatch health` judges it: healthy when the writer is alive, the report is recent, the
detector is online and no part is at fault.

The file holds no secret: the broker's address, never its credentials.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HEALTH_FILE_ENV = "SMOKEWATCH_HEALTH_FILE"
# A report older than this many stats intervals (and at least STALE_MIN seconds) means the
# control loop that writes it is stuck.
STALE_INTERVALS = 3
STALE_MIN = 30.0


class HealthFileError(Exception):
    """The health file is missing or unreadable."""


@dataclass(frozen=True)
class HealthReport:
    """What the detector says about itself, as on its MQTT topics."""

    written_at: float
    pid: int
    available: str  # "online" / "offline", as <prefix>/available
    broker: str  # host:port
    healthy: bool
    faults: dict[str, str] = field(default_factory=dict)
    stats_interval: float = 10.0


def health_file_from_env() -> Path | None:
    """The health file named by SMOKEWATCH_HEALTH_FILE, or None."""
    value = os.environ.get(HEALTH_FILE_ENV, "").strip()
    return Path(value) if value else None


def write_health_file(path: Path, report: HealthReport) -> None:
    """Replace the file with `report` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(asdict(report), file)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def read_health_file(path: Path) -> HealthReport:
    """The report in the file; HealthFileError when there is none or it cannot be read."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HealthFileError(
            f"no health report at {path}: the detector has not started (yet)"
        ) from None
    except (OSError, ValueError) as err:
        raise HealthFileError(f"the health report {path} cannot be read: {err}") from None
    try:
        return HealthReport(
            written_at=float(data["written_at"]),
            pid=int(data["pid"]),
            available=str(data["available"]),
            broker=str(data["broker"]),
            healthy=bool(data["healthy"]),
            faults={str(k): str(v) for k, v in dict(data.get("faults") or {}).items()},
            stats_interval=float(data.get("stats_interval", 10.0)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise HealthFileError(f"the health report {path} is not one: {err!r}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def judge(report: HealthReport, now: float | None = None) -> tuple[bool, str]:
    """(healthy, why) for a report: the writer alive, the report recent, online, no fault."""
    now = time.time() if now is None else now
    age = now - report.written_at
    stale_after = max(STALE_MIN, STALE_INTERVALS * report.stats_interval)
    if not _alive(report.pid):
        return False, f"the detector (pid {report.pid}) is not running"
    if age > stale_after:
        return False, (
            f"no health report for {age:.0f} s (expected every {report.stats_interval:.0f} s):"
            " the detector is stuck"
        )
    if report.available != "online":
        return False, f"{report.available}: not connected to the MQTT broker {report.broker}"
    if not report.healthy:
        faults = "; ".join(f"{part}: {reason}" for part, reason in report.faults.items())
        return False, f"online, faults: {faults}"
    return True, f"online, no faults (broker {report.broker}, report {age:.0f} s old)"


class HealthFile:
    """Where `smokewatch run --health-file` writes its report, at every stats interval."""

    def __init__(self, path: Path, *, broker: str, stats_interval: float) -> None:
        self.path = path
        self.broker = broker
        self.stats_interval = stats_interval

    def write(self, *, online: bool, healthy: bool, faults: dict[str, str]) -> None:
        """Replace the report (OSError when the file cannot be written)."""
        write_health_file(
            self.path,
            HealthReport(
                written_at=time.time(),
                pid=os.getpid(),
                available="online" if online else "offline",
                broker=self.broker,
                healthy=healthy,
                faults=faults,
                stats_interval=self.stats_interval,
            ),
        )
