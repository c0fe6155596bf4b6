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

from detector.assembly import build_pipeline, load_model
from detector.config import load_config
from detector.errors import ModelError

_LOGGER = logging.getLogger(__name__)


def run_main(args: argparse.Namespace) -> int:
    """`smokewatch run`."""
    from detector.service.detector_service import DetectorService, publish_model_error

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
