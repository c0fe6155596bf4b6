"""`smokewatch bridge`, `smokewatch bridge status` and `smokewatch bridge retry`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from detector.errors import ConfigError

_LOGGER = logging.getLogger(__name__)

FIGURES = (
    "pending",
    "delivered",
    "failed",
    "failed_total",
    "evicted",
    "duplicates",
    "resent",
    "rejected",
    "skipped",
)


def register(subparsers: Any) -> None:
    """Add `bridge` to the command line."""
    bridge = subparsers.add_parser(
        "bridge",
        help="forward confirmed detections to the Pyronear alert API",
        description="Run the bridge (default), or print the outbox's state with `status` "
        "(works while the bridge is stopped).",
    )
    bridge.add_argument(
        "action",
        nargs="?",
        choices=["run", "status", "retry"],
        default="run",
        help="run the bridge (default), print the outbox's figures (status), or put the"
        " detections the API refused for good back in line (retry)",
    )
    bridge.add_argument("-c", "--config", type=Path, required=True, help="YAML configuration file")
    bridge.add_argument("--json", action="store_true", help="status: print JSON")
    bridge.add_argument("--camera", help="retry: only this camera's detections")
    bridge.set_defaults(func=bridge_main)


def bridge_main(args: argparse.Namespace) -> int:
    """Run the bridge or print its status."""
    from detector.config import load_config

    config = load_config(args.config)
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(config.log_level)
    if args.action == "status":
        return status(config.bridge.outbox, as_json=args.json)
    if args.action == "retry":
        return retry(config.bridge.outbox, args.camera)
    if not config.bridge.cameras:
        raise ConfigError(["bridge.cameras: no camera has a Pyronear token and pose_id"])
    from detector.bridge.bridge_service import BridgeService

    return BridgeService(config).run()


def read_status(outbox_path: str) -> tuple[Path, dict[str, Any] | None]:
    """The outbox's figures straight from its file (the bridge may be stopped); None when the
    bridge has not run yet (no outbox file)."""
    from detector.bridge.bridge_service import stats_payload
    from detector.bridge.outbox import Outbox

    path = Path(outbox_path).expanduser()
    if not path.exists():
        return path, None
    # Read-only: works on a read-only file or disk, and changes nothing in a running
    # bridge's file.
    outbox = Outbox(path, read_only=True)
    try:
        return path, stats_payload(outbox.stats())
    finally:
        outbox.close()


def status(outbox_path: str, *, as_json: bool) -> int:
    """Print the outbox's figures; 1 when the bridge has not run yet."""
    path, data = read_status(outbox_path)
    if data is None:
        print(f"No outbox at {path}: the bridge has not run yet.")
        return 1
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"Outbox {path} ({data['bytes'] / 1024 / 1024:.1f} MiB)")
    print(f"  {_figures(data)}")
    print(f"  last success: {data['last_success'] or 'never'}")
    if data["last_error"]:
        print(f"  last error ({data['last_error_at'] or 'time unknown'}): {data['last_error']}")
    else:
        print("  last error: none")
    if data["oldest_pending_age"] is not None:
        print(f"  oldest pending: {data['oldest_pending_age']:.0f} s old")
    if data["recovered"]:
        print(f"  outbox recovered: {data['recovered']}")
    for camera, figures in data["cameras"].items():
        print(f"  {camera}: {_figures(figures)}; last success {figures['last_success'] or 'never'}")
        if figures["paused"]:
            print(
                f"  {camera}: delivery PAUSED since {figures['paused_since']}"
                f" (as the bridge last saw it): {figures['paused']}"
            )
    return 0


def requeue(outbox_path: str, camera: str | None) -> tuple[Path, list[tuple[str, str]] | None]:
    """Put the failed detections (of `camera`, else all) back in line: their (id, camera);
    None when the bridge has not run yet (no outbox file)."""
    from detector.bridge.outbox import Outbox

    path = Path(outbox_path).expanduser()
    if not path.exists():
        return path, None
    outbox = Outbox(path)
    try:
        return path, outbox.requeue_failed(camera)
    finally:
        outbox.close()


def retry(outbox_path: str, camera: str | None) -> int:
    """Re-queue failed detections and print them; a running bridge picks them up within
    seconds. 1 when the bridge has not run yet."""
    path, requeued = requeue(outbox_path, camera)
    if requeued is None:
        print(f"No outbox at {path}: the bridge has not run yet.")
        return 1
    for item_id, item_camera in requeued:
        print(f"  {item_camera}: {item_id}")
    print(
        f"{len(requeued)} failed detection(s) back in line; the bridge delivers them"
        " (now if it is running, else at its next start)."
    )
    return 0


def _figures(data: dict[str, Any]) -> str:
    return ", ".join(f"{name} {data[name]}" for name in FIGURES)
