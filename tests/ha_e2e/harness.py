"""A real Home Assistant process driven over its REST and websocket APIs, and the real detector.

Home Assistant runs from the command in SMOKEWATCH_E2E_HA_COMMAND (scripts/test-ha.sh points it
at a venv's Python inside the Python 3.14 chroot, see scripts/ha-chroot.sh); everything else
runs from the detector's venv.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[2]
MAIN_PYTHON = REPO / ".venv" / "bin" / "python"
HA_COMMAND_VARIABLE = "SMOKEWATCH_E2E_HA_COMMAND"

# The warning HA's loader logs for every custom integration (it names the integration).
CUSTOM_INTEGRATION_WARNING = "We found a custom integration smokewatch which has not been tested"

# The first boot of a fresh HA may install integration packages (about a minute).
BOOT_TIMEOUT = 240.0
# How Home Assistant's log says an integration was not set up.
SETUP_FAILURE_SIGNS = (
    "Setup failed for",
    "Error during setup of component",
    "Unable to install package",
    "Unable to prepare setup for platform",
    "No module named",
)


class HttpError(Exception):
    """A non-2xx answer of Home Assistant."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `check()` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what}: not reached after {timeout:.0f} s (last: {last!r})")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; return the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class HomeAssistant:
    """`python -m homeassistant` on a fresh config dir, HTTP on loopback."""

    def __init__(self, config_dir: Path, port: int, python: list[str]) -> None:
        """Write a minimal headless configuration with the custom integration installed.

        `python` is the command that runs HA's Python (it may be a chroot wrapper).
        """
        self.python = python
        self.config_dir = config_dir
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.token: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "configuration.yaml").write_text(
            textwrap.dedent(
                f"""\
                homeassistant:
                  name: SmokeWatch end-to-end
                  time_zone: UTC
                  unit_system: metric
                http:
                  server_host: 127.0.0.1
                  server_port: {port}
                api:
                config:
                onboarding:
                automation: !include automations.yaml
                logger:
                  default: warning
                  logs:
                    custom_components.smokewatch: debug
                """
            )
        )
        (config_dir / "automations.yaml").write_text("[]\n")
        shutil.copytree(
            REPO / "custom_components" / "smokewatch",
            config_dir / "custom_components" / "smokewatch",
            ignore=shutil.ignore_patterns("__pycache__"),
        )

    @property
    def log_path(self) -> Path:
        """Home Assistant's log file."""
        return self.config_dir / "home-assistant.log"

    def log(self) -> str:
        """Everything HA logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def problems_naming(self, word: str) -> list[str]:
        """Log lines at WARNING or above (and tracebacks) that name `word`.

        HA's loader warns about every custom integration: that one line is expected.
        """
        return [
            line
            for line in self.log().splitlines()
            if word in line
            and any(level in line for level in (" WARNING ", " ERROR ", " CRITICAL ", "Traceback"))
            and CUSTOM_INTEGRATION_WARNING not in line
        ]

    def setup_failures(self) -> list[str]:
        """Log lines of integrations Home Assistant could not set up (a missing package among
        them: HA runs with --skip-pip, so its venv must already hold every requirement)."""
        return [
            line
            for line in self.log().splitlines()
            if any(sign in line for sign in SETUP_FAILURE_SIGNS)
        ]

    def start(self) -> None:
        """Start HA and wait until its HTTP server answers.

        `--skip-pip`: Home Assistant installs nothing at boot. Its venv is built with every
        package this test needs (scripts/ha-envs.sh) and is checked unchanged before each
        run, so no result depends on what an earlier boot installed.
        """
        self.process = subprocess.Popen(
            [
                *self.python,
                "-m",
                "homeassistant",
                "--config",
                str(self.config_dir),
                "--log-file",
                str(self.log_path),
                "--skip-pip",
            ],
            cwd=self.config_dir,  # as a user runs it: custom_components/ of the config dir
            stdout=(self.config_dir / "stdout.log").open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

        def answering() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Home Assistant exited:\n{self.log()[-4000:]}")
            try:
                self.request("GET", "/api/onboarding", auth=False)
            except (OSError, HttpError):
                return False
            return True

        wait_until(answering, BOOT_TIMEOUT, "Home Assistant's HTTP server", interval=0.5)

    def stop(self) -> None:
        """Stop HA."""
        if self.process is not None:
            stop_process(self.process, timeout=60)

    # -- REST ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        auth: bool = True,
        form: dict[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """One HTTP request; JSON in and out (or the raw bytes and content type)."""
        headers: dict[str, str] = {}
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                content = answer.read()
                if raw:
                    return content, answer.headers.get("Content-Type", "")
                return json.loads(content) if content else None
        except urllib.error.HTTPError as err:
            raise HttpError(err.code, err.read().decode(errors="replace")) from None

    def onboard(self) -> None:
        """Create the owner over the onboarding API and get an access token."""
        client_id = self.base + "/"
        answer = self.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "Owner",
                "username": "owner",
                "password": "smokewatch-e2e",
                "language": "en",
            },
            auth=False,
        )
        token = self.request(
            "POST",
            "/auth/token",
            auth=False,
            form={
                "grant_type": "authorization_code",
                "code": answer["auth_code"],
                "client_id": client_id,
            },
        )
        self.token = token["access_token"]

    def boot(self) -> None:
        """Start, onboard, and wait until HA reports RUNNING: discovery flows start only then
        (on a first boot it may still be installing integration packages)."""
        self.start()
        self.onboard()
        wait_until(
            lambda: self.request("GET", "/api/config")["state"] == "RUNNING",
            BOOT_TIMEOUT,
            "Home Assistant started",
            interval=0.5,
        )

    def flow(self, handler: str, *steps: dict[str, Any]) -> dict[str, Any]:
        """Run a config flow: start it, submit each step's input, return the last result."""
        result: dict[str, Any] = self.request(
            "POST", "/api/config/config_entries/flow", {"handler": handler}
        )
        return self.continue_flow(result, *steps)

    def continue_flow(self, result: dict[str, Any], *steps: dict[str, Any]) -> dict[str, Any]:
        """Submit each step's input to a flow shown as `result`; return the last result."""
        for user_input in steps:
            if result.get("type") != "form":
                break
            result = self.request(
                "POST", f"/api/config/config_entries/flow/{result['flow_id']}", user_input
            )
        return result

    def mqtt_flow(self, host: str, port: int) -> dict[str, Any]:
        """Set up the MQTT integration through its config flow (broker step).

        The broker form of HA 2026.x has a required `other_settings` section: filled with
        the form's defaults and a plain TCP connection when the form has it.
        """
        result: dict[str, Any] = self.request(
            "POST", "/api/config/config_entries/flow", {"handler": "mqtt"}
        )
        if result.get("type") == "menu":  # some versions ask first how to connect
            result = self.request(
                "POST",
                f"/api/config/config_entries/flow/{result['flow_id']}",
                {"next_step_id": "broker"},
            )
        user_input: dict[str, Any] = {"broker": host, "port": port}
        for field in result.get("data_schema", []):
            if field.get("name") == "other_settings":
                # Plain TCP, no client certificate, no broker certificate check.
                user_input["other_settings"] = {
                    **{
                        item["name"]: item["default"]
                        for item in field.get("schema", [])
                        if "default" in item
                    },
                    "set_client_cert": False,
                    "set_ca_cert": "off",
                }
        return self.continue_flow(result, user_input)

    def ws(self, message: dict[str, Any]) -> Any:
        """One websocket command (authenticated, on its own connection); its result."""
        url = f"ws://127.0.0.1:{self.port}/api/websocket"
        with connect(url, open_timeout=10, max_size=None) as socket:
            json.loads(socket.recv(timeout=10))  # auth_required
            socket.send(json.dumps({"type": "auth", "access_token": self.token}))
            auth = json.loads(socket.recv(timeout=10))
            if auth.get("type") != "auth_ok":
                raise HttpError(401, str(auth))
            socket.send(json.dumps({"id": next(_WS_IDS), **message}))
            answer = json.loads(socket.recv(timeout=30))
        if not answer.get("success"):
            raise HttpError(400, json.dumps(answer))
        return answer["result"]

    def template(self, template: str) -> str:
        """Render a template in HA."""
        body, _ = self.request("POST", "/api/template", {"template": template}, raw=True)
        return str(body.decode())

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """The state object of an entity, or None when it does not exist."""
        try:
            return self.request("GET", f"/api/states/{entity_id}")
        except HttpError as err:
            if err.status == 404:
                return None
            raise

    def wait_state(self, entity_id: str, wanted: str, timeout: float) -> dict[str, Any]:
        """Wait until an entity has the wanted state."""

        def reached() -> dict[str, Any] | None:
            state = self.state(entity_id)
            return state if state is not None and state["state"] == wanted else None

        return wait_until(reached, timeout, f"{entity_id} == {wanted!r}", interval=0.25)

    def call(self, domain: str, service: str, data: dict[str, Any]) -> Any:
        """Call a service over REST."""
        return self.request("POST", f"/api/services/{domain}/{service}", data)


_WS_IDS = itertools.count(1)


def ha_python_command() -> list[str] | None:
    """The command that runs Home Assistant's Python, from the environment (None: not set)."""
    command = os.environ.get(HA_COMMAND_VARIABLE, "").strip()
    return shlex.split(command) if command else None


class Detector:
    """`smokewatch run` from the main venv, as a real process."""

    def __init__(self, config: Path, log: Path) -> None:
        """Start the detector."""
        self.log_path = log
        self.process = subprocess.Popen(
            [str(MAIN_PYTHON), "-m", "detector", "run", "-c", str(config)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def log(self) -> str:
        """Everything the detector logged so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM and wait: the detector publishes offline and exits."""
        return stop_process(self.process)


def make_model_and_frames(directory: Path) -> dict[str, Path]:
    """The tiny ONNX model and a smoke / clear frame, made by the main venv (it has onnx)."""
    script = textwrap.dedent(
        f"""\
        from pathlib import Path
        from tests.detector.tiny_model import make_tiny_model, smoke_jpeg
        out = Path({str(directory)!r})
        make_tiny_model(out / "tiny.onnx")
        (out / "smoke.jpg").write_bytes(smoke_jpeg(230))
        (out / "clear.jpg").write_bytes(smoke_jpeg(0))
        """
    )
    subprocess.run([str(MAIN_PYTHON), "-c", script], cwd=REPO, check=True, timeout=120)
    return {
        name: directory / f"{name}{suffix}"
        for name, suffix in (("tiny", ".onnx"), ("smoke", ".jpg"), ("clear", ".jpg"))
    }


class Probe:
    """An MQTT client of the test: publishes frames, records what the detector publishes."""

    def __init__(self, port: int, prefix: str) -> None:
        """Connect and subscribe to everything under the prefix."""
        import threading

        import paho.mqtt.client as mqtt

        self._lock = threading.Lock()
        self._messages: dict[str, list[bytes]] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sw-e2e-probe")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        with self._lock:
            self._messages.setdefault(msg.topic, []).append(bytes(msg.payload))

    def count(self, topic: str) -> int:
        """How many messages arrived on a topic."""
        with self._lock:
            return len(self._messages.get(topic, []))

    def all(self, topic: str) -> list[bytes]:
        """Every payload of a topic so far, oldest first."""
        with self._lock:
            return list(self._messages.get(topic, []))

    def last(self, topic: str) -> bytes | None:
        """The newest payload of a topic."""
        with self._lock:
            payloads = self._messages.get(topic)
            return payloads[-1] if payloads else None

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish and wait until the broker has it."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
