"""The whole chain in one `smokewatch run` with the bridge on: frames in, API detections out."""

from __future__ import annotations

import time
from pathlib import Path

from tests.detector.broker import Broker
from tests.detector.fake_pyronear import FakePyronear, make_token
from tests.detector.mqtt_helpers import Probe, ServiceProcess
from tests.detector.tiny_model import live, make_tiny_model, smoke_jpeg

P = "smokewatch"


def test_smoke_frames_reach_the_pyronear_api(broker: Broker, tmp_path: Path) -> None:
    api = FakePyronear().start()
    model = make_tiny_model(tmp_path / "tiny.onnx")
    config = tmp_path / "chain.yaml"
    config.write_text(
        f"model: {{path: {model}}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        "detection: {interval: 0.2, nb_frames: 3}\n"
        "cameras: {ridge: {}}\n"
        "bridge:\n"
        "  enabled: true\n"
        f"  url: {api.url}\n"
        f"  outbox: {tmp_path / 'outbox.sqlite3'}\n"
        "  masks_interval: 3600\n"
        f"  cameras: {{ridge: {{token: {make_token(1)}, pose_id: 11}}}}\n"
    )
    probe = Probe(broker.host, broker.port)
    service = ServiceProcess(config, tmp_path / "run.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/bridge/available") == b"online", 30, "bridge")
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 30, "detector")
        for level in (0, 200, 200, 200):
            probe.publish(f"{P}/ridge/image", live(smoke_jpeg(level)))
            time.sleep(0.4)
        # Onset at the third frame sends the 3-frame window, the fourth frame follows.
        probe.wait_for(lambda: len(api.detections) >= 4, 20, "4 detections at the API")
        first = api.detections[0]
        assert first.pose_id == 11 and first.camera_id == 1
        # The clear lead-up frame carries the alert's location with confidence 0.
        assert first.bboxes == "[(0.375,0.375,0.625,0.625,0)]"
        assert api.detections[2].bboxes.startswith("[(0.375,0.375,0.625,0.625,0.5")
        assert probe.last(f"{P}/ridge/smoke") == b"ON"
        assert service.terminate() == 0
        probe.wait_for(
            lambda: probe.last(f"{P}/bridge/available") == b"offline", 5, "bridge offline"
        )
    finally:
        service.close()
        probe.close()
        api.stop()
