"""The `smokewatch` command line."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from detector import __version__
from detector.errors import SmokeWatchError

# Modules that add subcommands, in the order `smokewatch --help` lists them.
COMMAND_MODULES = (
    "detector.service.cli",
    "detector.commands",
    "detector.bench",
    "detector.evaluate",
    "detector.optimize",
    "detector.bridge.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="smokewatch",
        description="Wildfire-smoke detection for Home Assistant over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"smokewatch {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages (default: info)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except SmokeWatchError as err:
        print(f"smokewatch: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
