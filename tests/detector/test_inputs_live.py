"""A mixed configuration under a real broker: two MQTT cameras and two polled ones."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.detector.broker import Broker, free_port
from tests.detector.mqtt_helpers import Probe, ServiceProcess
from tests.detector.test_inputs_pollers import FakeServers
from tests.detector.tiny_model import live, make_tiny_model, smoke_jpeg

P = "smokewatch"


@pytest.fixture
def servers() -> FakeServers:
    fake = FakeServers()
    yield fake  # type: ignore[misc]
    fake.close()


def test_mixed_cameras_each_scored_and_failing_source_stale(
    broker: Broker, servers: FakeServers, tmp_path: Path
) -> None:
    model = make_tiny_model(tmp_path / "tiny.onnx")
    dead = f"http://127.0.0.1:{free_port()}/snapshot.jpg"
    config = tmp_path / "mixed.yaml"
    config.write_text(
        f"model: {{path: {model}}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        "detection: {interval: 0.5, nb_frames: 3, stale_after: 2, offline_after: 6}\n"
        "cameras:\n"
        "  mqtt_one: {}\n"
        "  mqtt_two: {}\n"
        "  polled: {source: {type: go2rtc, camera: yard, publish: true, "
        f"url: '{servers.url}'}}}}\n"
        f"  broken: {{source: {{type: http, url: '{dead}', timeout: 0.3}}}}\n"
    )
    probe = Probe(broker.host, broker.port)
    service = ServiceProcess(config, tmp_path / "service.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 30, "online")
        start = time.monotonic()
        # Live cameras never send the same bytes twice; three levels in turn do the same here.
        frames = [smoke_jpeg(level) for level in (38, 40, 42)]
        sent = 0
        while time.monotonic() - start < 4.5:
            frame = frames[sent % len(frames)]
            sent += 1
            probe.client.publish(f"{P}/mqtt_one/image", frame)
            probe.client.publish(f"{P}/mqtt_two/image", frame)
            time.sleep(0.25)  # twice per interval: half of them are dropped, and counted

        def settled() -> dict[str, object] | None:
            raw = probe.last(f"{P}/stats")
            data = json.loads(raw) if raw else None
            return data if data and data["cameras"]["broken"]["status"] != "online" else None

        stats = probe.wait_for(settled, 10, "stats")
        cams = stats["cameras"]
        # 4.5 s at one frame per 0.5 s: about 9 scorings each, never more than the interval allows.
        for camera in ("mqtt_one", "mqtt_two", "polled"):
            assert 6 <= cams[camera]["scored"] <= 11, (camera, cams[camera])
        assert cams["mqtt_one"]["status"] == cams["mqtt_two"]["status"] == "online"
        # The fake go2rtc serves the very same JPEG each time, as a stuck camera would.
        assert cams["polled"]["status"] == "frozen"
        assert cams["mqtt_one"]["dropped"] > 0
        # The polled frame went out on its MQTT topic for other consumers too.
        assert probe.payloads(f"{P}/polled/image")
        # The broken source: errors counted, no frame, only its own camera stale/offline.
        assert cams["broken"]["scored"] == 0
        assert cams["broken"]["errors"]["unreachable"] >= 1
        assert probe.last(f"{P}/broken/status") in (b"offline", b"stale")
        assert probe.last(f"{P}/polled/status") == b"frozen"
        assert probe.last(f"{P}/polled/view") == b"frozen"
        assert service.log().count("Refused input for broken (unreachable)") == 1
    finally:
        service.close()
        probe.close()


def test_alert_creates_and_ends_a_frigate_event(
    broker: Broker, servers: FakeServers, tmp_path: Path
) -> None:
    model = make_tiny_model(tmp_path / "tiny.onnx")
    config = tmp_path / "frigate.yaml"
    config.write_text(
        f"model: {{path: {model}}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        "detection: {interval: 0.2, nb_frames: 2}\n"
        f"cameras: {{yard: {{frigate_events: {{url: '{servers.url}', camera: back}}}}}}\n"
    )
    probe = Probe(broker.host, broker.port)
    service = ServiceProcess(config, tmp_path / "service.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 30, "online")
        for level in (200, 200, 0, 0, 0):
            probe.publish(f"{P}/yard/image", live(smoke_jpeg(level)))
            time.sleep(0.4)
        probe.wait_for(lambda: len(servers.events) >= 2, 10, "event created and ended")
        assert servers.events[0][:2] == ("create", "back/smoke")
        assert servers.events[1][:2] == ("end", "1700000000.1-abc")
    finally:
        service.close()
        probe.close()
