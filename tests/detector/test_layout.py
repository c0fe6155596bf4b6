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


# -- rules a reviewer would otherwise have to remember -------------------------------------

MAX_MODULE_LINES = 450
# Calls whose first argument is a topic: outside the contract, it must come from the contract
# (a leaf, camera_topic, command_leaf, prefixed...), never be spelled as a string here.
TOPIC_CALLS = frozenset(
    {"publish", "publish_absolute", "publish_and_wait", "subscribe", "unsubscribe", "will_set"}
)
TOPIC_HOMES = {"contract.py", "mqtt.py"}
# What `detector.config` may import: itself and the modules below it, never the frame, model,
# pipeline, service or bridge machinery (check-config's probing of those lives elsewhere).
CONFIG_MAY_IMPORT = (
    "detector.config",
    "detector.errors",
    "detector.contract",
    "detector.masks",
    "detector.geometry",
    "detector.redact",
    "detector.untrusted",
)


def _modules() -> list[Path]:
    return sorted(DETECTOR.rglob("*.py"))


def test_no_module_is_longer_than_450_lines() -> None:
    long = [
        f"{path.relative_to(DETECTOR)}: {count} lines"
        for path in _modules()
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, long


def _spelled_string(node: ast.AST | None) -> bool:
    """A string literal, an f-string, or a string built with + or %."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _spelled_string(node.left) or _spelled_string(node.right)
    if isinstance(node, ast.List | ast.Tuple):  # subscribe([(topic, qos), ...])
        return any(
            _spelled_string(item.elts[0] if isinstance(item, ast.Tuple) else item)
            for item in node.elts
        )
    return False


def spelled_topics(source: str) -> list[int]:
    """Lines where a topic is spelled as a string: a topic call's first argument or `topic=`,
    or the value of a `*topic` key of a dict (discovery payloads)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in TOPIC_CALLS:
                first = node.args[0] if node.args else None
                keyword = next((k.value for k in node.keywords if k.arg == "topic"), None)
                if _spelled_string(first) or _spelled_string(keyword):
                    lines.append(node.lineno)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                is_topic = isinstance(key, ast.Constant) and str(key.value).endswith("topic")
                if is_topic and _spelled_string(value):
                    lines.append(node.lineno)
    return lines


def test_topics_are_built_only_by_the_contract() -> None:
    spelled = [
        f"{path.relative_to(DETECTOR)}:{line}"
        for path in _modules()
        if path.name not in TOPIC_HOMES or path.parent != DETECTOR
        for line in spelled_topics(path.read_text())
    ]
    assert not spelled, spelled


def test_the_topic_scan_sees_a_spelled_topic() -> None:
    source = (
        'client.publish(f"{prefix}/a/smoke", "ON")\n'
        'comms.subscribe("smokewatch/+/image", handler)\n'
        'client.subscribe([(prefix + "/#", 0)])\n'
        'payload = {"state_topic": base + "/score", "name": "x"}\n'
        "client.publish(topic(camera_topic(camera, SMOKE)), 'ON')\n"
    )
    assert spelled_topics(source) == [1, 2, 3, 4]


def test_config_imports_nothing_above_it() -> None:
    above = [
        f"{path.relative_to(DETECTOR)} imports {module}"
        for path in sorted((DETECTOR / "config").glob("*.py"))
        for module in _imports(path.read_text(), "detector.config")
        if module.startswith("detector.") and not module.startswith(CONFIG_MAY_IMPORT)
    ]
    assert not above, above
    # And loading a configuration pulls in neither OpenCV nor the model runtime.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, detector.config as c; c.validate({'cameras': {'a': {}}});"
            " print(sorted({'cv2', 'onnxruntime', 'detector.bridge', 'detector.service'}"
            " & set(sys.modules)))",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "[]", done.stdout
