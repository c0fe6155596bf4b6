"""`smokewatch run` and `smokewatch demo` (wired in detector/app.py, the composition root)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from detector.healthcheck import health_file_from_env


def register(subparsers: Any) -> None:
    """Add `run` and `demo` to the command line."""
    run = subparsers.add_parser(
        "run",
        help="run the detector service (MQTT in, Home Assistant entities out)",
        description="Subscribe to the cameras' snapshot topics, score frames, publish smoke "
        "states, scores, alert images and Home Assistant discovery. Stops cleanly on SIGTERM.",
    )
    run.add_argument("-c", "--config", type=Path, required=True, help="YAML configuration file")
    run.add_argument("--model", help="model file or repo id (overrides the config)")
    run.add_argument(
        "--stats-interval", type=float, default=10.0, help="seconds between stats (default 10)"
    )
    run.add_argument(
        "--health-file",
        type=Path,
        default=health_file_from_env(),
        help="also write the detector's health here at every stats interval, for "
        "`smokewatch health` (default: $SMOKEWATCH_HEALTH_FILE, else none)",
    )
    run.set_defaults(func=run_main)

    demo = subparsers.add_parser(
        "demo",
        help="a self-contained demo: embedded broker, a demo camera, the detector",
        description="Start an embedded MQTT broker on 127.0.0.1 (unless --broker is given), a "
        "demo camera that publishes a smoke sequence, and the detector; print the entity "
        "states Home Assistant would see as they change.",
    )
    demo.add_argument("--broker", metavar="HOST:PORT", help="use this broker instead")
    demo.add_argument(
        "--model", help="model file or repo id (default: Pyronear's, downloaded once)"
    )
    demo.add_argument(
        "--frames",
        type=Path,
        help="a folder of images or a video to publish (default: a generated smoke scene)",
    )
    demo.add_argument(
        "--interval", type=float, default=1.0, help="seconds between demo frames (default 1)"
    )
    demo.add_argument("--nb-frames", type=int, default=4, help="vote window (default 4)")
    demo.add_argument("--threshold", type=float, default=0.25, help="vote threshold")
    demo.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: end of frames)"
    )
    demo.set_defaults(func=demo_main)


def run_main(args: argparse.Namespace) -> int:
    """`smokewatch run`: the service's exit code (2 when the model cannot be loaded)."""
    from detector.app import run_main as run

    return run(args)


def say(line: str) -> None:
    """Print one line of the demo at once (its output is read live, often through a pipe)."""
    print(line, flush=True)


def demo_main(args: argparse.Namespace) -> int:
    """`smokewatch demo`: prints the entity states Home Assistant would see as they change."""
    from detector.app import demo_main as demo

    return demo(args, say)
