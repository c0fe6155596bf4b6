"""End to end: a real Home Assistant, a real Mosquitto and the real `smokewatch run`.

Home Assistant boots headless on a loopback port, is onboarded over REST, gets its MQTT
entry through the MQTT config flow and the SmokeWatch entry through ours; the detector
scores frames published on the camera topic with the tiny model (a white frame is smoke).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_socket

from tests.detector.broker import Broker, free_port, mosquitto_path

from .harness import (
    MAIN_PYTHON,
    REPO,
    Detector,
    HomeAssistant,
    Probe,
    make_model_and_frames,
    wait_until,
)

pytestmark = pytest.mark.e2e

P = "smokewatch"
SMOKE_SENSOR = "binary_sensor.backyard_cam_smoke"
ALERT_IMAGE = "image.backyard_cam_alert_image"
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


def _requirements() -> None:
    if mosquitto_path() is None:
        pytest.skip("the end-to-end test needs Mosquitto (apt install mosquitto)")
    if not MAIN_PYTHON.exists():
        pytest.skip(f"the end-to-end test needs the detector's venv at {MAIN_PYTHON}")
    if not (REPO / "detector" / "service" / "cli.py").exists():
        pytest.skip("`smokewatch run` (detector/service) is not there yet")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Broker, Home Assistant (onboarded, MQTT set up), the detector and a probe."""
    _requirements()
    pytest_socket.enable_socket()  # set up before the function-scoped fixtures run
    work = tmp_path_factory.mktemp("e2e")
    files = make_model_and_frames(work)
    broker = Broker(kind="mosquitto").start()
    ha = HomeAssistant(work / "ha-config", free_port())
    probe: Probe | None = None
    detector: Detector | None = None
    try:
        ha.start()
        ha.onboard()
        mqtt_entry = ha.flow("mqtt", {"broker": broker.host, "port": broker.port})
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
    """Publish frames one scoring interval apart and wait until each one was scored."""
    topic = f"{P}/backyard/smoke/attributes"
    for _ in range(frames):
        before = probe.count(topic)
        probe.publish(f"{P}/backyard/image", frame)
        wait_until(lambda before=before: probe.count(topic) > before, 20, "the frame's scoring")
        time.sleep(0.25)  # the camera's scoring interval is 0.2 s


def test_smoke_alert_zones_and_availability_in_real_home_assistant(
    chain: dict[str, Any],
) -> None:
    """Smoke turns the sensor on, the alert image is served, a zone masks it, stop → unavailable."""
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

    # Our integration, through its manual config flow (it reads the retained P/info).
    entry = ha.flow("smokewatch", {"prefix": P})
    assert entry["type"] == "create_entry", entry
    assert entry["title"] == "SmokeWatch"

    # A smoke sequence on the camera topic: the vote (3 frames) turns the sensor on.
    publish_sequence(probe, smoke, 4)
    state = ha.wait_state(SMOKE_SENSOR, "on", 30)
    assert state["attributes"]["device_class"] == "smoke"
    assert state["attributes"]["score"] > 25

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

    # An exclusion zone over the whole frame, set through our service over REST; then the
    # alert is acknowledged: the same smoke no longer raises the alarm.
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
    ha.call("smokewatch", "reset_alert", {"entity_id": SMOKE_SENSOR})
    ha.wait_state(SMOKE_SENSOR, "off", 20)
    publish_sequence(probe, smoke, 5)
    assert ha.state(SMOKE_SENSOR)["state"] == "off"
    attributes = json.loads(probe.last(f"{P}/backyard/smoke/attributes") or b"{}")
    assert attributes["boxes"] == []

    # Stopping the detector (its offline message) makes the entities unavailable.
    assert detector.stop() == 0
    ha.wait_state(SMOKE_SENSOR, "unavailable", 30)
    ha.wait_state(ALERT_IMAGE, "unavailable", 30)

    errors = [
        line
        for line in ha.log().splitlines()
        if "smokewatch" in line and (" ERROR " in line or "Traceback" in line)
    ]
    assert errors == []
