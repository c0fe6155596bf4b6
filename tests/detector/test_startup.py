"""Start-up reconciliation (detector/service/startup.py), driven through a fake bus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.service import startup as startup_module
from tests.detector.fake_comms import FakeComms, in_process_service
from tests.detector.tiny_model import make_tiny_model


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"model: {{path: {make_tiny_model(tmp_path / 'tiny.onnx')}}}\n"
        f"false_alarms: {{dir: {tmp_path / 'fa'}}}\n"
        "cameras: {a: {threshold: 0.25}, b: {}}\n"
    )
    return path


def test_restores_settings_and_removes_cameras_that_left(config: Path) -> None:
    service = in_process_service(config)
    comms: FakeComms = service.comms  # type: ignore[assignment]
    previous = {"cameras": {"a": {}, "b": {}, "gone": {}}}
    comms.retained = {
        "smokewatch/info": json.dumps(previous).encode(),
        "smokewatch/a/threshold/state": b"0.6",
        "smokewatch/a/settings": json.dumps(
            {"threshold": {"value": 0.6, "file": 0.25, "source": "run time"}}
        ).encode(),
    }
    startup = service.startup
    comms.connect()
    assert startup.collecting and startup.previous_info == previous
    assert startup.collect(comms, timeout=5)  # the probe's echo ends the window
    startup.restore_settings()
    assert service.cameras["a"].settings.threshold == 0.6
    assert startup.remove_old_cameras() == ["gone"]
    emptied = {m.topic for m in comms.messages if m.retain and m.payload == b""}
    assert "smokewatch/gone/smoke" in emptied and "smokewatch/a/smoke" not in emptied
    # Later messages on these topics (our own publishes echoed) change nothing.
    comms.deliver("smokewatch/a/threshold/state", b"0.9", retain=True)
    startup.restore_settings()
    assert service.cameras["a"].settings.threshold == 0.6


def test_a_camera_moved_to_another_instance_is_not_removed(config: Path) -> None:
    text = config.read_text().replace(
        "cameras: {a: {threshold: 0.25}, b: {}}", "cameras: {a: {}, b: {}, c: {}, d: {}}"
    )
    config.write_text(text + "instance: {count: 2, index: 0}\n")
    service = in_process_service(config)
    comms: FakeComms = service.comms  # type: ignore[assignment]
    mine = set(service.cameras)
    assert mine and mine != {"a", "b", "c", "d"}  # the others are another instance's
    comms.retained = {
        "smokewatch/instance/0/info": json.dumps(
            {"cameras": {name: {} for name in "abcd"}}
        ).encode()
    }
    comms.connect()
    service.startup.collect(comms, timeout=5)
    assert service.startup.remove_old_cameras() == []


def test_without_the_echo_the_window_closes_after_the_timeout(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(startup_module, "RESTORE_TIMEOUT", 0.05)
    service = in_process_service(config)
    comms: FakeComms = service.comms  # type: ignore[assignment]
    comms.echo = False
    assert not service.startup.collect(comms, timeout=startup_module.RESTORE_TIMEOUT)
    assert not service.startup.collecting
