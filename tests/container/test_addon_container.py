"""The add-on image, built by buildah from addon/Dockerfile, run by podman as the Supervisor runs
it: /data bind-mounted, SUPERVISOR_TOKEN set, the name `supervisor` pointing at a stand-in for
the Supervisor's API (tests/detector/fake_supervisor.py: the only fake), a real Mosquitto that
wants the credentials the Supervisor hands out, the development data's D-Fire model under
/share, the Pyronear bridge on, and a real Home Assistant 2026.11 reading the entities.
"""

from __future__ import annotations

import io
import json
import random
import socket
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from detector.bridge.outbox import Outbox
from detector.demo import synthetic_scene
from tests.container.podman import (
    healthcheck,
    image,
    inspect,
    logs,
    podman,
    unique,
)
from tests.detector.broker import free_port
from tests.detector.conftest import shared_file
from tests.detector.fake_pyronear import FakePyronear, make_token
from tests.detector.fake_supervisor import FakeSupervisor, mosquitto_service
from tests.detector.mqtt_helpers import Probe, score_frame
from tests.detector.test_service_connection import SecuredBroker
from tests.detector.tiny_model import make_tiny_model
from tests.ha_e2e.harness import HA_COMMAND_VARIABLE, HomeAssistant, ha_python_command, wait_until

P = "smokewatch"
TOKEN = "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d"  # the shape of a Supervisor token
PASSWORD = "mosquitto-addon-password-7"  # what the Mosquitto add-on registers for add-ons
PYRONEAR_TOKEN = make_token(1)  # camera 1 of the fake Pyronear API, pose 11
MODEL_IN_CONTAINER = "/share/smokewatch/dfire.onnx"
# On an idle 2-core machine the goal is 10 s (README); here the whole suite runs beside.
ONLINE_WITHIN = 60.0


@dataclass
class Rig:
    """What the add-on container talks to."""

    image: str
    work: Path
    broker: SecuredBroker
    supervisor: FakeSupervisor
    probe: Probe
    model: Path
    containers: list[str]

    def run(self, data: Path, *extra: str) -> str:
        """Start the add-on's container as the Supervisor would (detached); its name."""
        name = unique("sw-addon")
        self.containers.append(name)
        podman(
            "run", "-d", "--name", name, "--network=host",
            f"--add-host=supervisor:{self.supervisor.host}",
            "-e", f"SUPERVISOR_TOKEN={TOKEN}",
            "-v", f"{data}:/data",
            "-v", f"{self.model}:{MODEL_IN_CONTAINER}:ro",
            "--health-interval=disable",  # no systemd timers here: `podman healthcheck run`
            *extra, self.image,
        )  # fmt: skip
        return name


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    name = image()
    model = shared_file("models/dfire-yolo11n-int8-640.onnx")
    work = tmp_path_factory.mktemp("addon")
    passwords = work / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "addons", PASSWORD], check=True)
    broker = SecuredBroker(f"allow_anonymous false\npassword_file {passwords}\n").start()
    # The Supervisor's API is http://supervisor (port 80): on a loopback address of its own,
    # so that nothing else on this machine is in the way.
    host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    supervisor = FakeSupervisor(
        TOKEN, mosquitto_service("127.0.0.1", broker.port, "addons", PASSWORD), host=host, port=80
    ).start()
    probe = Probe(broker.host, broker.probe_port, (f"{P}/#", "homeassistant/#"))
    rig = Rig(name, work, broker, supervisor, probe, model, [])
    try:
        yield rig
    finally:
        for container in rig.containers:
            podman("rm", "--force", "--time", "5", container, check=False)
        probe.close()
        supervisor.stop()
        broker.close()


def options(api_url: str, **changes: Any) -> dict[str, Any]:
    """Two cameras on MQTT (one on a topic of its own), the mounted model, the bridge on."""
    return {
        "cameras": [
            {
                "id": "backyard",
                "name": "Backyard",
                "pyronear_pose_id": 11,
                "pyronear_token": PYRONEAR_TOKEN,
            },
            {
                "id": "ridge",
                "name": "Ridge tower",
                "topic": "cameras/ridge/jpeg",
                "scene": "horizon",
            },
        ],
        "model": MODEL_IN_CONTAINER,
        "scene": "nearby",
        "threshold": 0.25,
        "interval": 0.3,
        "nb_frames": 4,
        "pyronear": {"enabled": True, "url": api_url},
        "log_level": "info",
        **changes,
    }


def wait_online(probe: Probe, since: int, timeout: float = ONLINE_WITHIN) -> None:
    """Until `available` says online after the `since`-th message on it."""
    topic = f"{P}/available"
    probe.wait_for(lambda: probe.payloads(topic)[since:].count(b"online") > 0, timeout, "online")


def test_the_addon_container_end_to_end(rig: Rig, tmp_path: Path) -> None:
    python = ha_python_command()
    if python is None:
        pytest.skip(f"{HA_COMMAND_VARIABLE} is not set (scripts/test.sh sets it)")
    probe = rig.probe
    data = tmp_path / "data"
    data.mkdir()
    api_port = free_port()
    api = FakePyronear(port=api_port)  # not started yet: the Pyronear API is down
    (data / "options.json").write_text(json.dumps(options(api.url)))

    # Started as the Supervisor starts it: online within the bound, discovery published.
    since = len(probe.payloads(f"{P}/available"))
    started = time.monotonic()
    name = rig.run(data)
    try:
        wait_online(probe, since)
    except AssertionError:
        pytest.fail(f"the add-on did not come online:\n{logs(name)[-4000:]}")
    assert time.monotonic() - started < ONLINE_WITHIN

    def discovered(camera: str) -> bool:
        return any(
            topic.startswith("homeassistant/") and f"smokewatch_{camera}" in topic
            for topic, *_ in list(probe.messages)
        )

    for camera in ("backyard", "ridge"):
        probe.wait_for(lambda camera=camera: discovered(camera), 20, f"discovery of {camera}")
    # PID 1 is the detector itself (init: false), which handles SIGTERM.
    assert "smokewatch" in podman("exec", name, "cat", "/proc/1/cmdline").stdout
    # The config it generated: the options and the Supervisor's broker, no secret, 0600.
    generated = data / "smokewatch.yaml"
    text = generated.read_text()
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600
    assert f"port: {rig.broker.port}" in text and "username: addons" in text
    for secret in (PASSWORD, PYRONEAR_TOKEN, TOKEN):
        assert secret not in text and secret not in logs(name)
    assert "Downloading model" not in logs(name)  # a model file: no network needed

    # A real Home Assistant shows both cameras' entities.
    ha = HomeAssistant(tmp_path / "ha", free_port(), python)
    try:
        ha.boot()
        assert ha.mqtt_flow(rig.broker.host, rig.broker.probe_port)["type"] == "create_entry"
        for entity in ("binary_sensor.backyard_smoke", "binary_sensor.ridge_tower_smoke"):
            wait_until(lambda entity=entity: ha.state(entity), 60, f"{entity} in HA")

        # A smoke sequence on the backyard camera: frames scored, the alert raised, in HA too.
        scored = [
            score_frame(probe, "backyard", frame, new_capture=False)
            for frame in synthetic_scene(2, 12, 0)
        ]
        assert scored[0]["score"] is not None
        probe.wait_for(lambda: probe.last(f"{P}/backyard/smoke") == b"ON", 10, "smoke ON")
        assert (
            ha.wait_state("binary_sensor.backyard_smoke", "on", 30)["attributes"]["device_class"]
            == "smoke"
        )
    finally:
        ha.stop()

    # The alert's detections wait in the outbox while the Pyronear API is down; the detector
    # stays healthy (delivery retries are not a fault).
    def bridge_pending() -> int:
        raw = probe.last(f"{P}/bridge/stats")
        return int(json.loads(raw)["pending"]) if raw else 0

    probe.wait_for(lambda: bridge_pending() > 0, 30, "detections in the outbox")
    code, said = healthcheck(name)
    assert code == 0 and "healthy: online, no faults" in said, said
    # A setting changed in Home Assistant's way (MQTT command) before the restart.
    probe.publish(f"{P}/backyard/threshold/set", "0.4")
    probe.wait_for(lambda: probe.last(f"{P}/backyard/threshold/state") == b"0.4", 10, "0.4")

    # podman stop: SIGTERM to PID 1; offline published, frame in flight finished, exit 0.
    offline_before = probe.payloads(f"{P}/available").count(b"offline")
    podman("stop", "--time", "30", name)
    assert inspect(name)["State"]["ExitCode"] == 0, logs(name)[-3000:]
    assert probe.payloads(f"{P}/available").count(b"offline") == offline_before + 1
    assert "Stopping: finishing the frame in flight" in logs(name)
    with_outbox = Outbox(data / "outbox.sqlite3")
    pending = with_outbox.stats()["pending"]
    with_outbox.close()
    assert pending > 0

    # Restarted (the same container, the same /data): the outbox is delivered once the API is
    # back, the setting is kept, the model is not fetched.
    api.start()
    try:
        since = len(probe.payloads(f"{P}/available"))
        states = len(probe.payloads(f"{P}/backyard/threshold/state"))
        restarted = time.monotonic()
        podman("start", name)
        wait_online(probe, since)
        assert time.monotonic() - restarted < ONLINE_WITHIN
        probe.wait_for(lambda: len(api.detections) >= pending, 60, f"{pending} delivered")
        # The threshold state the restarted detector published is the one set before.
        after = probe.wait_for(
            lambda: probe.payloads(f"{P}/backyard/threshold/state")[states:], 10, "state"
        )
        assert after[-1] == b"0.4"
        assert "Downloading model" not in logs(name)
    finally:
        podman("stop", "--time", "30", name, check=False)
        api.stop()
    # /data holds the state and nothing else (no scratch file of the config's writing).
    names = {p.name for p in data.iterdir()}
    assert {"options.json", "smokewatch.yaml", "outbox.sqlite3"} <= names
    assert all(n in {"options.json", "smokewatch.yaml"} or n.startswith("outbox.") for n in names)


def test_bad_options_stop_the_addon_with_the_detectors_message(rig: Rig, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    bad = options("https://api.pyronear.org", threshold=1.5)
    (data / "options.json").write_text(json.dumps(bad))
    name = unique("sw-addon-bad")
    rig.containers.append(name)
    done = podman(
        "run", "--name", name, "--network=host",
        f"--add-host=supervisor:{rig.supervisor.host}",
        "-e", f"SUPERVISOR_TOKEN={TOKEN}", "-v", f"{data}:/data",
        "--health-interval=disable", rig.image,
        check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert (
        "smokewatch: error: detection.threshold: 1.5 is not allowed: expected a number between"
        " 0.05 and 0.95 (add-on option: threshold)" in output
    )
    for secret in (PASSWORD, PYRONEAR_TOKEN, TOKEN):
        assert secret not in output
    assert [p.name for p in data.iterdir()] == ["options.json"]


class Mirror:
    """A loopback mirror of the model repository (SMOKEWATCH_MODEL_BASE_URL), counting the
    downloads."""

    def __init__(self, root: Path) -> None:
        self.downloads = 0
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                mirror.downloads += 1
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_default_model_is_downloaded_once_into_data(rig: Rig, tmp_path: Path) -> None:
    repo = "pyronear/yolo11s_rapid-raccoon_v8.1.0"
    archive = tmp_path / "mirror" / repo / "resolve" / "main" / "onnx_cpu.tar.gz"
    archive.parent.mkdir(parents=True)
    model = make_tiny_model(tmp_path / "best.onnx").read_bytes()
    with tarfile.open(archive, "w:gz") as tar:
        member = tarfile.TarInfo("onnx_cpu/best.onnx")
        member.size = len(model)
        tar.addfile(member, io.BytesIO(model))
    mirror = Mirror(tmp_path / "mirror")
    data = tmp_path / "data"
    data.mkdir()
    (data / "options.json").write_text(
        json.dumps(
            options("https://api.pyronear.org", model="default", pyronear={"enabled": False})
        )
    )
    try:
        since = len(rig.probe.payloads(f"{P}/available"))
        name = rig.run(data, "-e", f"SMOKEWATCH_MODEL_BASE_URL={mirror.url}")
        wait_online(rig.probe, since)
        cached = data / "models" / "pyronear__yolo11s_rapid-raccoon_v8.1.0" / "best.onnx"
        assert cached.read_bytes() == model and mirror.downloads == 1
        said = logs(name)
        assert (
            f"Downloading model {repo} from {mirror.url}/{repo}/resolve/main/onnx_cpu.tar.gz"
            in said
        )
        assert "(once; cached in /data/models/" in said
        podman("stop", "--time", "30", name)
        since = len(rig.probe.payloads(f"{P}/available"))
        podman("start", name)
        wait_online(rig.probe, since)
        assert mirror.downloads == 1 and logs(name).count("Downloading model") == 1
    finally:
        mirror.stop()


def test_sigterm_while_the_model_downloads_stops_at_once(rig: Rig, tmp_path: Path) -> None:
    """PID 1 ignores a signal it has no handler for: SIGTERM during the first start (the
    default model downloading) would wait for podman's SIGKILL. The entry point handles it
    from its first line: the container stops at once, exit 0, nothing half-written kept."""
    silent = socket.socket()  # a mirror that accepts the download and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    data = tmp_path / "data"
    data.mkdir()
    (data / "options.json").write_text(
        json.dumps(
            options("https://api.pyronear.org", model="default", pyronear={"enabled": False})
        )
    )
    try:
        mirror = f"http://127.0.0.1:{silent.getsockname()[1]}"
        name = rig.run(data, "-e", f"SMOKEWATCH_MODEL_BASE_URL={mirror}")
        wait_until(lambda: "Downloading model" in logs(name), 60, "the download")
        stopping = time.monotonic()
        podman("stop", "--time", "20", name)
        assert time.monotonic() - stopping < 10
        assert inspect(name)["State"]["ExitCode"] == 0, logs(name)[-2000:]
        assert list((data / "models").rglob("*.onnx")) == []
    finally:
        silent.close()
