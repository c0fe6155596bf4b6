"""End to end: a real Home Assistant, a real Mosquitto and the real `smokewatch run`.

Home Assistant boots headless on a loopback port, is onboarded over REST and gets its MQTT
entry through the MQTT config flow; the detector's retained P/info starts our config flow by
MQTT discovery. The detector scores frames published on the camera topic with the tiny model
(a white frame is smoke). scripts/test-ha.sh runs this module once per HA version.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.detector.broker import Broker, free_port, mosquitto_path
from tests.detector.tiny_model import live

from .harness import (
    HA_COMMAND_VARIABLE,
    MAIN_PYTHON,
    Detector,
    HomeAssistant,
    Probe,
    ha_python_command,
    make_model_and_frames,
    wait_until,
)

P = "smokewatch"
SMOKE_SENSOR = "binary_sensor.backyard_cam_smoke"
ALERT_IMAGE = "image.backyard_cam_alert_image"
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
SERVICES = {"set_zones", "clear_zones", "reset_alert", "test_alert"}


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
        mqtt_entry = ha.mqtt_flow(broker.host, broker.port)
        assert mqtt_entry["type"] == "create_entry", mqtt_entry
        probe = Probe(broker.port, P)
        config = work / "smokewatch.yaml"
        config.write_text(
            "\n".join(
                [
                    f"model: {{path: {files['tiny']}}}",
                    f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: sw-e2e,"
                    f" topic_prefix: {P}}}",
                    "detection: {interval: 0.2, nb_frames: 3, threshold: 0.25,"
                    " stale_after: 100, offline_after: 500}",
                    "cameras:",
                    "  backyard: {name: Backyard Cam}",
                ]
            )
            + "\n"
        )
        detector = Detector(config, work / "detector.log")
        yield {"ha": ha, "probe": probe, "detector": detector, "files": files, "work": work}
    finally:
        if detector is not None:
            detector.stop()
        if probe is not None:
            probe.close()
        ha.stop()
        broker.close()


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

    # An exclusion zone over the whole frame, set through our service on the camera's
    # entity; then the alert is acknowledged on the device: the alert ends ("ended" fires)
    # and the same smoke no longer raises the alarm.
    ha.call(
        "smokewatch",
        "set_zones",
        {"entity_id": SMOKE_SENSOR, "zones": [{"name": "everything", "polygon": WHOLE_FRAME}]},
    )
    wait_until(
        lambda: (
            (last := probe.last(f"{P}/backyard/masks/state"))
            and json.loads(last)
            and json.loads(last)[0]["name"] == "everything"
        ),
        20,
        "the detector's masks state",
    )
    ha.call("smokewatch", "reset_alert", {"device_id": device_id})
    # The service has published once it returns; the probe's copy arrives through the broker.
    wait_until(lambda: probe.last(f"{P}/backyard/reset/set") == b"PRESS", 20, "reset_alert")
    ha.wait_state(SMOKE_SENSOR, "off", 20)
    wait_until(lambda: last_triggered(ha, ended), 20, "the 'Smoke alert ended' automation")
    publish_sequence(probe, smoke, 5)
    assert ha.state(SMOKE_SENSOR)["state"] == "off"
    attributes = json.loads(probe.last(f"{P}/backyard/smoke/attributes") or b"{}")
    assert attributes["boxes"] == []

    # The other services publish their commands; the test alert goes through the real
    # outputs, flagged as a test.
    ha.call("smokewatch", "clear_zones", {"device_id": device_id})
    wait_until(lambda: probe.last(f"{P}/backyard/masks/set") == b"[]", 20, "clear_zones")
    ha.call("smokewatch", "test_alert", {"device_id": device_id})
    wait_until(lambda: probe.last(f"{P}/backyard/test/set") == b"PRESS", 20, "test_alert")
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

    assert ha.problems_naming("smokewatch") == []
    assert ha.setup_failures() == []
