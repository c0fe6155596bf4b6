"""The documents a user copies agree with the code: example config, dashboard, blueprint, links.

The example config documents every key of the config schema. The dashboard and the blueprint
name entity ids; Home Assistant derives them from the discovery payloads (device name + entity
name, slugified). The manifest's documentation link points at a README heading. A user copying
them must not meet an undocumented key, a missing entity or a dead anchor.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml

from detector.config import load_config
from detector.config.bridge import BRIDGE_SCHEMA
from detector.config.cameras import CAMERA_SCHEMA
from detector.config.detection import DETECTION_SCHEMA
from detector.config.logs import LOGGING_SCHEMA
from detector.config.model import MODEL_SCHEMA
from detector.config.mqtt import MQTT_SCHEMA
from detector.service import discovery

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "config" / "smokewatch.yaml"
DASHBOARD = REPO / "integration" / "dashboards" / "smokewatch.yaml"
BLUEPRINT = REPO / "integration" / "blueprints" / "automation" / "smokewatch" / "notify_smoke.yaml"
MANIFEST = REPO / "custom_components" / "smokewatch" / "manifest.json"
ENTITY_ID = re.compile(
    r"\b(?:binary_sensor|sensor|image|camera|switch|number|button|event)\.[a-z0-9_]+"
)


class _TaggedLoader(yaml.SafeLoader):
    """Reads Home Assistant's `!input` tag as a plain string."""


for _tag in ("!input",):
    _TaggedLoader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_TaggedLoader)


def _slug(text: str) -> str:
    """Home Assistant's entity id slug (enough for ASCII names)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@pytest.fixture(scope="module")
def example_payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """The discovery payloads the example config makes the detector publish."""
    where = tmp_path_factory.mktemp("example")
    shutil.copy(EXAMPLE_CONFIG, where / "smokewatch.yaml")
    shutil.copy(REPO / "config" / "secrets.yaml.example", where / "secrets.yaml")
    config = load_config(where / "smokewatch.yaml")
    payloads: dict[tuple[str, str], dict[str, Any]] = dict(discovery.detector_entities(config.mqtt))
    for camera in config.cameras.values():
        payloads.update(discovery.camera_entities(config.mqtt, camera))
    return payloads


@pytest.fixture(scope="module")
def example_entity_ids(example_payloads: dict[tuple[str, str], Any]) -> set[str]:
    """The entity ids HA gives the entities discovery publishes for the example config."""
    return {
        f"{component}.{_slug(payload['device']['name'] + ' ' + payload['name'])}"
        for (component, _), payload in example_payloads.items()
        if component != "device_automation"
    }


def test_dashboard_uses_the_entities_of_the_example_config(example_entity_ids: set[str]) -> None:
    """Every entity id the dashboard names exists for the example config's cameras."""
    named = set(ENTITY_ID.findall(DASHBOARD.read_text()))
    assert "binary_sensor.ridge_tower_smoke" in named  # the camera named "Ridge tower"
    assert named - example_entity_ids == set()


def test_blueprint_examples_and_filters_match_the_entities(example_entity_ids: set[str]) -> None:
    """The blueprint's example ids exist, and its selectors admit the entities they name."""
    blueprint = _load(BLUEPRINT)["blueprint"]
    ids = example_entity_ids
    smoke = blueprint["input"]["smoke_sensor"]
    camera = blueprint["input"]["alert_camera"]
    for item in (smoke, camera):
        examples = ENTITY_ID.findall(item["description"])
        assert examples and set(examples) <= ids, examples
        domain = item["selector"]["entity"]["filter"][0]["domain"]
        assert {example.split(".")[0] for example in examples} == {domain}
    assert smoke["selector"]["entity"]["filter"][0]["device_class"] == "smoke"


def test_manifest_documentation_lands_on_a_readme_heading() -> None:
    """The manifest's documentation URL's anchor is a heading of the README (GitHub's slug)."""
    url = json.loads(MANIFEST.read_text())["documentation"]
    anchor = url.partition("#")[2]
    headings = [
        line.lstrip("#").strip()
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith("#")
    ]
    slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
    assert anchor in slugs, (anchor, sorted(slugs))


def _keys(schema: Any) -> set[str]:
    """Every key name a (nested) voluptuous schema accepts."""
    if isinstance(schema, vol.Schema):
        return _keys(schema.schema)
    if isinstance(schema, vol.All | vol.Any):
        return set().union(*(_keys(v) for v in schema.validators))
    if isinstance(schema, list):
        return set().union(*(_keys(v) for v in schema))
    if isinstance(schema, dict):
        found: set[str] = set()
        for key, value in schema.items():
            name = key.schema if isinstance(key, vol.Marker) else key
            if isinstance(name, str):
                found.add(name)
            found |= _keys(value)
        return found
    return set()


@pytest.mark.parametrize(
    ("section", "schema"),
    [
        ("model", MODEL_SCHEMA),
        ("detection", DETECTION_SCHEMA),
        ("mqtt", MQTT_SCHEMA),
        ("cameras", CAMERA_SCHEMA),
        ("bridge", BRIDGE_SCHEMA),
        ("logging", LOGGING_SCHEMA),
    ],
)
def test_example_config_documents_every_key(section: str, schema: Any) -> None:
    """Each key the schema accepts appears (set or commented) in its section of the example."""
    text = EXAMPLE_CONFIG.read_text()
    block = re.search(rf"^{section}:\n(.*?)(?=^\w|\Z)", text, re.M | re.S)
    assert block is not None, f"no {section}: section"
    written = set(re.findall(r"^[\s#]*(\w+):", block.group(1), re.M))
    written |= set(re.findall(r"[{,]\s*(\w+):", block.group(1)))
    if section == "cameras":  # detection: says a camera may override any of its keys
        written |= _keys(DETECTION_SCHEMA)
    assert _keys(schema) - written == set()


def test_service_targets_admit_the_camera_devices(
    example_payloads: dict[tuple[str, str], Any],
) -> None:
    """services.yaml's device filter admits the camera devices discovery creates, only them."""
    services = _load(REPO / "custom_components" / "smokewatch" / "services.yaml")
    cameras = {
        (payload["device"]["manufacturer"], payload["device"]["model"])
        for (component, _), payload in example_payloads.items()
        if component == "binary_sensor" and "via_device" in payload["device"]
    }
    detector = {
        (payload["device"]["manufacturer"], payload["device"]["model"])
        for (component, _), payload in example_payloads.items()
        if component == "sensor" and "via_device" not in payload["device"]
    }
    assert len(cameras) == 1 and detector and detector != cameras
    for name, service in services.items():
        wanted = service["target"]["device"]
        assert wanted["integration"] == "mqtt", name
        assert {(wanted["manufacturer"], wanted["model"])} == cameras, name
