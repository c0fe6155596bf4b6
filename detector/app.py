"""The composition root of the detector process: `smokewatch run` and `smokewatch demo`.

The service (detector/service/) and the bridge (detector/bridge/) are libraries that never import
each other; this module is the one place that puts them in one process (the in-process bridge of
`smokewatch run`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from detector.assembly import build_pipeline, load_model
from detector.config import load_config
from detector.errors import ModelError

_LOGGER = logging.getLogger(__name__)


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
    """`smokewatch run`."""
    from detector.service.service import DetectorService, publish_model_error

    config = load_config(args.config)
    logging.getLogger().setLevel(config.log_level)
    try:
        model = load_model(config.model, override=args.model)
    except ModelError as err:
        _LOGGER.error("%s", err)
        publish_model_error(config, str(err))
        return 2
    service = DetectorService(
        config, build_pipeline(config, model), stats_interval=args.stats_interval
    )
    if not config.bridge.enabled:
        return service.run()
    from detector.bridge.hosted import HostedBridge

    # The bridge in the same process: its own MQTT client, outbox and threads, detections
    # handed over directly; a bridge that cannot start is a fault, never a stop.
    bridge = HostedBridge(config, service.health, service.stop_event)
    service.on_detection = bridge.accept
    bridge.start()
    try:
        return service.run()
    finally:
        bridge.stop()


def demo_main(args: argparse.Namespace) -> int:
    """`smokewatch demo`."""
    from detector.service.demo import run_demo

    return run_demo(args)
