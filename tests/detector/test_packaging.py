"""HACS and hassfest rules for hacs.json and the integration's manifest.

hassfest validates every manifest.json in a repository and HACS installs only from
custom_components/<domain>/: these checks fail here before they fail there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.config.mqtt import MqttConfig
from detector.contract import INFO, detector_leaf, prefixed

REPO = Path(__file__).resolve().parents[2]
COMPONENT = REPO / "custom_components" / "smokewatch"

HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "homeassistant",
    "hacs",
    "country",
    "persistent_directory",
    "render_readme",
}
IOT_CLASSES = {
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
}
SKIPPED_DIRS = {
    ".git",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "node_modules",
}


def load(path: Path) -> Any:
    """A JSON file of the repository."""
    return json.loads(path.read_text())


def test_hacs_json_has_only_known_keys() -> None:
    """HACS rejects unknown keys; name is required."""
    hacs = load(REPO / "hacs.json")
    assert set(hacs) <= HACS_KEYS, set(hacs) - HACS_KEYS
    assert isinstance(hacs["name"], str) and hacs["name"]
    if "homeassistant" in hacs:
        assert all(part.isdigit() for part in hacs["homeassistant"].split("."))


def test_one_integration_in_custom_components() -> None:
    """HACS wants exactly one integration folder, named after its domain."""
    folders = [
        p
        for p in (REPO / "custom_components").iterdir()
        if p.is_dir() and p.name != "__pycache__" and not p.name.startswith(".")
    ]
    assert [p.name for p in folders] == ["smokewatch"]
    assert load(COMPONENT / "manifest.json")["domain"] == COMPONENT.name


def test_manifest_follows_hassfest() -> None:
    """Keys: domain, name, then the rest sorted; required keys present and well formed."""
    manifest = load(COMPONENT / "manifest.json")
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["iot_class"] in IOT_CLASSES
    for key in ("documentation", "issue_tracker"):
        assert manifest[key].startswith("https://"), key
    version = manifest["version"].split(".")
    assert len(version) == 3 and all(part.isdigit() for part in version)
    assert manifest["config_flow"] is True
    assert (COMPONENT / "config_flow.py").exists()
    assert "mqtt" in manifest["dependencies"]
    # MQTT discovery of every detector on the default prefix: a lone one's info and each
    # instance's (the contract's leaves).
    prefix = MqttConfig().topic_prefix
    assert manifest["mqtt"] == [prefixed(prefix, detector_leaf(i, INFO)) for i in ("", "+")]
    assert isinstance(manifest["codeowners"], list)
    assert isinstance(manifest["requirements"], list)


def test_no_stray_manifest_json() -> None:
    """hassfest validates every manifest.json: only the integration's may exist."""
    found = []
    for path in REPO.rglob("manifest.json"):
        relative = path.relative_to(REPO)
        if relative.parts[0].startswith(".venv") or SKIPPED_DIRS & set(relative.parts):
            continue
        found.append(relative.as_posix())
    assert found == ["custom_components/smokewatch/manifest.json"]


def test_brand_icon_is_a_256_png() -> None:
    """HACS's brands check is satisfied by custom_components/<domain>/brand/icon.png."""
    data = (COMPONENT / "brand" / "icon.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (256, 256)


@pytest.mark.parametrize("name", ["strings.json", "translations/en.json"])
def test_translations_cover_flows_services_and_issues(name: str) -> None:
    """Every service, issue and flow step has its text; en.json mirrors strings.json."""
    strings = load(COMPONENT / name)
    assert strings == load(COMPONENT / "strings.json")
    services = set((COMPONENT / "services.yaml").read_text().split("\n")) & {
        f"{s}:"
        for s in ("set_zones", "clear_zones", "reset_alert", "test_alert", "mark_false_alarm")
    }
    assert {f"{s}:" for s in strings["services"]} == services
    assert set(strings["issues"]) == {"detector_offline", "bridge_failing", "model_missing"}
    # The device triggers come from the detector's MQTT discovery, which names them itself.
    assert "device_automation" not in strings
    assert set(strings["config"]["step"]) == {
        "user",
        "discovery_confirm",
        "pick_detector",
        "reconfigure",
    }


def test_license_is_the_apache_2_0_text() -> None:
    """HACS requires a LICENSE file; the metadata says Apache-2.0."""
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
