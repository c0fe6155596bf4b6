"""The `smokewatch` command line: every argument and every line printed to the terminal.

One module per command group under this package adds its subcommands (`register`) and runs
them: it parses, calls the library (config, pipeline, replay, bench, evaluate, optimize, the
service and the bridge, which return data and raise errors, never print) and prints the result.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from detector import __version__
from detector.errors import SmokeWatchError
from detector.redact import install_log_filter, redact_text

# Modules that add subcommands and the subcommands each adds, in the order `smokewatch --help`
# lists them. Only the module of the command being run is imported, and each imports the
# library it runs inside the command's function: `smokewatch bridge` never loads the model
# runtime (onnxruntime).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "detector.cli.run": ("run", "demo"),
    "detector.cli.offline": ("check-config", "replay"),
    "detector.cli.bench": ("bench",),
    "detector.cli.evaluate": ("eval",),
    "detector.cli.optimize": ("optimize",),
    "detector.cli.bridge": ("bridge",),
    "detector.cli.container": ("container", "health"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand, or only `command`'s when a module adds it."""
    parser = argparse.ArgumentParser(
        prog="smokewatch",
        description="Wildfire-smoke detection for Home Assistant over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"smokewatch {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages (default: info)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [name for name, commands in COMMAND_MODULES.items() if command in commands]
    for name in modules or COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the top-level options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Every configured secret (remembered when a configuration loads) is hidden in the log.
    install_log_filter()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except SmokeWatchError as err:
        print(f"smokewatch: error: {redact_text(str(err))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
