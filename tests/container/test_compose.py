"""container/compose.yaml run by podman-compose: SmokeWatch and Mosquitto on the compose
network, SmokeWatch reaching the broker by its service name, state in its volume.

What cannot run here, and is changed in a copy of the file (the rest runs as written): no
container registry is reachable, so the images the file names cannot be pulled. Mosquitto
runs from Debian's package laid out as the eclipse-mosquitto image
(scripts/container-image.sh); Frigate is left out; SmokeWatch's image is the one the test
command built from the same Dockerfile (its `build:`), and its model is the development
data's D-Fire model mounted as a file instead of the download (no internet either).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from detector.demo import synthetic_scene
from tests.container.podman import (
    healthcheck,
    image,
    inspect,
    logs,
    mosquitto_image,
    podman,
    unique,
)
from tests.detector.broker import free_port
from tests.detector.conftest import shared_file
from tests.detector.mqtt_helpers import REPO, Probe, score_frame

EXAMPLE = REPO / "container"
P = "smokewatch"


def compose(project: str, file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["podman-compose", "-p", project, "-f", str(file), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def runnable_copy(folder: Path, port: int, model: Path) -> Path:
    """The example in `folder`, with the changes this machine needs (module docstring)."""
    spec: dict[str, Any] = yaml.safe_load((EXAMPLE / "compose.yaml").read_text())
    services = spec["services"]
    assert set(services) == {"mosquitto", "smokewatch", "frigate"}
    assert services["smokewatch"]["build"] == "../addon"  # the Dockerfile the tests build
    del services["frigate"]
    del spec["volumes"]["frigate-media"]
    services["mosquitto"]["image"] = mosquitto_image()
    services["mosquitto"]["ports"] = [f"127.0.0.1:{port}:1883"]  # a port of its own
    smokewatch = services["smokewatch"]
    del smokewatch["build"]
    smokewatch["image"] = image()
    smokewatch["volumes"].append(f"{model}:/models/dfire.onnx:ro")
    config: dict[str, Any] = yaml.safe_load((EXAMPLE / "smokewatch.yaml").read_text())
    assert config["mqtt"]["host"] == "mosquitto"
    config["model"]["path"] = "/models/dfire.onnx"
    del config["cameras"]["driveway"]  # its Frigate is not here
    config["detection"] = {"interval": 0.3, "nb_frames": 4}
    (folder / "smokewatch.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(EXAMPLE / "mosquitto.conf", folder / "mosquitto.conf")
    file = folder / "compose.yaml"
    file.write_text(yaml.safe_dump(spec, sort_keys=False))
    return file


def test_the_compose_example_runs(tmp_path: Path) -> None:
    image()
    model = shared_file("models/dfire-yolo11n-int8-640.onnx")
    port = free_port()
    file = runnable_copy(tmp_path, port, model)
    project = unique("swcompose")
    container = f"{project}_smokewatch_1"
    compose(project, file, "up", "-d")
    probe: Probe | None = None
    try:
        probe = Probe("127.0.0.1", port, (f"{P}/#",))
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 90, "online")
        for frame in synthetic_scene(2, 12, 0):
            score_frame(probe, "backyard", frame, new_capture=False)
        probe.wait_for(lambda: probe.last(f"{P}/backyard/smoke") == b"ON", 10, "smoke ON")
        code, said = healthcheck(container)
        assert code == 0 and "healthy: online" in said, said
        # The model came from the mounted file: nothing downloaded.
        assert "Downloading model" not in logs(container)
        compose(project, file, "stop", "smokewatch")
        assert inspect(container)["State"]["ExitCode"] == 0, logs(container)[-3000:]
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"offline", 10, "offline")
    except AssertionError:
        print(logs(container)[-4000:])
        raise
    finally:
        if probe is not None:
            probe.close()
        subprocess.run(
            ["podman-compose", "-p", project, "-f", str(file), "down", "-v"],
            capture_output=True,
            timeout=300,
            check=False,
        )
        # podman-compose 1.0.3 leaves the project's network behind.
        podman("network", "rm", "--force", f"{project}_default", check=False)
