"""The composition root of the detector process: `smokewatch run` and `smokewatch demo`.

(Their arguments are defined in detector/cli/run.py, which calls these functions.)

The service (detector/service/) and the bridge (detector/bridge/) are libraries that never import
each other; this module is the one place that puts them in one process (the in-process bridge of
`smokewatch run`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from detector.assembly import build_pipeline, load_model
from detector.config import Config, load_config
from detector.errors import ModelError

_LOGGER = logging.getLogger(__name__)


def run_main(args: argparse.Namespace) -> int:
    """`smokewatch run`."""
    return run_service(
        load_config(args.config),
        model_override=args.model,
        stats_interval=args.stats_interval,
        health_file=args.health_file,
    )


def run_service(
    config: Config,
    *,
    model_override: str | None = None,
    stats_interval: float = 10.0,
    health_file: Path | None = None,
) -> int:
    """Load the model and serve `config` until SIGTERM/SIGINT; the exit code (2 when the
    model cannot be loaded). `health_file` also gets the detector's health for
    `smokewatch health` (a report left by an earlier process is removed first)."""
    from detector.service.detector_service import DetectorService
    from detector.service.startup import publish_model_error

    logging.getLogger().setLevel(config.log_level)
    if health_file is not None:
        health_file.unlink(missing_ok=True)
    try:
        model = load_model(config.model, override=model_override)
    except ModelError as err:
        _LOGGER.error("%s", err)
        publish_model_error(config, str(err))
        return 2
    service = DetectorService(
        config,
        build_pipeline(config, model),
        stats_interval=stats_interval,
        health_file=health_file,
    )
    if not config.bridge.enabled:
        return service.run()
    from detector.bridge.hosted import HostedBridge

    # The bridge in the same process: its own MQTT session, outbox and threads; detections
    # reach it over the broker, as a standalone bridge's do, so the detector never waits on
    # the bridge's disk. A bridge that cannot start is a fault, never a stop.
    bridge = HostedBridge(config, service.health, service.stop_event)
    bridge.start()
    try:
        return service.run()
    finally:
        bridge.stop()


def demo_main(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    """`smokewatch demo`: `say` shows each line (an entity's new state, the demo's progress)."""
    from detector.demo import run_demo

    return run_demo(args, say)
