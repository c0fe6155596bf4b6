"""Discovery payloads (detector/service/discovery.py) against what the service really handles."""

from __future__ import annotations

import pytest

from detector.config import validate
from detector.service import discovery
from detector.service.detector_service import DetectorService
from tests.detector.fake_comms import FakeComms, one_camera_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> DetectorService:
    return one_camera_service(tmp_path_factory.mktemp("discovery"))


def test_every_command_entity_has_a_handler(service: DetectorService) -> None:
    payloads = discovery.camera_entities(service.mqtt, service.config.cameras["a"])
    commands = {
        payload["command_topic"].split("/")[-2]
        for payload in payloads.values()
        if "command_topic" in payload
    }
    handled = set(service.commands.setting_commands) | set(service.commands.buttons)
    assert commands <= handled, commands - handled
    # Every button HA can press sends the PRESS the command table waits for.
    for (component, _), payload in payloads.items():
        if component == "button":
            assert payload["payload_press"] == "PRESS"


def test_every_state_topic_is_one_the_service_publishes(service: DetectorService) -> None:
    comms: FakeComms = service.comms  # type: ignore[assignment]
    comms.connect()
    service.run_pending()
    published = {message.topic for message in comms.messages}
    payloads = {
        **discovery.detector_entities(service.mqtt),
        **discovery.camera_entities(service.mqtt, service.config.cameras["a"]),
    }
    # Topics that only carry something once a frame was scored or an alert happened.
    later = {"smokewatch/a/score", "smokewatch/a/alert/image", "smokewatch/a/smoke/attributes"}
    later |= {"smokewatch/a/view", "smokewatch/a/frame", "smokewatch/a/smoke/event"}
    for payload in payloads.values():
        for key in ("state_topic", "json_attributes_topic", "image_topic", "topic"):
            topic = payload.get(key)
            if topic is not None and topic not in later:
                assert topic in published, (key, topic)


def test_noisy_stats_start_disabled_and_status_stays_available() -> None:
    config = validate({"cameras": {"a": {}}})
    detector = discovery.detector_entities(config.mqtt)
    off = {
        uid for (_, uid), payload in detector.items() if payload.get("enabled_by_default") is False
    }
    assert off == {"smokewatch_detector_inference_ms", "smokewatch_detector_frames_dropped"}
    camera = discovery.camera_entities(config.mqtt, config.cameras["a"])
    status = camera[("sensor", "smokewatch_a_status")]
    # The status must stay available to say "offline": only the detector's availability.
    assert [entry["topic"] for entry in status["availability"]] == ["smokewatch/available"]
