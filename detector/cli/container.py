"""`smokewatch container` (the container image's entry point) and `smokewatch health`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from detector.healthcheck import HEALTH_FILE_ENV, health_file_from_env


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


def register(subparsers: Any) -> None:
    """Add `container` and `health` to the command line."""
    container = subparsers.add_parser(
        "container",
        help="the container image's entry point: a Home Assistant add-on or a Docker container",
        description="Run the detector service as the container image does. Under the Home "
        "Assistant Supervisor (SUPERVISOR_TOKEN set), the add-on's options (DATA/options.json) "
        "and the Supervisor's MQTT broker become DATA/smokewatch.yaml, checked before it "
        "replaces the previous one; otherwise the configuration file CONFIG is used. The model "
        "cache and the bridge's outbox live in DATA. Stops cleanly on SIGTERM, also as PID 1.",
    )
    container.add_argument(
        "--data",
        type=Path,
        default=_env_path("SMOKEWATCH_DATA"),
        help="the data directory (default: $SMOKEWATCH_DATA, else /data)",
    )
    container.add_argument(
        "-c",
        "--config",
        type=Path,
        default=_env_path("SMOKEWATCH_CONFIG"),
        help="Docker/Podman: the configuration file (default: $SMOKEWATCH_CONFIG, else "
        "/config/smokewatch.yaml)",
    )
    container.add_argument(
        "--supervisor",
        default=None,
        help="add-on: the Supervisor's API (default http://supervisor)",
    )
    container.add_argument(
        "--stats-interval", type=float, default=10.0, help="seconds between stats (default 10)"
    )
    container.set_defaults(func=container_main)

    health = subparsers.add_parser(
        "health",
        help="exit 0 when the running detector is healthy (a container health check)",
        description="Read the health report `smokewatch run` writes (--health-file) and exit 0 "
        "when the detector is running, online on its broker and without faults, else 1; "
        "print why.",
    )
    health.add_argument(
        "--file",
        type=Path,
        default=health_file_from_env(),
        help=f"the health report (default: ${HEALTH_FILE_ENV})",
    )
    health.set_defaults(func=health_main)


def _stop_during_start(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before the service has its own handler (reading options, loading or
    downloading the model): stop at once, cleanly. As PID 1 in a container the default action
    would be to ignore it, until the engine kills the process."""
    raise SystemExit(0)


def container_main(args: argparse.Namespace) -> int:
    """`smokewatch container`: the add-on or the Docker entry, then the service."""
    signal.signal(signal.SIGTERM, _stop_during_start)
    from detector import container, supervisor
    from detector.app import run_service
    from detector.config import load_config

    data: Path = args.data or container.DATA_DIR
    token = os.environ.get(supervisor.SUPERVISOR_TOKEN_ENV, "").strip()
    data.mkdir(parents=True, exist_ok=True)
    if token:
        url = args.supervisor or supervisor.SUPERVISOR_URL
        config = load_config(container.prepare_addon(data, token, url))
    else:
        config = container.container_config(args.config or container.DOCKER_CONFIG, data)
    return run_service(
        config, stats_interval=args.stats_interval, health_file=health_file_from_env()
    )


def health_main(args: argparse.Namespace) -> int:
    """`smokewatch health`: 0 healthy, 1 not (the reason printed either way)."""
    from detector.healthcheck import HealthFileError, judge, read_health_file

    if args.file is None:
        print(f"unhealthy: no health file: set {HEALTH_FILE_ENV} or --file", file=sys.stderr)
        return 1
    try:
        healthy, why = judge(read_health_file(args.file))
    except HealthFileError as err:
        print(f"unhealthy: {err}")
        return 1
    print(f"{'healthy' if healthy else 'unhealthy'}: {why}")
    return 0 if healthy else 1
