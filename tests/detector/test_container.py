"""The container image's entry (detector/container.py, `smokewatch container`): the add-on's
options and the Supervisor's broker made into the detector's own YAML, checked by the
detector's own validation before anything in /data changes; and the Docker route's defaults."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from detector.config import load_config
from detector.container import (
    MQTT_PASSWORD_ENV,
    addon_config,
    container_config,
    prepare_addon,
    write_checked_config,
)
from detector.errors import ConfigError
from detector.healthcheck import judge, read_health_file
from detector.supervisor import Broker, SupervisorError, supervisor_broker
from tests.detector.fake_supervisor import FakeSupervisor, mosquitto_service
from tests.detector.mqtt_helpers import REPO, Probe
from tests.detector.test_service_connection import SecuredBroker

BROKER = Broker("core-mosquitto", 1883, "addons", "broker-secret-1")
TOKEN = "supervisor-token-for-tests"
ENTRY = (sys.executable, "-m", "detector", "container")


@pytest.fixture(autouse=True)
def _own_environment() -> Iterator[None]:
    """write_checked_config puts the secrets in os.environ: each test starts without them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def options(model: Path | str, /, **extra: Any) -> dict[str, Any]:
    """Two cameras (one on MQTT, one polled from a snapshot URL) and the tiny model."""
    return {
        "cameras": [
            {"id": "backyard", "name": "Backyard"},
            {
                "id": "gate",
                "snapshot_url": "http://192.168.1.20/snapshot.jpg",
                "snapshot_username": "admin",
                "snapshot_password": "snapshot-secret-2",
            },
        ],
        "model": str(model),
        "scene": "nearby",
        "threshold": 0.25,
        "interval": 30,
        "pyronear": {"enabled": False, "url": "https://api.pyronear.org"},
        "log_level": "info",
        **extra,
    }


def test_options_become_the_detectors_config(tmp_path: Path, tiny: Path) -> None:
    opts = options(tiny)
    opts["cameras"].append(
        {
            "id": "ridge",
            "frigate_camera": "ridge_cam",
            "frigate_events": True,
            "threshold": 0.3,
            "scene": "horizon",
            "pyronear_pose_id": 42,
            "pyronear_token": "pyronear-secret-3",
        }
    )
    opts["frigate_url"] = "http://ccab4aaf-frigate:5000"
    opts["pyronear"]["enabled"] = True
    addon = addon_config(opts, BROKER, tmp_path)
    config, _ = write_checked_config(addon, tmp_path / "smokewatch.yaml")

    assert config.mqtt.host == "core-mosquitto" and config.mqtt.port == 1883
    assert config.mqtt.username == "addons" and config.mqtt.password == "broker-secret-1"
    assert config.model.path == str(tiny)
    assert config.model.cache_dir == str(tmp_path / "models")
    assert config.bridge.enabled and config.bridge.outbox == str(tmp_path / "outbox.sqlite3")
    assert config.bridge.cameras["ridge"].pose_id == 42
    assert config.bridge.cameras["ridge"].token == "pyronear-secret-3"
    assert list(config.cameras) == ["backyard", "gate", "ridge"]
    backyard = config.cameras["backyard"]
    assert backyard.name == "Backyard" and backyard.source is None
    gate = config.cameras["gate"].source
    assert gate is not None and (gate.type, gate.auth, gate.username) == ("http", "basic", "admin")
    assert gate.password == "snapshot-secret-2"
    ridge = config.cameras["ridge"]
    assert ridge.source is not None and (ridge.source.type, ridge.source.camera) == (
        "frigate",
        "ridge_cam",
    )
    assert ridge.frigate_events is not None
    assert ridge.frigate_events.url == "http://ccab4aaf-frigate:5000"
    assert (ridge.threshold, ridge.scene, ridge.width_cap) == (0.3, "horizon", 0.4)
    assert config.cameras["gate"].threshold == 0.25 and config.cameras["gate"].interval == 30


def test_the_generated_file_holds_no_secret_and_only_its_owner_reads_it(
    tmp_path: Path, tiny: Path
) -> None:
    opts = options(tiny)
    opts["cameras"][0].update(pyronear_pose_id=7, pyronear_token="pyronear-secret-3")
    target = tmp_path / "smokewatch.yaml"
    write_checked_config(addon_config(opts, BROKER, tmp_path), target)
    text = target.read_text()
    for secret in ("broker-secret-1", "snapshot-secret-2", "pyronear-secret-3"):
        assert secret not in text
    assert f"password: !env '{MQTT_PASSWORD_ENV}'" in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["smokewatch.yaml"]  # no scratch file left
    # It is a config `smokewatch run` reads, with the secrets in the environment.
    assert load_config(target).mqtt.password == "broker-secret-1"


def test_default_model_is_downloaded_into_the_data_directory(tmp_path: Path) -> None:
    addon = addon_config(options("default"), BROKER, tmp_path)
    config, notes = write_checked_config(addon, tmp_path / "smokewatch.yaml")
    assert config.model.path == "pyronear/yolo11s_rapid-raccoon_v8.1.0"
    assert config.model.cache_dir == str(tmp_path / "models")
    assert any("not downloaded yet" in note and str(tmp_path / "models") in note for note in notes)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"frobnicate": 1},
            "frobnicate: unknown key; allowed keys: cameras, frigate_url, interval, log_level,"
            " model, nb_frames, pyronear, scene, threshold, topic_prefix",
        ),
        ({"cameras": [{"id": "a", "fps": 5}]}, "cameras[0].fps: unknown key"),
        ({"pyronear": {"enabled": True, "tokn": "x"}}, "pyronear.tokn: unknown key"),
        ({"cameras": [{"name": "no id"}]}, "cameras[0].id: required key missing"),
        (
            {"pyronear": {"enabled": True}},
            "pyronear.enabled: true is not allowed without a camera token",
        ),
        (
            {"cameras": [{"id": "a"}, {"id": "a"}]},
            "cameras[1].id: 'a' is not allowed: expected an id of its own (cameras[0] has it)",
        ),
        (
            {"cameras": [{"id": "a", "snapshot_url": "http://x/s.jpg", "frigate_camera": "a"}]},
            "cameras[0].frigate_camera: is not allowed with snapshot_url",
        ),
    ],
)
def test_options_the_addon_does_not_have_are_refused(
    tmp_path: Path, tiny: Path, change: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        addon_config(options(tiny, **change), BROKER, tmp_path)
    assert any(line.startswith(expected) for line in raised.value.errors), raised.value.errors


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"threshold": 1.5},
            "detection.threshold: 1.5 is not allowed: expected a number between 0.05 and 0.95"
            " (add-on option: threshold)",
        ),
        (
            {"cameras": [{"id": "a", "threshold": 0.01}]},
            "cameras.a.threshold: 0.01 is not allowed: expected a number between 0.05 and 0.95"
            " (add-on option: cameras[0].threshold)",
        ),
        (
            {"model": "/share/smokewatch/missing.onnx"},
            "model.path: '/share/smokewatch/missing.onnx' is not allowed: expected an existing"
            " .onnx file (add-on option: model)",
        ),
        (
            {"scene": "forest"},
            "detection.scene: 'forest' is not allowed: expected one of nearby, horizon"
            " (add-on option: scene)",
        ),
        (
            {"cameras": [{"id": "Back Yard"}]},
            "cameras.Back Yard: 'Back Yard' is not allowed",
        ),
        (
            {
                "pyronear": {"enabled": True},
                "cameras": [
                    {"id": "a", "pyronear_token": "t"},
                    {"id": "b", "pyronear_pose_id": 3},
                ],
            },
            "bridge.cameras.a.pose_id: required key missing"
            " (add-on option: cameras[0].pyronear_pose_id)",
        ),
        (
            {"cameras": [{"id": "a", "frigate_camera": "a"}]},
            "cameras.a.source.url: required key missing (add-on option: frigate_url)",
        ),
        ({"log_level": "loud"}, "logging.level: 'loud' is not allowed"),
    ],
)
def test_bad_values_get_the_detectors_message_naming_the_option(
    tmp_path: Path, tiny: Path, change: dict[str, Any], expected: str
) -> None:
    addon = addon_config(options(tiny, **change), BROKER, tmp_path)
    with pytest.raises(ConfigError) as raised:
        write_checked_config(addon, tmp_path / "smokewatch.yaml")
    assert any(line.startswith(expected) for line in raised.value.errors), raised.value.errors
    assert list(tmp_path.iterdir()) == []  # nothing written


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under a folder: its bytes and modification time."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    server = FakeSupervisor(
        TOKEN, mosquitto_service("core-mosquitto", 1883, "addons", "broker-secret-1")
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_failed_start_leaves_the_data_directory_as_it_was(
    tmp_path: Path, tiny: Path, supervisor: FakeSupervisor
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "options.json").write_text(json.dumps(options(tiny)))
    prepare_addon(data, TOKEN, supervisor.url)  # a first, good start
    (data / "outbox.sqlite3").write_bytes(b"queued detections")
    (data / "models").mkdir()
    (data / "models" / "best.onnx").write_bytes(b"a cached model")
    before = snapshot(data)
    for bad in ({"threshold": 2}, {"model": "/config/none.onnx"}, {"cameras": "backyard"}):
        (data / "options.json").write_text(json.dumps(options(tiny, **bad)))
        with pytest.raises(ConfigError):
            prepare_addon(data, TOKEN, supervisor.url)
        assert snapshot(data) == {**before, "options.json": snapshot(data)["options.json"]}


def test_the_supervisor_hands_out_the_broker(supervisor: FakeSupervisor) -> None:
    broker = supervisor_broker(TOKEN, supervisor.url)
    assert broker == Broker("core-mosquitto", 1883, "addons", "broker-secret-1", ssl=False)
    assert supervisor.requests == [("/services/mqtt", f"Bearer {TOKEN}")]
    assert "broker-secret-1" not in repr(broker)


def test_no_mqtt_service_or_a_wrong_token_is_said(supervisor: FakeSupervisor) -> None:
    with pytest.raises(SupervisorError, match=r"HTTP 401: Unauthorized"):
        supervisor_broker("not-the-token", supervisor.url)
    supervisor.mqtt = None
    with pytest.raises(SupervisorError, match=r"HTTP 400: Service not enabled.*Mosquitto"):
        supervisor_broker(TOKEN, supervisor.url)


def test_an_unreachable_supervisor_is_asked_again_then_given_up(tmp_path: Path) -> None:
    server = FakeSupervisor(TOKEN, None)
    url = server.url
    server.server.server_close()  # nothing listens there
    with pytest.raises(SupervisorError, match="cannot be reached"):
        supervisor_broker(TOKEN, url, attempts=2, retry_delay=0.01)


def test_docker_route_keeps_state_in_the_data_volume(tmp_path: Path, tiny: Path) -> None:
    path = tmp_path / "smokewatch.yaml"
    path.write_text(f"model: {{path: {tiny}}}\ncameras: {{a: {{}}}}\nbridge:\n")
    config = container_config(path, tmp_path / "data")
    assert config.model.cache_dir == str(tmp_path / "data" / "models")
    assert config.bridge.outbox == str(tmp_path / "data" / "outbox.sqlite3")
    path.write_text(
        f"model: {{path: {tiny}, cache_dir: /srv/models}}\ncameras: {{a: {{}}}}\n"
        "bridge: {outbox: /srv/outbox.sqlite3}\n"
    )
    config = container_config(path, tmp_path / "data")
    assert (config.model.cache_dir, config.bridge.outbox) == ("/srv/models", "/srv/outbox.sqlite3")
    with pytest.raises(ConfigError, match="no configuration: mount yours there"):
        container_config(tmp_path / "absent.yaml", tmp_path / "data")


def test_the_entry_point_stops_on_bad_options_with_the_detectors_message(
    tmp_path: Path, tiny: Path, supervisor: FakeSupervisor
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    opts = options(tiny, threshold=1.5)
    opts["cameras"][0]["pyronear_token"] = "pyronear-secret-3"
    (data / "options.json").write_text(json.dumps(opts))
    url = supervisor.url
    done = subprocess.run(
        [sys.executable, "-m", "detector", "container", "--data", str(data), "--supervisor", url],
        check=False,
        cwd=REPO,
        env={**os.environ, "SUPERVISOR_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert (
        "detection.threshold: 1.5 is not allowed: expected a number between 0.05 and 0.95"
        " (add-on option: threshold)" in done.stderr
    ), done.stderr
    output = done.stdout + done.stderr
    for secret in ("broker-secret-1", "snapshot-secret-2", "pyronear-secret-3", TOKEN):
        assert secret not in output
    assert sorted(p.name for p in data.iterdir()) == ["options.json"]


def test_generated_yaml_is_plain_yaml_with_env_tags(tmp_path: Path, tiny: Path) -> None:
    text = addon_config(options(tiny), BROKER, tmp_path).yaml()

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!env", lambda loader, node: f"<env {node.value}>")
    data = yaml.load(text, Loader=Loader)
    assert data["mqtt"]["password"] == f"<env {MQTT_PASSWORD_ENV}>"
    assert data["cameras"]["gate"]["source"]["password"] == "<env SMOKEWATCH_SNAPSHOT_PASSWORD_1>"


def test_the_addon_entry_serves_with_the_supervisors_broker_and_stops_on_sigterm(
    tmp_path: Path, tiny: Path
) -> None:
    """`smokewatch container` as the Supervisor starts it: the broker's credentials come from
    the Supervisor only; online, healthy; SIGTERM publishes offline and exits 0."""
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "addons", "broker-secret-1"], check=True
    )
    broker = SecuredBroker(f"allow_anonymous false\npassword_file {passwords}\n").start()
    server = FakeSupervisor(
        TOKEN, mosquitto_service("127.0.0.1", broker.port, "addons", "broker-secret-1")
    ).start()
    probe = Probe(broker.host, broker.probe_port, ("smokewatch/#",))
    data = tmp_path / "data"
    data.mkdir()
    (data / "options.json").write_text(json.dumps(options(tiny, interval=0.2)))
    health_file = tmp_path / "health.json"
    log = tmp_path / "container.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*ENTRY, "--data", str(data), "--supervisor", server.url, "--stats-interval", "0.5"],
            cwd=REPO,
            env={
                **os.environ,
                "SUPERVISOR_TOKEN": TOKEN,
                "SMOKEWATCH_HEALTH_FILE": str(health_file),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        probe.wait_for(lambda: probe.last("smokewatch/available") == b"online", 60, "online")
        probe.wait_for(health_file.exists, 10, "the health file")
        assert judge(read_health_file(health_file))[0]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        probe.wait_for(lambda: probe.last("smokewatch/available") == b"offline", 10, "offline")
    finally:
        if process.poll() is None:
            process.kill()
        probe.close()
        server.stop()
        broker.close()
    text = log.read_text()
    assert "broker 127.0.0.1:" in text and "from the Supervisor (user addons)" in text
    for secret in ("broker-secret-1", "snapshot-secret-2", TOKEN):
        assert secret not in text
    assert sorted(p.name for p in data.iterdir()) == ["options.json", "smokewatch.yaml"]


def test_the_compose_examples_config_is_valid(tmp_path: Path) -> None:
    """container/smokewatch.yaml, as the image reads it (state defaulted into /data)."""
    config = container_config(REPO / "container" / "smokewatch.yaml", tmp_path / "data")
    assert config.mqtt.host == "mosquitto"
    assert config.model.path == "pyronear/yolo11s_rapid-raccoon_v8.1.0"
    assert config.model.cache_dir == str(tmp_path / "data" / "models")
    driveway = config.cameras["driveway"]
    assert driveway.source is not None and driveway.source.type == "frigate"
    assert driveway.frigate_events is not None
