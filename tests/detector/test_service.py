"""The real `smokewatch run` process against a real broker, driven over MQTT like HA would."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.detector.broker import Broker
from tests.detector.mqtt_helpers import Probe, ServiceProcess, score_frame, write_config
from tests.detector.tiny_model import live, smoke_jpeg

SMOKE, CLEAR = smoke_jpeg(200), smoke_jpeg(0)
P = "smokewatch"

# Keys Home Assistant's MQTT discovery schema requires or this project promises, per component.
REQUIRED = {
    "binary_sensor": {"state_topic", "device_class", "payload_on", "payload_off"},
    "sensor": {"state_topic"},
    "image": {"image_topic", "content_type"},
    "camera": {"topic"},
    "switch": {"command_topic", "state_topic"},
    "number": {"command_topic", "state_topic", "min", "max", "step"},
    "button": {"command_topic"},
    "event": {"state_topic", "event_types"},
}
# Device triggers are not entities: no name, unique id or availability of their own.
TRIGGER_KEYS = {"automation_type", "topic", "type", "subtype", "payload", "device", "origin"}
COMMON = {"name", "unique_id", "device", "origin", "availability", "availability_mode"}


@pytest.fixture
def env(broker: Broker, tiny: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A running service with cameras a and b, and a probe subscribed to everything."""
    probe = Probe(broker.host, broker.port)
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}", "b": "{}"})
    service = ServiceProcess(config, tmp_path / "service.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 30, "online")
        probe.wait_for(lambda: probe.last(f"{P}/a/threshold/state"), 10, "states")
        yield {"probe": probe, "service": service, "broker": broker, "config": config}
    finally:
        service.close()
        probe.close()


def stats(probe: Probe, check: Any = bool) -> dict[str, Any]:
    """The newest stats that satisfy check."""

    def newest() -> dict[str, Any] | None:
        last = probe.last(f"{P}/stats")
        data = json.loads(last) if last else None
        return data if data and check(data) else None

    return probe.wait_for(newest, 10, "stats")  # type: ignore[no-any-return]


def test_smoke_on_then_off_as_the_vote_dictates(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    scores = [score_frame(probe, "a", data)["score"] for data in (CLEAR, SMOKE, SMOKE)]
    # nb 3 needs two boxes: ON on the third frame, score 2 * 0.784 / 3 = 52.3 %.
    assert scores[:2] == [0.0, 0.0] and scores[2] == pytest.approx(52.3, abs=1)
    probe.wait_for(lambda: probe.last(f"{P}/a/smoke") == b"ON", 20, "smoke ON")
    score_frame(probe, "a", CLEAR)  # the window still holds two smoke frames
    assert probe.last(f"{P}/a/smoke") == b"ON"
    score_frame(probe, "a", CLEAR)
    probe.wait_for(lambda: probe.last(f"{P}/a/smoke") == b"OFF", 20, "smoke OFF")
    assert probe.payloads(f"{P}/a/smoke").count(b"ON") == 1
    # Detections for the bridge: the 3-frame lead-up at onset, then the 4th frame.
    detections = [json.loads(p) for p in probe.wait_count(f"{P}/a/detection", 4)]
    assert len(detections) == 4
    assert [d["bboxes"][0][4] for d in detections[:3]] == [0.0, 0.0, pytest.approx(0.523, abs=0.01)]
    # The scored bytes: the third frame, SMOKE as a live capture (moving stripes, same size).
    scored = cv2.imdecode(np.frombuffer(base64.b64decode(detections[2]["jpeg"]), np.uint8), 1)
    assert scored.shape == (256, 256, 3) and abs(float(scored.mean()) - 200) < 3
    # The alert image is retained and is a JPEG with the boxes drawn.
    image = probe.wait_for(lambda: probe.last(f"{P}/a/alert/image"), 20, "alert image")
    assert image.startswith(b"\xff\xd8") and image != SMOKE
    assert probe.last(f"{P}/b/smoke") == b"OFF"


def test_discovery_complete_and_states_retained(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    broker: Broker = env["broker"]
    score_frame(probe, "a", CLEAR)
    late = Probe(broker.host, broker.port, ("homeassistant/#", f"{P}/#"))
    try:
        late.sync()  # every retained message is in
        assert late.last(f"{P}/a/score") is not None
        configs = {
            topic: json.loads(payload)
            for topic, payload, retained in late.messages
            if topic.startswith("homeassistant/") and retained and payload
        }
        retained = {topic for topic, _, kept in late.messages if kept}
    finally:
        late.close()
    components = {topic.split("/")[1] for topic in configs}
    assert components == set(REQUIRED) | {"device_automation"}
    triggers = {t: c for t, c in configs.items() if t.split("/")[1] == "device_automation"}
    # Per camera: "Smoke alert" started / ended, on the camera's device, fed by its event topic.
    assert {(c["device"]["identifiers"][0], c["type"]) for c in triggers.values()} == {
        (f"smokewatch_{cam}", kind) for cam in "ab" for kind in ("started", "ended")
    }
    for topic, config in triggers.items():
        assert set(config) >= TRIGGER_KEYS, f"{topic} lacks {TRIGGER_KEYS - set(config)}"
        assert config["automation_type"] == "trigger" and config["subtype"] == "Smoke alert"
        assert config["payload"] == config["type"]
        assert (
            config["topic"]
            == f"{P}/{config['device']['identifiers'][0].removeprefix('smokewatch_')}/smoke/event"
        )
    entities = {t: c for t, c in configs.items() if t not in triggers}
    assert len(entities) == 2 * 14 + 5  # fourteen entities per camera, five for the detector
    # The stats that change every interval are off until the user turns them on.
    off = sorted(c["unique_id"] for c in entities.values() if c.get("enabled_by_default") is False)
    assert off == ["smokewatch_detector_frames_dropped", "smokewatch_detector_inference_ms"]
    number = configs["homeassistant/number/smokewatch_a_threshold/config"]
    assert (number["min"], number["max"], number["unit_of_measurement"]) == (5, 95, "%")
    for topic, config in entities.items():
        component = topic.split("/")[1]
        missing = (REQUIRED[component] | COMMON) - set(config)
        assert not missing, f"{topic} lacks {missing}"
        assert "object_id" not in config
        assert topic == f"homeassistant/{component}/{config['unique_id']}/config"
        assert config["device"]["identifiers"]
        assert config["availability"][0]["topic"] == f"{P}/available"
    smoke = configs["homeassistant/binary_sensor/smokewatch_a_smoke/config"]
    assert (
        smoke["device_class"] == "smoke" and smoke["device"]["via_device"] == "smokewatch_detector"
    )
    assert smoke["availability"][1] == {
        "topic": f"{P}/a/status",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    for leaf in ("available", "info", "a/smoke", "a/score", "a/status", "a/threshold/state"):
        assert f"{P}/{leaf}" in retained
    info = json.loads(probe.last(f"{P}/info") or b"{}")
    assert info["cameras"]["a"]["device_id"] == "smokewatch_a" and info["status"] == "ok"


def test_commands_and_invalid_commands(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    probe.publish(f"{P}/a/threshold/set", "0.6")
    probe.wait_for(lambda: probe.last(f"{P}/a/threshold/state") == b"0.6", 20, "threshold")
    for _ in range(3):
        score_frame(probe, "a", SMOKE)
    # 3 * 0.784 / 3 = 0.784 > 0.6: ON even at the higher threshold.
    probe.wait_for(lambda: probe.last(f"{P}/a/smoke") == b"ON", 20, "ON")
    probe.publish(f"{P}/a/reset/set", "PRESS")
    probe.wait_for(lambda: probe.last(f"{P}/a/smoke") == b"OFF", 20, "reset")
    # Each alert's start and end is one event (not retained: a trigger fires once).
    events = [json.loads(p) for p in probe.wait_count(f"{P}/a/smoke/event", 2)]
    assert [(e["event_type"], e["test"]) for e in events] == [("started", False), ("ended", False)]
    masks = [{"name": "centre", "rect": [0.3, 0.3, 0.7, 0.7]}]
    probe.publish(f"{P}/a/masks/set", json.dumps(masks))
    probe.wait_for(lambda: probe.last(f"{P}/a/masks/state") not in (None, b"[]"), 20, "masks")
    assert json.loads(probe.last(f"{P}/a/masks/state") or b"")[0]["name"] == "centre"
    attributes = score_frame(probe, "a", SMOKE)
    assert attributes["boxes"] == []  # masked
    probe.publish(f"{P}/a/enabled/set", "OFF")
    probe.wait_for(lambda: probe.last(f"{P}/a/enabled/state") == b"OFF", 20, "disabled")
    # Invalid commands: each refused and counted, nothing changes.
    for topic, payload in [
        ("a/threshold/set", "abc"),
        ("a/threshold/set", "2"),
        ("a/enabled/set", "MAYBE"),
        ("a/masks/set", "{not json"),
        ("a/masks/set", json.dumps([{"name": "x", "rect": [0.5, 0, 0.1, 1]}])),
        ("a/colour/set", "red"),
        ("nosuch/reset/set", "PRESS"),
    ]:
        # One at a time: a setting's newer value replaces one still waiting to run.
        before = sum(stats(probe)["rejected"].values())
        probe.publish(f"{P}/{topic}", payload)
        stats(probe, lambda s, n=before: sum(s["rejected"].values()) > n)
    data = stats(probe, lambda s: s["rejected"].get("bad_command", 0) >= 6)
    assert data["rejected"]["bad_command"] == 6 and data["rejected"]["unknown_camera"] == 1
    assert probe.last(f"{P}/a/threshold/state") == b"0.6"
    assert probe.last(f"{P}/a/enabled/state") == b"OFF"
    assert json.loads(probe.last(f"{P}/a/masks/state") or b"[]")[0]["name"] == "centre"
    log = env["service"].log()
    assert "threshold (command): expected a number, got 'abc'" in log
    # The test alert goes through the real outputs, flagged as a test.
    probe.publish(f"{P}/b/test/set", "PRESS")
    probe.wait_for(lambda: probe.last(f"{P}/b/smoke") == b"ON", 20, "test alert")
    assert json.loads(probe.last(f"{P}/b/smoke/attributes") or b"{}")["test"] is True
    event = json.loads(probe.wait_count(f"{P}/b/smoke/event", 1)[0])
    assert event["event_type"] == "started" and event["test"] is True
    # Frames scored during the test alert keep it flagged as a test while it lasts.
    attributes = score_frame(probe, "b", CLEAR)
    assert probe.last(f"{P}/b/smoke") == b"ON"
    assert attributes["test"] is True and attributes["alert_started"] is not None
    assert not probe.payloads(f"{P}/b/detection")  # never forwarded to the API
    # Real smoke during the test alert is a real alert: it starts as one (a new event).
    for data in (SMOKE, SMOKE):
        attributes = score_frame(probe, "b", data)
    assert attributes["test"] is False
    events = [json.loads(p) for p in probe.wait_count(f"{P}/b/smoke/event", 2)]
    assert [(e["event_type"], e["test"]) for e in events] == [("started", True), ("started", False)]


def test_bad_input_on_the_wire(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    service: ServiceProcess = env["service"]
    bad = {
        "truncated": SMOKE[: len(SMOKE) // 2],
        "not_an_image": os.urandom(4096),
        "empty": b"",
        "bad_base64": b"this is not base64",
        "bad_envelope": b'{"image": 12}',
    }
    for reason, payload in bad.items():
        probe.publish(f"{P}/a/image", payload)
        # Refused before the next is sent: a newer frame would replace it unscored.
        stats(probe, lambda s, reason=reason: s["rejected"].get(reason, 0) >= 1)
    probe.publish(f"{P}/a/image", SMOKE[: len(SMOKE) // 2])  # a second truncated frame
    stats(probe, lambda s: s["rejected"].get("truncated", 0) >= 2)  # before a newer replaces it
    probe.publish(f"{P}/a/image", b"\xff\xd8\xff" + b"\0" * (50 * 1024 * 1024))
    probe.publish(f"{P}/ghost/image", SMOKE)
    data = stats(probe, lambda s: sum(s["rejected"].values()) >= len(bad) + 3)
    assert data["rejected"]["truncated"] == 2
    for reason in (
        "not_an_image",
        "empty",
        "bad_base64",
        "bad_envelope",
        "too_large",
        "unknown_camera",
    ):
        assert data["rejected"][reason] >= 1, reason
    # Base64 and the JSON envelope are accepted forms of a good frame.
    assert score_frame(probe, "b", base64.b64encode(live(SMOKE)))["frame_time"]
    envelope = json.dumps({"image": base64.b64encode(live(SMOKE)).decode(), "ts": 1700000000})
    scored = score_frame(probe, "b", envelope.encode(), ts=1700000000)
    assert scored["frame_time"] == "2023-11-14T22:13:20.000Z"
    # The process is up, the other camera is scored, each reason was logged once.
    assert service.process.poll() is None
    assert score_frame(probe, "b", SMOKE)["score"] > 50
    assert service.log().count("Refused input for a (truncated)") == 1


def test_overload_drops_frames_and_nobody_starves(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    service: ServiceProcess = env["service"]
    rss_before = service.rss_kib()
    b_before = stats(probe)["cameras"]["b"]["scored"]
    deadline = time.monotonic() + 4
    sent = 0
    while time.monotonic() < deadline:
        probe.client.publish(f"{P}/a/image", SMOKE, qos=0)  # far faster than the 0.2 s interval
        sent += 1
        if sent % 20 == 0:
            probe.client.publish(f"{P}/b/image", CLEAR, qos=0)
            time.sleep(0.05)
    data = stats(probe, lambda s: s["cameras"]["a"]["frames_in"] >= sent * 0.9)
    a, b = data["cameras"]["a"], data["cameras"]["b"]
    assert a["dropped"] > sent / 2  # most frames were dropped, and counted
    assert a["scored"] <= 4 / 0.2 + 5  # at most one per interval (+ slack for the stats lag)
    assert b["scored"] > b_before  # the quiet camera still got its turn
    assert service.rss_kib() - rss_before < 60 * 1024  # memory stays flat: no backlog


def test_sigterm_publishes_offline_and_exits_zero(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    assert env["service"].terminate() == 0
    probe.wait_for(lambda: probe.last(f"{P}/available") == b"offline", 20, "offline")


def test_kill_9_gives_offline_through_last_will(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    env["service"].kill()
    probe.wait_for(lambda: probe.last(f"{P}/available") == b"offline", 10, "last will")


def test_ha_restart_republishes_discovery(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    topic = "homeassistant/binary_sensor/smokewatch_a_smoke/config"
    before = len(probe.payloads(topic))
    probe.publish("homeassistant/status", "online")
    probe.wait_count(topic, before + 1, 20)


def test_broker_restart_reconnects_and_republishes(env: dict[str, Any], tmp_path: Path) -> None:
    broker: Broker = env["broker"]
    env["probe"].close()
    broker.stop()
    # A fresh broker on the same port that remembers nothing: whatever retained state it holds
    # afterwards was published again by the detector.
    fresh = Broker(kind=broker.kind, port=broker.port)
    fresh._dir = tmp_path  # keep its persistence out of the old broker's folder
    fresh.start()
    try:
        probe = Probe(fresh.host, fresh.port)
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 15, "reconnect")
        probe.wait_for(
            lambda: probe.last("homeassistant/binary_sensor/smokewatch_a_smoke/config"),
            5,
            "discovery",
        )
        assert score_frame(probe, "a", SMOKE)["score"] == 0.0  # scoring resumed
        probe.close()
    finally:
        fresh.stop()


def test_removed_camera_loses_its_entities(env: dict[str, Any], tiny: Path, tmp_path: Path) -> None:
    probe: Probe = env["probe"]
    assert env["service"].terminate() == 0
    config = write_config(tmp_path / "only_a.yaml", env["broker"].port, tiny, {"a": "{}"})
    again = ServiceProcess(config, tmp_path / "again.log")
    try:
        topic = "homeassistant/binary_sensor/smokewatch_b_smoke/config"
        probe.wait_for(lambda: probe.last(topic) == b"", 15, "empty config for b")
        probe.wait_for(lambda: probe.last(f"{P}/b/smoke") == b"", 20, "b's state cleared")
        probe.wait_for(
            lambda: list(json.loads(probe.last(f"{P}/info") or b"{}").get("cameras", [])) == ["a"],
            5,
            "info without b",
        )
    finally:
        again.close()


def test_settings_survive_a_restart(env: dict[str, Any], tmp_path: Path) -> None:
    probe: Probe = env["probe"]
    probe.publish(f"{P}/a/threshold/set", "0.7")
    probe.wait_for(lambda: probe.last(f"{P}/a/threshold/state") == b"0.7", 20)
    assert env["service"].terminate() == 0
    again = ServiceProcess(env["config"], tmp_path / "again.log")
    try:
        probe.wait_for(
            lambda: "threshold set to 0.7 (restored state)" in again.log(), 15, "restore"
        )
        assert probe.last(f"{P}/a/threshold/state") == b"0.7"
    finally:
        again.close()


def test_view_state_and_a_frozen_camera_is_not_online(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    colour = _colour_jpeg(1)
    attributes = score_frame(probe, "a", colour, new_capture=False)
    assert attributes["view"] == "clear" and attributes["paused"] is False
    # The clear frame gave no box: the attributes say why.
    assert [d["reason"] for d in attributes["dropped"]] == ["score"]
    probe.wait_for(lambda: probe.last(f"{P}/a/view") == b"clear", 20, "view clear")
    probe.wait_for(lambda: probe.last(f"{P}/a/status") == b"online", 20, "online")
    # The same bytes three times: a stuck camera. Its status leaves `online`, and its
    # repeats are not voted on (no new evidence).
    for _ in range(2):
        attributes = score_frame(probe, "a", colour, new_capture=False)
    assert attributes["view"] == "frozen"
    assert [d["reason"] for d in attributes["dropped"]] == ["repeat"]
    probe.wait_for(lambda: probe.last(f"{P}/a/view") == b"frozen", 20, "view frozen")
    probe.wait_for(lambda: probe.last(f"{P}/a/status") == b"frozen", 20, "status frozen")
    # A new frame: clear and online again at once.
    score_frame(probe, "a", _colour_jpeg(2))
    probe.wait_for(lambda: probe.last(f"{P}/a/view") == b"clear", 20, "view clear again")
    probe.wait_for(lambda: probe.last(f"{P}/a/status") == b"online", 20, "online again")
    # A grey (infrared) frame reads as night; the nearby scene keeps scoring it.
    attributes = score_frame(probe, "a", SMOKE)
    assert attributes["view"] == "night" and attributes["paused"] is False
    assert [d["reason"] for d in attributes["dropped"]] == ["vote"]
    assert attributes["dropped"][0]["detail"].startswith("1 overlapping boxes over the last 3")


def _colour_jpeg(seed: int) -> bytes:
    # A blue-green gradient (contrast, colour) with a dark centre (the tiny model's box
    # scores under conf_thresh); the seed changes a few pixels so the bytes differ.
    rng = np.random.default_rng(seed)
    image = np.zeros((256, 256, 3), dtype=np.uint8)
    image[:, :, 0] = np.linspace(40, 250, 256, dtype=np.uint8)[None, :]
    image[:, :, 1] = 90
    image[96:160, 96:160] = 4
    image[:8, :8] = rng.integers(0, 255, (8, 8, 3))
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return bytes(encoded.tobytes())
