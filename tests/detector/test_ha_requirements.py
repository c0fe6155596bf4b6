"""scripts/ha_requirements.py: what the Home Assistant test venvs are built with."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from tests.detector.mqtt_helpers import REPO


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "ha_requirements", REPO / "scripts" / "ha_requirements.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifests(root: Path, entries: dict[str, dict[str, object]]) -> Path:
    for domain, manifest in entries.items():
        (root / domain).mkdir(parents=True)
        (root / domain / "manifest.json").write_text(json.dumps({"domain": domain, **manifest}))
    return root


def test_dependencies_after_dependencies_and_discovery_keys_are_followed(tmp_path: Path) -> None:
    """As HA's requirements manager: the frontend's package comes with `frontend`, an
    after-dependency is installed too, and a manifest with a `zeroconf` or `homekit`
    (discovery) key needs the zeroconf integration."""
    components = manifests(
        tmp_path,
        {
            "frontend": {"requirements": ["home-assistant-frontend==1"], "dependencies": ["http"]},
            "http": {"requirements": ["aiohttp-fast-zlib==2"]},
            "mqtt": {"requirements": ["paho-mqtt==2.1.0"]},
            "zeroconf": {"requirements": ["zeroconf==3"]},
            "homekit": {"requirements": ["HAP-python==4"]},
            "met": {"requirements": ["PyMetno==0.13"], "homekit": {"models": ["x"]}},
            "unrelated": {"requirements": ["never==1"]},
        },
    )
    custom = {"domain": "smokewatch", "dependencies": ["mqtt"], "after_dependencies": ["frontend"]}
    keys = {"mqtt": ("mqtt",), "zeroconf": ("zeroconf", "homekit")}
    found = load().walk(components, {"met", "not_an_integration"}, [custom], keys)
    assert found == sorted(
        [
            "home-assistant-frontend==1",
            "aiohttp-fast-zlib==2",
            "paho-mqtt==2.1.0",
            "zeroconf==3",
            "PyMetno==0.13",
        ]
    )


def test_the_bootstrap_constants_are_flattened() -> None:
    module = load()
    stages = (("logging", {"logger", "network"}, None), ("frontend", {"frontend"}, 60))
    assert module._domains(stages) == {"logger", "network", "frontend", "logging"}
