"""End to end: a real Home Assistant, a real Mosquitto and the real `smokewatch run`.

Home Assistant boots headless on a loopback port, is onboarded over REST and gets its MQTT
entry through the MQTT config flow; the detector's retained P/info starts our config flow by
MQTT discovery. The detector scores frames published on the camera topic with the tiny model
(a white frame is smoke). Services wait for the detector's answer: a refused "Not smoke" is an
error carrying its reason. Then two detectors share the broker (`instance: {count: 2}`): each
is discovered and added on its own, and one service call reaches a camera of each.
scripts/test-ha.sh runs this module once per HA version.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.config.instance import owner
from tests.detector.broker import Broker, free_port, mosquitto_path
from tests.detector.tiny_model import live

from .harness import (
    HA_COMMAND_VARIABLE,
    MAIN_PYTHON,
    Detector,
    HomeAssistant,
    HttpError,
    Probe,
    ha_python_command,
    make_model_and_frames,
    wait_until,
)

P = "smokewatch"
SMOKE_SENSOR = "binary_sensor.backyard_cam_smoke"
ALERT_IMAGE = "image.backyard_cam_alert_image"
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
SERVICES = {"set_zones", "clear_zones", "reset_alert", "test_alert", "mark_false_alarm"}
# What the detector answers to "Not smoke" when no alert has had boxes yet.
NO_ALERT = "false_alarm: no alert on this camera has boxes to mask yet"
# Home Assistant's REST API answers a ServiceValidationError with its message from 2026.10;
# before, with a bare 500 (the websocket API, which the frontend uses, always has the message).
REST_CARRIES_MESSAGES = (2026, 10)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Broker, Home Assistant (onboarded, MQTT set up), the detector and a probe."""
    python = ha_python_command()
    if python is None:
        pytest.skip(f"{HA_COMMAND_VARIABLE} is not set (scripts/test-ha.sh sets it)")
    if mosquitto_path() is None:
        pytest.skip("the end-to-end test needs Mosquitto (apt install mosquitto)")
    if not MAIN_PYTHON.exists():
        pytest.skip(f"the end-to-end test needs the detector's venv at {MAIN_PYTHON}")
    work = tmp_path_factory.mktemp("e2e")
    files = make_model_and_frames(work)
    broker = Broker(kind="mosquitto").start()
    ha = HomeAssistant(work / "ha-config", free_port(), python)
    probe: Probe | None = None
    detector: Detector | None = None
    try:
        ha.boot()
        wanted = os.environ.get("SMOKEWATCH_E2E_HA_VERSION")
        version = ha.request("GET", "/api/config")["version"]
        assert wanted in (None, version), f"running HA {version}, expected {wanted}"
        release = tuple(int(part) for part in version.split(".")[:2])
        mqtt_entry = ha.mqtt_flow(broker.host, broker.port)
        assert mqtt_entry["type"] == "create_entry", mqtt_entry
        probe = Probe(broker.port, P)
        config = work / "smokewatch.yaml"
        config.write_text(
            "\n".join(
                [
                    f"model: {{path: {files['tiny']}}}",
                    mqtt_config(broker.port),
                    "detection: {interval: 0.2, nb_frames: 3, threshold: 0.25,"
                    " stale_after: 100, offline_after: 500}",
                    "cameras:",
                    "  backyard: {name: Backyard Cam}",
                ]
            )
            + "\n"
        )
        detector = Detector(config, work / "detector.log")
        yield {
            "ha": ha,
            "probe": probe,
            "detector": detector,
            "files": files,
            "work": work,
            "port": broker.port,
            "release": release,
        }
    finally:
        if detector is not None:
            detector.stop()
        if probe is not None:
            probe.close()
        ha.stop()
        broker.close()


def mqtt_config(port: int) -> str:
    """The detectors' `mqtt:` line (a detector instance adds its id to the client id)."""
    return f"mqtt: {{host: 127.0.0.1, port: {port}, client_id: sw-e2e, topic_prefix: {P}}}"


def sent_value(payload: bytes | None) -> tuple[str | None, str | None]:
    """(request id, value) of a command Home Assistant published (a request envelope)."""
    if payload is None:
        return None, None
    envelope = json.loads(payload)
    return envelope["request_id"], envelope["value"]


def answer_to(probe: Probe, camera: str, command: str) -> dict[str, Any]:
    """The detector's answer to the latest command Home Assistant sent to a camera (matched
    by the request id of its envelope), as the probe sees them: Home Assistant had both
    before its service returned, the probe may get them a moment later."""

    def answer() -> dict[str, Any] | None:
        request_id, _ = sent_value(probe.last(f"{P}/{camera}/{command}/set"))
        for payload in reversed(probe.all(f"{P}/{camera}/{command}/result")):
            found: dict[str, Any] = json.loads(payload)
            if request_id is not None and found["request_id"] == request_id:
                return found
        return None

    found: dict[str, Any] = wait_until(answer, 10, f"the answer to {camera}'s {command}")
    return found


def wait_for_zones(probe: Probe, wanted: Callable[[list[dict[str, Any]]], bool]) -> None:
    """Wait until the camera's local zones (its retained masks state) are as wanted."""

    def zones_as_wanted() -> bool:
        return wanted(json.loads(probe.last(f"{P}/backyard/masks/state") or b"[]"))

    wait_until(zones_as_wanted, 10, "the camera's zones")


def publish_sequence(probe: Probe, frame: bytes, frames: int) -> None:
    """Publish frames one scoring interval apart and wait until each one was scored; each is a
    new capture of `frame` (`live`), as a live camera sends: the same bytes again would be a
    frozen camera's repeat, which is not voted on."""
    topic = f"{P}/backyard/smoke/attributes"
    for _ in range(frames):
        before = probe.count(topic)
        probe.publish(f"{P}/backyard/image", live(frame))
        wait_until(lambda before=before: probe.count(topic) > before, 20, "the frame's scoring")
        time.sleep(0.25)  # the camera's scoring interval is 0.2 s


def discovered_flow(ha: HomeAssistant) -> dict[str, Any] | None:
    """Our flow in progress that MQTT discovery started, if any (listed over the websocket)."""
    for flow in ha.ws({"type": "config_entries/flow/progress"}):
        if flow["handler"] == "smokewatch" and flow["context"].get("source") == "mqtt":
            return dict(flow)
    return None


def add_automation(ha: HomeAssistant, automation_id: str, trigger: dict[str, Any]) -> str:
    """Save an automation through HA's automation editor API; its entity id once loaded."""
    ha.request(
        "POST",
        f"/api/config/automation/config/{automation_id}",
        {
            "id": automation_id,
            "alias": f"e2e {automation_id}",
            "triggers": [trigger],
            "actions": [{"event": "smokewatch_e2e", "event_data": {"id": automation_id}}],
        },
    )
    entity_id = f"automation.e2e_{automation_id}"
    wait_until(lambda: ha.state(entity_id), 30, f"{entity_id} loaded")
    return entity_id


def last_triggered(ha: HomeAssistant, entity_id: str) -> str | None:
    """When an automation last fired (None: never)."""
    state = ha.state(entity_id)
    return None if state is None else state["attributes"].get("last_triggered")


def test_home_assistant_end_to_end(chain: dict[str, Any]) -> None:
    """Discovery flow, services, device triggers, smoke on, zones, test alert, clean log."""
    ha: HomeAssistant = chain["ha"]
    probe: Probe = chain["probe"]
    detector: Detector = chain["detector"]
    smoke = Path(chain["files"]["smoke"]).read_bytes()
    clear = Path(chain["files"]["clear"]).read_bytes()

    # Discovery gave HA the camera's entities; they stay unavailable until the camera's
    # first frame, which is clear: no smoke.
    try:
        wait_until(lambda: ha.state(SMOKE_SENSOR), 60, f"{SMOKE_SENSOR} discovered")
    except TimeoutError:
        pytest.fail(f"no {SMOKE_SENSOR}:\n{detector.log()[-3000:]}\n{ha.log()[-3000:]}")
    publish_sequence(probe, clear, 1)
    ha.wait_state(SMOKE_SENSOR, "off", 30)

    # The detector's retained P/info started our flow by MQTT discovery; confirming it
    # creates the entry.
    try:
        flow = wait_until(lambda: discovered_flow(ha), 60, "the discovered SmokeWatch flow")
    except TimeoutError:
        pytest.fail(f"no discovered flow; HA's log:\n{ha.log()[-4000:]}")
    entry = ha.continue_flow(flow | {"type": "form"}, {})
    assert entry["type"] == "create_entry", entry
    assert entry["title"] == "SmokeWatch"

    # The services exist.
    domains = {d["domain"]: d["services"] for d in ha.request("GET", "/api/services")}
    assert set(domains.get("smokewatch", {})) >= SERVICES, domains.get("smokewatch")

    # "Not smoke" with no alert: the detector refuses it, and the caller reads its reason.
    with pytest.raises(HttpError) as rest:
        ha.call("smokewatch", "mark_false_alarm", {"entity_id": SMOKE_SENSOR})
    if chain["release"] >= REST_CARRIES_MESSAGES:
        assert rest.value.status == 400 and NO_ALERT in rest.value.body, rest.value
    else:
        assert rest.value.status == 500, rest.value
    with pytest.raises(HttpError) as ws:
        ha.ws(
            {
                "type": "call_service",
                "domain": "smokewatch",
                "service": "mark_false_alarm",
                "target": {"entity_id": SMOKE_SENSOR},
            }
        )
    error = json.loads(ws.value.body)["error"]
    assert error["code"] == "service_validation_error" and NO_ALERT in error["message"], error
    answer = answer_to(probe, "backyard", "false_alarm")
    assert (answer["ok"], answer["reason"]) == (False, NO_ALERT)

    # The camera device offers the "Smoke alert" started / ended triggers (MQTT discovery).
    device_id = ha.template(f"{{{{ device_id('{SMOKE_SENSOR}') }}}}")
    assert device_id and device_id != "None"
    triggers = ha.ws({"type": "device_automation/trigger/list", "device_id": device_id})
    offered = {(t.get("subtype"), t.get("type")): t for t in triggers}
    assert ("Smoke alert", "started") in offered and ("Smoke alert", "ended") in offered, triggers
    started = add_automation(ha, "smoke_started", offered[("Smoke alert", "started")])
    ended = add_automation(ha, "smoke_ended", offered[("Smoke alert", "ended")])
    assert last_triggered(ha, started) is None and last_triggered(ha, ended) is None

    # A smoke sequence on the camera topic: the vote (3 frames) turns the sensor on and the
    # "started" automation fires.
    publish_sequence(probe, smoke, 4)
    state = ha.wait_state(SMOKE_SENSOR, "on", 30)
    assert state["attributes"]["device_class"] == "smoke"
    assert state["attributes"]["score"] > 25
    wait_until(lambda: last_triggered(ha, started), 20, "the 'Smoke alert started' automation")
    assert last_triggered(ha, ended) is None

    # HA serves the annotated alert image the detector published.
    def alert_image() -> tuple[bytes, str] | None:
        image = ha.state(ALERT_IMAGE)
        if image is None or image["state"] in ("unknown", "unavailable"):
            return None
        body, content_type = ha.request("GET", f"/api/image_proxy/{ALERT_IMAGE}", raw=True)
        return (body, content_type) if body else None

    body, content_type = wait_until(alert_image, 30, "the alert image in HA")
    assert content_type == "image/jpeg"
    assert body[:2] == b"\xff\xd8"

    # "Not smoke" during the alert: done (the service returns once the detector said so),
    # the alert ends ("ended" fires) and its box is now a zone.
    ha.call("smokewatch", "mark_false_alarm", {"device_id": device_id})
    assert answer_to(probe, "backyard", "false_alarm")["ok"] is True
    ha.wait_state(SMOKE_SENSOR, "off", 20)
    wait_until(lambda: last_triggered(ha, ended), 20, "the 'Smoke alert ended' automation")
    wait_for_zones(probe, lambda zones: [z["name"][:10] for z in zones] == ["not smoke "])

    # An exclusion zone over the whole frame, set through our service on the camera's
    # entity (it replaces the zones set from HA), then an acknowledgement on the device: the
    # same smoke no longer raises the alarm.
    ha.call(
        "smokewatch",
        "set_zones",
        {"entity_id": SMOKE_SENSOR, "zones": [{"name": "everything", "polygon": WHOLE_FRAME}]},
    )
    assert answer_to(probe, "backyard", "masks")["ok"] is True
    wait_for_zones(probe, lambda zones: [zone["name"] for zone in zones] == ["everything"])
    ha.call("smokewatch", "reset_alert", {"device_id": device_id})
    assert answer_to(probe, "backyard", "reset")["ok"] is True
    assert sent_value(probe.last(f"{P}/backyard/reset/set"))[1] == "PRESS"
    publish_sequence(probe, smoke, 5)
    assert ha.state(SMOKE_SENSOR)["state"] == "off"
    attributes = json.loads(probe.last(f"{P}/backyard/smoke/attributes") or b"{}")
    assert attributes["boxes"] == []

    # The other services; the test alert goes through the real outputs, flagged as a test.
    ha.call("smokewatch", "clear_zones", {"device_id": device_id})
    assert answer_to(probe, "backyard", "masks")["ok"] is True
    wait_for_zones(probe, lambda zones: zones == [])
    ha.call("smokewatch", "test_alert", {"device_id": device_id})
    assert answer_to(probe, "backyard", "test")["ok"] is True
    state = ha.wait_state(SMOKE_SENSOR, "on", 20)
    assert state["attributes"]["test"] is True

    # The threshold shows in % like the score; 40 % set in HA reaches the detector as 0.4, and
    # "Use file settings" goes back to the file's 0.25.
    number = "number.backyard_cam_smoke_threshold"

    def threshold_in_ha() -> float | None:
        state = ha.state(number)
        try:
            return None if state is None else float(state["state"])
        except ValueError:
            return None

    assert wait_until(threshold_in_ha, 20, "the threshold in HA") == 25
    assert ha.state(number)["attributes"]["unit_of_measurement"] == "%"
    ha.call("number", "set_value", {"entity_id": number, "value": 40})
    wait_until(lambda: probe.last(f"{P}/backyard/threshold/state") == b"0.4", 20, "0.4 set")
    wait_until(lambda: threshold_in_ha() == 40, 20, "40 % in HA")
    assert ha.state(number)["attributes"]["threshold"]["source"] == "run time"
    ha.call("button", "press", {"entity_id": "button.backyard_cam_use_file_settings"})
    wait_until(lambda: probe.last(f"{P}/backyard/threshold/state") == b"0.25", 20, "file's")
    wait_until(lambda: threshold_in_ha() == 25, 20, "25 % in HA again")
    # The stats that change every interval start disabled: HA holds no state for them.
    registered = ha.ws(
        {"type": "config/entity_registry/get", "entity_id": "sensor.smokewatch_inference_time"}
    )
    assert registered["disabled_by"] == "integration", registered
    assert ha.state("sensor.smokewatch_inference_time") is None

    # Stopping the detector (its offline message) makes the entities unavailable.
    assert detector.stop() == 0
    ha.wait_state(SMOKE_SENSOR, "unavailable", 30)
    ha.wait_state(ALERT_IMAGE, "unavailable", 30)

    assert unexpected_problems(ha) == []
    assert ha.setup_failures() == []


def unexpected_problems(ha: HomeAssistant) -> list[str]:
    """Warnings and errors naming SmokeWatch, but those of the refused "Not smoke" this test
    asks for (HA logs a service's refusal with its message)."""
    return [line for line in ha.problems_naming("smokewatch") if NO_ALERT not in line]


def shard_cameras() -> dict[int, str]:
    """A camera id for each of two detectors sharing a config (the detector's own rendezvous
    hash decides which one scores which camera)."""
    cameras: dict[int, str] = {}
    for camera in ("north", "south", "east", "west", "valley", "ridge", "lake", "road"):
        cameras.setdefault(owner(camera, 2), camera)
    assert set(cameras) == {0, 1}, cameras
    return cameras


def test_sharded_detectors_one_click_each(chain: dict[str, Any]) -> None:
    """Two detectors share the broker and the prefix (`instance: {count: 2}`): each is found
    by MQTT discovery and added with its own click, and one service call reaches a camera of
    each, each detector answering for its own."""
    ha: HomeAssistant = chain["ha"]
    probe: Probe = chain["probe"]
    work: Path = chain["work"]
    cameras = shard_cameras()
    detectors = []
    try:
        for index in (0, 1):
            config = work / f"shard-{index}.yaml"
            config.write_text(
                "\n".join(
                    [
                        f"model: {{path: {chain['files']['tiny']}}}",
                        mqtt_config(chain["port"]),
                        f"instance: {{count: 2, index: {index}}}",
                        "cameras:",
                        *(f"  {camera}: {{name: {camera.title()}}}" for camera in cameras.values()),
                    ]
                )
                + "\n"
            )
            detectors.append(Detector(config, work / f"shard-{index}.log"))

        def instance_flows() -> dict[str, dict[str, Any]] | None:
            flows = {
                flow["context"].get("unique_id"): dict(flow)
                for flow in ha.ws({"type": "config_entries/flow/progress"})
                if flow["handler"] == "smokewatch" and flow["context"].get("source") == "mqtt"
            }
            wanted = {f"{P}/instance/{index}" for index in (0, 1)}
            return flows if wanted <= set(flows) else None

        try:
            flows = wait_until(instance_flows, 60, "a discovered flow for each detector")
        except TimeoutError:
            logs = "\n".join(detector.log()[-2000:] for detector in detectors)
            pytest.fail(f"not both detectors discovered:\n{logs}\n{ha.log()[-3000:]}")
        for index in (0, 1):
            entry = ha.continue_flow(flows[f"{P}/instance/{index}"] | {"type": "form"}, {})
            assert (entry["type"], entry["title"]) == ("create_entry", f"SmokeWatch {index}")
        entries = ha.request("GET", "/api/config/config_entries/entry?domain=smokewatch")
        assert {e["title"] for e in entries} >= {"SmokeWatch", "SmokeWatch 0", "SmokeWatch 1"}

        sensors = [f"binary_sensor.{camera}_smoke" for camera in cameras.values()]
        for sensor in sensors:
            wait_until(lambda sensor=sensor: ha.state(sensor), 30, f"{sensor} discovered")
        ha.call("smokewatch", "reset_alert", {"entity_id": sensors})
        for camera in cameras.values():
            assert answer_to(probe, camera, "reset")["ok"] is True, camera
        for index, detector in enumerate(detectors):
            assert detector.stop() == 0, f"detector {index}"
    finally:
        for detector in detectors:
            detector.stop()
    assert unexpected_problems(ha) == []
