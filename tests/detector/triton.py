"""A real Triton Inference Server (PyPI's nvidia-pytriton) in its own venv, for tests.

pytriton's `tritonserver` runs its Python backend with the system's libpython, so its venv
is built by scripts/test.sh from Debian's /usr/bin/python3 (`.venv-triton`); tests skip with
the reason when it is absent, unless SMOKEWATCH_REQUIRE_ALL=1 (CI) makes that a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.detector.broker import free_port

REPO = Path(__file__).resolve().parents[2]
TRITON_PYTHON = Path(os.environ.get("SMOKEWATCH_TRITON_VENV", REPO / ".venv-triton")) / "bin/python"
SERVER_SCRIPT = Path(__file__).with_name("triton_server.py")
START_TIMEOUT = 120.0


def require_triton() -> Path:
    """The Triton venv's Python, or skip (fail under SMOKEWATCH_REQUIRE_ALL=1)."""
    if TRITON_PYTHON.exists():
        return TRITON_PYTHON
    reason = f"no Triton venv at {TRITON_PYTHON.parent.parent} (scripts/test.sh builds it)"
    if os.environ.get("SMOKEWATCH_REQUIRE_ALL") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class TritonServer:
    """tritonserver serving `models` ({name: onnx path}) on free HTTP and gRPC ports."""

    def __init__(self, models: dict[str, Path], log: Path) -> None:
        self.python = require_triton()
        self.models = models
        self.log_path = log
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        """host:port of the HTTP endpoint."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """host:port of the gRPC endpoint."""
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> TritonServer:
        """Start (or restart, on the same ports) and wait until every model is served."""
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.python),
                    str(SERVER_SCRIPT),
                    "--http-port",
                    str(self.http_port),
                    "--grpc-port",
                    str(self.grpc_port),
                    *(f"{name}={path}" for name, path in self.models.items()),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so stop() ends tritonserver and its stubs too
            )
        deadline = time.monotonic() + START_TIMEOUT
        while b"READY" not in self.log_path.read_bytes()[start:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Triton did not start:\n{tail}")
            time.sleep(0.2)
        return self

    def _group(self) -> list[int]:
        """The ids of the server's processes (its session: pytriton, tritonserver, stubs)."""
        assert self.process is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.process.pid:  # field 5 of stat: the process group
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        """Stop the server and every process it started, and remove their shared memory."""
        if self.process is None:
            return
        pids = self._group()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stubs left behind, if any
        # pytriton names its shared memory after the process that made it, and a stopped
        # server leaves one 4 MiB segment behind.
        for pid in pids:
            for segment in Path("/dev/shm").glob(f"pytrtion{pid}-*"):
                with contextlib.suppress(OSError):
                    segment.unlink()
        self.process = None
