"""The layout: service and bridge are separate rooms; the bridge needs no model runtime."""

from __future__ import annotations

import argparse
import ast
import importlib
import subprocess
import sys
from pathlib import Path

from detector.cli import COMMAND_MODULES

DETECTOR = Path(__file__).resolve().parents[2] / "detector"

# Run in a fresh interpreter where importing onnxruntime fails: the whole `smokewatch bridge`
# path, from the command line to a built bridge and a detection message, must not need it.
BRIDGE_WITHOUT_ONNXRUNTIME = """
import sys
sys.modules["onnxruntime"] = None
from detector.cli import _command, build_parser
from detector.config import load_config
argv = ["bridge", "-c", sys.argv[1]]
args = build_parser(_command(argv)).parse_args(argv)
assert args.func.__module__ == "detector.cli.bridge", args.func.__module__
from detector.bridge.hosted import HostedBridge
from detector.bridge.bridge_service import BridgeService
from detector.contract import DetectionMessage
import numpy as np
bridge = BridgeService(load_config(args.config))
bridge.outbox.close()
boxes = np.zeros((0, 5), dtype=np.float32)
message = DetectionMessage("d1", "ridge", 1.0e9, boxes, b"jpeg").to_json()
assert DetectionMessage.from_json(message).camera == "ridge"
print("bridge built without onnxruntime")
"""


def test_smokewatch_bridge_does_not_import_onnxruntime(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "cameras: {ridge: {}}\n"
        "bridge:\n"
        f"  outbox: {tmp_path / 'outbox.sqlite3'}\n"
        "  cameras:\n    ridge: {token: t, pose_id: 1}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", BRIDGE_WITHOUT_ONNXRUNTIME, str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bridge built without onnxruntime" in done.stdout


def test_the_blocked_import_would_be_caught() -> None:
    # The check above means something only if a module that needs onnxruntime fails there.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['onnxruntime'] = None; import detector.model",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "onnxruntime" in done.stderr


def _imports(source: str, package: str) -> set[str]:
    """Every module a module of `package` imports (at any depth), relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_service_and_bridge_do_not_import_each_other() -> None:
    crossings = []
    for room, other in (("service", "bridge"), ("bridge", "service")):
        for path in sorted((DETECTOR / room).glob("*.py")):
            for module in _imports(path.read_text(), f"detector.{room}"):
                if module == f"detector.{other}" or module.startswith(f"detector.{other}."):
                    crossings.append(f"{path.relative_to(DETECTOR)} imports {module}")
    assert not crossings, crossings


def test_import_scan_sees_a_crossing() -> None:
    # The scan above must see absolute and relative imports, inside functions too.
    source = "import detector.bridge\ndef f():\n    from ..bridge import outbox\n"
    found = _imports(source, "detector.service")
    assert {"detector.bridge", "detector.bridge.outbox"} <= found


def test_command_modules_add_the_commands_they_are_listed_with() -> None:
    for module, commands in COMMAND_MODULES.items():
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        importlib.import_module(module).register(subparsers)
        assert tuple(subparsers.choices) == commands, module
