"""The producer side of the golden payloads in tests/contract/ (tests/ha checks the consumer side).

Pure payloads (the info, the detection message, the topic leaves, the mask rules) are built
from code with the golden file's own inputs and must equal it. Payloads only a running service
produces (smoke attributes, masks state and attributes, stats, the alert event) are read off
the wire of a real `smokewatch run` against a real broker, after the golden commands drove it,
and must have the golden file's shape: the same keys, the same JSON types, all the way down.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector import contract
from detector.config import Config, validate
from detector.masks import MAX_MASKS, MAX_POINTS, masks_from_json, masks_to_json
from tests.detector.broker import Broker
from tests.detector.mqtt_helpers import Probe, ServiceProcess, score_frame
from tests.detector.tiny_model import make_tiny_model, smoke_jpeg

GOLDEN = Path(__file__).resolve().parents[1] / "contract"
P = "smokewatch"
SMOKE, CLEAR = smoke_jpeg(200), smoke_jpeg(0)


def golden(name: str) -> Any:
    """A golden payload of tests/contract/."""
    return json.loads((GOLDEN / name).read_text())


def shape(value: Any) -> Any:
    """The JSON shape of a value: object keys with their shapes, list items' shapes, types.

    int and float are one type (JSON has numbers); a list's shape is the set of its items'
    shapes, so an empty list only matches an empty list.
    """
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            if shape(item) not in shapes:
                shapes.append(shape(item))
        return ["list", *shapes]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def test_shape_tells_types_and_keys_apart() -> None:
    # The comparison below means something only if these differ.
    assert shape({"a": 1}) == shape({"a": 2.5})
    assert shape({"a": 1}) != shape({"a": True})
    assert shape({"a": 1}) != shape({"a": 1, "b": 1})
    assert shape({"a": None}) != shape({"a": "x"})
    assert shape([[1, 2]]) != shape([])
    assert shape([{"a": 1}]) != shape([{"a": "1"}])


# -- payloads built from code -------------------------------------------------------------------


def _config(data: dict[str, Any]) -> Config:
    return validate(data)


def _golden_cameras(info: dict[str, Any]) -> dict[str, Any]:
    return {camera: {"name": details["name"]} for camera, details in info["cameras"].items()}


@pytest.mark.parametrize("name", ["info.json", "info_instance.json", "info_model_missing.json"])
def test_info_payload_is_the_golden_one(name: str) -> None:
    expected = golden(name)
    config = _config({"cameras": _golden_cameras(expected)})
    mqtt = dataclasses.replace(config.mqtt, instance=expected["instance"] or "")
    info = contract.detector_info(
        mqtt,
        list(config.cameras.values()),
        expected["model"],
        status=expected["status"],
        error=expected["error"],
    )
    # What the running service adds (its model backend) is checked on the wire below.
    expected.pop("backend", None)
    assert info == {**expected, "version": info["version"]}
    assert expected["device_id"] == contract.detector_device_id(mqtt)


def test_detection_message_is_the_golden_one() -> None:
    expected = golden("detection.json")
    detection = contract.DetectionMessage(
        id=expected["id"],
        camera=expected["camera"],
        recorded_at=contract.parse_iso(expected["recorded_at"]),
        bboxes=np.array(expected["bboxes"], dtype=np.float32),
        jpeg=base64.b64decode(expected["jpeg"]),
        alert=expected["alert"],
    )
    assert detection.to_json() == expected
    assert contract.DetectionMessage.from_json(expected).to_json() == expected


def test_topic_leaves_are_the_golden_ones() -> None:
    topics = golden("topics.json")
    camera = {name: getattr(contract, name.upper()) for name in topics["camera"]}
    assert camera == topics["camera"]
    assert list(contract.SETTINGS) == topics["settings"]
    assert list(contract.BUTTONS) == topics["buttons"]
    assert topics["press"] == contract.PRESS
    assert contract.command_leaf("x") == topics["command"].format(setting="x")
    assert contract.state_leaf("x") == topics["state"].format(setting="x")
    detector = {name: getattr(contract, name.upper()) for name in topics["detector"]}
    assert detector == topics["detector"]
    # Leaves only the detector reads (the integration ignores them).
    internal = {name: getattr(contract, name.upper()) for name in topics["detector_internal"]}
    assert internal == topics["detector_internal"]
    assert contract.detector_leaf("b", "info") == topics["instance"].format(
        instance="b", leaf="info"
    )
    assert contract.detector_leaf("", "info") == "info"
    bridge = {name: getattr(contract, f"BRIDGE_{name.upper()}") for name in topics["bridge"]}
    assert bridge == topics["bridge"]
    assert list(contract.CAMERA_STATUSES) == topics["camera_statuses"]


def test_discovery_uses_only_contract_topics() -> None:
    """Every topic a discovered entity reads or writes is a leaf of the contract."""
    from detector.bridge.bridge_service import discovery_payloads
    from detector.service import discovery

    config = _config(
        {"cameras": {"ridge": {}}, "bridge": {"cameras": {"ridge": {"token": "t", "pose_id": 1}}}}
    )
    camera_leaves = {
        *contract.CAMERA_STATE_LEAVES,
        contract.SMOKE_EVENT,
        *(contract.command_leaf(s) for s in (*contract.SETTINGS, *contract.BUTTONS)),
    }
    allowed = {f"{P}/ridge/{leaf}" for leaf in camera_leaves} | {
        f"{P}/{leaf}"
        for leaf in (
            contract.INFO,
            contract.STATS,
            contract.AVAILABLE,
            contract.BRIDGE_AVAILABLE,
            contract.BRIDGE_STATS,
        )
    }
    payloads = [
        *discovery.detector_entities(config.mqtt).values(),
        *discovery.camera_entities(config.mqtt, config.cameras["ridge"]).values(),
        *discovery_payloads(config).values(),
    ]
    seen = set()
    for payload in payloads:
        if "options" in payload and payload["state_topic"].endswith(f"/{contract.STATUS}"):
            assert payload["options"] == list(contract.CAMERA_STATUSES)
        if "payload_press" in payload:
            assert payload["payload_press"] == contract.PRESS
        topics = [value for key, value in payload.items() if key.endswith("topic")]
        topics += [entry["topic"] for entry in payload.get("availability", [])]
        for topic in topics:
            assert topic in allowed, topic
            seen.add(topic)
    assert f"{P}/ridge/{contract.SMOKE_EVENT}" in seen and f"{P}/{contract.BRIDGE_STATS}" in seen


def test_mask_limits_are_the_golden_ones() -> None:
    rules = golden("masks_rules.json")
    assert rules["limits"] == {"max_masks": MAX_MASKS, "max_points": MAX_POINTS}


@pytest.mark.parametrize(
    "case", golden("masks_rules.json")["cases"], ids=lambda case: str(case["case"])
)
def test_mask_rule_cases(case: dict[str, Any]) -> None:
    """The detector (which owns mask validation) accepts or refuses each golden case."""
    if case["valid"]:
        masks = masks_from_json(case["masks"])
        assert len(masks) == len(case["masks"])
    else:
        with pytest.raises(ValueError, match=case["detector_says"]):
            masks_from_json(case["masks"])


def test_masks_command_gives_the_golden_state() -> None:
    command = golden("commands.json")["masks"]["payload"]
    assert masks_to_json(masks_from_json(command)) == golden("masks_state.json")


# -- payloads of a running service ---------------------------------------------------------------


@pytest.fixture(scope="module")
def wire(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """A real service driven through an alert and every golden command; what it published."""
    tmp = tmp_path_factory.mktemp("golden")
    broker = Broker().start()
    probe = None
    service = None
    try:
        model = make_tiny_model(tmp / "tiny.onnx")
        info = golden("info.json")
        cameras = "\n".join(
            f"  {camera}: {{name: {json.dumps(details['name'])}}}"
            for camera, details in info["cameras"].items()
        )
        config = tmp / "c.yaml"
        config.write_text(
            f"model: {{path: {model}}}\n"
            f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: sw-golden}}\n"
            "detection: {interval: 0.2, nb_frames: 3, threshold: 0.25,"
            " stale_after: 10, offline_after: 50}\n"
            f"cameras:\n{cameras}\n"
        )
        probe = Probe(broker.host, broker.port)
        service = ServiceProcess(config, tmp / "service.log")
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 30, "online")
        probe.wait_for(lambda: probe.last(f"{P}/backyard/masks/attributes"), 10, "states")
        captured: dict[str, Any] = {"info": json.loads(probe.last(f"{P}/info") or b"")}
        for frame in (CLEAR, SMOKE, SMOKE):
            captured["smoke_attributes"] = score_frame(probe, "backyard", frame)
        probe.wait_for(lambda: probe.last(f"{P}/backyard/smoke") == b"ON", 20, "smoke ON")
        captured["smoke_event"] = json.loads(probe.wait_count(f"{P}/backyard/smoke/event", 1)[0])
        captured["detection"] = json.loads(probe.wait_count(f"{P}/backyard/detection", 1)[0])
        for command in golden("commands.json").values():
            payload = command["payload"]
            text = payload if isinstance(payload, str) else json.dumps(payload)
            probe.publish(f"{P}/backyard/{contract.command_leaf(command['setting'])}", text)
        # Commands are applied in order: the last one (a test alert) shows they all were.
        probe.wait_for(
            lambda: json.loads(probe.last(f"{P}/backyard/smoke/attributes") or b"{}").get("test"),
            10,
            "the test alert",
        )
        assert probe.last(f"{P}/backyard/threshold/state") == b"0.3"
        before = len(probe.payloads(f"{P}/stats"))
        probe.wait_count(f"{P}/stats", before + 1)  # published after every command
        captured["masks_state"] = json.loads(probe.last(f"{P}/backyard/masks/state") or b"")
        captured["masks_attributes"] = json.loads(
            probe.last(f"{P}/backyard/masks/attributes") or b""
        )
        captured["stats"] = json.loads(probe.last(f"{P}/stats") or b"")
        captured["settings"] = json.loads(probe.last(f"{P}/backyard/settings") or b"")
        captured["log"] = service.log()
        yield captured
    finally:
        if service is not None:
            service.close()
        if probe is not None:
            probe.close()
        broker.close()


def test_service_info_on_the_wire_is_the_golden_one(wire: dict[str, Any]) -> None:
    expected = golden("info.json")
    info = wire["info"]
    assert shape(info) == shape(expected)
    same = {key: value for key, value in info.items() if key not in ("version", "backend")}
    assert same == {key: expected[key] for key in same}


@pytest.mark.parametrize(
    ("captured", "name"),
    [
        ("smoke_attributes", "smoke_attributes.json"),
        ("smoke_event", "smoke_event.json"),
        ("detection", "detection.json"),
        ("masks_attributes", "masks_attributes.json"),
        ("stats", "stats.json"),
        ("settings", "settings.json"),
    ],
)
def test_wire_payload_has_the_golden_shape(wire: dict[str, Any], captured: str, name: str) -> None:
    assert shape(wire[captured]) == shape(golden(name))


def test_alert_event_is_the_golden_one(wire: dict[str, Any]) -> None:
    assert wire["smoke_event"] == golden("smoke_event.json")


def test_every_golden_command_is_accepted(wire: dict[str, Any]) -> None:
    assert wire["stats"]["rejected"] == {}, wire["log"][-3000:]
    assert wire["masks_state"] == golden("masks_state.json")
    assert wire["settings"] == golden("settings.json")


def test_bridge_stats_have_the_golden_shape(tmp_path: Path) -> None:
    """The bridge's stats after one delivery, one refusal and one retry (what the
    integration's repair issue reads: pending, failed, last_error)."""
    from detector.bridge.bridge_service import BridgeService

    config = _config(
        {
            "cameras": {"backyard": {}},
            "bridge": {
                "outbox": str(tmp_path / "outbox.sqlite3"),
                "cameras": {"backyard": {"token": "t", "pose_id": 1}},
            },
        }
    )
    bridge = BridgeService(config)
    try:
        outbox = bridge.outbox
        for index, outcome in enumerate(("delivered", "failed", "retry")):
            assert outbox.add(
                f"d{index}", "backyard", 1.0e9 + index, [[0.1, 0.1, 0.2, 0.2, 0.5]], b"j"
            )
            item = outbox.next_pending("backyard")
            assert item is not None
            outbox.attempt(item.seq)
            if outcome == "delivered":
                outbox.delivered(item.seq, "7", 201)
            elif outcome == "failed":
                outbox.failed(item.seq, 422, "422: the API refused the detection")
            else:
                outbox.retry_later(item.seq, "connection refused", answered=False)
        bridge.api_connected = False
        stats = bridge.stats()
    finally:
        bridge.outbox.close()
    assert shape(stats) == shape(golden("bridge_stats.json"))


def test_command_requests_and_results_are_the_golden_ones() -> None:
    """What Home Assistant's services send and wait for (tests/ha checks the other side)."""
    golden_request = golden("command_request.json")
    payload = json.dumps(golden_request["request"]).encode()
    assert contract.open_command(payload) == (golden_request["request"]["request_id"], b"PRESS")
    assert contract.open_command(b"PRESS") == (None, b"PRESS")  # HA's button entities
    request_id = golden_request["request"]["request_id"]
    assert contract.command_result(request_id, True, None) == golden_request["done"]
    refused = golden_request["refused"]
    assert contract.command_result(request_id, False, refused["reason"]) == refused
    assert contract.result_leaf("x") == golden_request["result_leaf"].format(command="x")
    assert "command_results" in contract.FEATURES
