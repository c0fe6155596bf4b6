"""A real MQTT broker for tests: Mosquitto when installed, else the pure-Python amqtt broker."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def mosquitto_path() -> str | None:
    """Path of the mosquitto binary, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None


class Broker:
    """A broker process on 127.0.0.1 that a test can stop and restart on the same port."""

    def __init__(self, kind: str | None = None, port: int | None = None) -> None:
        self.kind = kind or ("mosquitto" if mosquitto_path() else "amqtt")
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._dir = Path(tempfile.mkdtemp(prefix="smokewatch-broker-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        if self.kind == "mosquitto":
            conf = self._dir / "mosquitto.conf"
            conf.write_text(
                textwrap.dedent(
                    f"""\
                    listener {self.port} 127.0.0.1
                    allow_anonymous true
                    persistence true
                    persistence_location {self._dir}/
                    autosave_interval 1
                    user root
                    message_size_limit 0
                    max_queued_messages 10000
                    log_type error
                    log_type warning
                    """
                )
            )
            binary = mosquitto_path()
            assert binary is not None
            return [binary, "-c", str(conf)]
        conf = self._dir / "amqtt.yaml"
        conf.write_text(
            textwrap.dedent(
                f"""\
                listeners:
                  default:
                    type: tcp
                    bind: 127.0.0.1:{self.port}
                plugins:
                  amqtt.plugins.authentication.AnonymousAuthPlugin:
                    allow_anonymous: true
                """
            )
        )
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def start(self) -> Broker:
        """Start the broker and wait until it accepts connections."""
        log = open(self._dir / "broker.log", "ab")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen(self._command(), stdout=log, stderr=log)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        """Stop the broker (persistence is saved for a restart)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the broker's files."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def url(self) -> str:
        """host:port form accepted by the command line."""
        return f"{self.host}:{self.port}"
