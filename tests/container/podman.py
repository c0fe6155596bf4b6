"""Podman for the container tests: the image store and settings scripts/container-image.sh
made (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), the images it built, and small helpers.

The tests skip, saying why, when the images are not there (scripts/test.sh builds them and
sets the variables; CI makes a skip a failure).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

IMAGE_VARIABLE = "SMOKEWATCH_CONTAINER_IMAGE"
MOSQUITTO_VARIABLE = "SMOKEWATCH_CONTAINER_MOSQUITTO"


def image() -> str:
    """The SmokeWatch image under test, or skip."""
    name = os.environ.get(IMAGE_VARIABLE, "").strip()
    if not name:
        pytest.skip(
            f"{IMAGE_VARIABLE} is not set: scripts/test.sh builds the image "
            "(scripts/container-image.sh) and sets it"
        )
    for variable in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"):
        if not Path(os.environ.get(variable, "/nonexistent")).is_file():
            pytest.skip(f"{variable} does not name a file (scripts/container-image.sh env)")
    return name


def mosquitto_image() -> str:
    """Debian's Mosquitto as an image (the compose test's broker), or skip."""
    image()
    name = os.environ.get(MOSQUITTO_VARIABLE, "").strip()
    if not name:
        pytest.skip(f"{MOSQUITTO_VARIABLE} is not set (scripts/container-image.sh env)")
    return name


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run podman; its output as text."""
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def unique(prefix: str) -> str:
    """A container or project name no other run on this machine uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def inspect(container: str) -> dict[str, Any]:
    """`podman inspect` of a container."""
    return json.loads(podman("inspect", container).stdout)[0]  # type: ignore[no-any-return]


def logs(container: str) -> str:
    """Everything the container wrote (stdout and stderr)."""
    done = podman("logs", container, check=False)
    return done.stdout + done.stderr


def healthcheck(container: str) -> tuple[int, str]:
    """Run the image's HEALTHCHECK once (podman has no systemd timer here): its exit code and
    what the check printed (kept in the container's health log)."""
    done = podman("healthcheck", "run", container, check=False)
    health = inspect(container)["State"].get("Health") or {}
    runs = health.get("Log") or [{}]
    return done.returncode, str(runs[-1].get("Output", "")).strip()
