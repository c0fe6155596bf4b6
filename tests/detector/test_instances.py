"""Many detectors, one broker: three real `smokewatch run` processes share 30 cameras by hash."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest.mock import ANY

import pytest

from detector.config.instance import owner
from tests.detector.broker import Broker
from tests.detector.mqtt_helpers import Probe, ServiceProcess, write_config
from tests.detector.tiny_model import make_tiny_model, smoke_jpeg

P = "smokewatch"
COUNT = 3
CAMERAS = [f"cam{index:02d}" for index in range(30)]


def start(config: Path, index: int, log: Path) -> ServiceProcess:
    """A detector whose index comes from the environment, as in a StatefulSet."""
    previous = os.environ.get("SMOKEWATCH_INSTANCE_INDEX")
    os.environ["SMOKEWATCH_INSTANCE_INDEX"] = str(index)
    try:
        return ServiceProcess(config, log)
    finally:
        if previous is None:
            del os.environ["SMOKEWATCH_INSTANCE_INDEX"]
        else:
            os.environ["SMOKEWATCH_INSTANCE_INDEX"] = previous


def camera_available(probe: Probe, availability: dict[str, list[str]], camera: str) -> bool:
    """The detector half of the camera's availability (the other half, the camera's own
    status, follows its frames and goes offline by itself between this test's frames)."""
    return probe.last(availability[camera][0]) == b"online"


@pytest.mark.slow
def test_three_detectors_share_thirty_cameras(broker: Broker, tmp_path: Path) -> None:
    tiny = make_tiny_model(tmp_path / "tiny.onnx")
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, dict.fromkeys(CAMERAS, "{}"))
    config.write_text(config.read_text() + f"instance: {{count: {COUNT}, index: auto}}\n")
    owners = {camera: str(owner(camera, COUNT)) for camera in CAMERAS}
    assert set(owners.values()) == {"0", "1", "2"}  # the hash spreads 30 cameras over all 3
    probe = Probe(broker.host, broker.port)
    services = [start(config, i, tmp_path / f"d{i}.log") for i in range(COUNT)]
    try:
        for i in range(COUNT):
            probe.wait_for(
                lambda i=i: probe.last(f"{P}/instance/{i}/available") == b"online", 60, f"d{i}"
            )
        # Discovery: each camera once, its availability on its own detector's topic.
        probe.wait_for(
            lambda: all(
                probe.last(f"homeassistant/binary_sensor/{P}_{c}_smoke/config") for c in CAMERAS
            ),
            30,
            "discovery of every camera",
        )
        availability: dict[str, list[str]] = {}
        for camera in CAMERAS:
            smoke = json.loads(probe.last(f"homeassistant/binary_sensor/{P}_{camera}_smoke/config"))
            availability[camera] = [entry["topic"] for entry in smoke["availability"]]
            assert availability[camera][0] == f"{P}/instance/{owners[camera]}/available"
            assert smoke["device"]["via_device"] == f"{P}_detector_{owners[camera]}"
            assert (
                len(probe.payloads(f"homeassistant/binary_sensor/{P}_{camera}_smoke/config")) == 1
            )
        devices = {
            json.loads(probe.last(f"homeassistant/sensor/{P}_detector_{i}_model/config"))["device"][
                "name"
            ]
            for i in range(COUNT)
        }
        assert devices == {"SmokeWatch 0", "SmokeWatch 1", "SmokeWatch 2"}
        info = json.loads(probe.last(f"{P}/instance/1/info"))
        assert info["instance"] == "1"
        assert info["backend"] == {"backend": "onnxruntime", "providers": ["CPUExecutionProvider"]}

        # One frame per camera: each is scored by exactly one detector, the one the hash names.
        for camera in CAMERAS:
            probe.publish(f"{P}/{camera}/image", smoke_jpeg(0))

        def scored_by() -> dict[str, list[str]] | None:
            seen: dict[str, list[str]] = {camera: [] for camera in CAMERAS}
            for i in range(COUNT):
                stats = probe.last(f"{P}/instance/{i}/stats")
                if stats is None:
                    return None
                for camera, entry in json.loads(stats)["cameras"].items():
                    if entry["scored"]:
                        seen[camera].append(str(i))
            return seen if all(seen.values()) else None

        seen = probe.wait_for(scored_by, 30, "every camera scored")
        assert seen == {camera: [owners[camera]] for camera in CAMERAS}
        assert all(len(probe.payloads(f"{P}/{c}/smoke/attributes")) == 1 for c in CAMERAS)
        assert all(camera_available(probe, availability, c) for c in CAMERAS)

        # kill -9 detector 1: its last will marks only its own cameras unavailable.
        services[1].kill()
        probe.wait_for(
            lambda: probe.last(f"{P}/instance/1/available") == b"offline", 30, "d1's last will"
        )
        down = {c for c in CAMERAS if not camera_available(probe, availability, c)}
        assert down == {c for c in CAMERAS if owners[c] == "1"}
        assert probe.last(f"{P}/instance/0/available") == b"online"

        # Restarted, it takes its cameras back and scores them.
        services[1].close()
        services[1] = start(config, 1, tmp_path / "d1-again.log")
        probe.wait_for(lambda: probe.last(f"{P}/instance/1/available") == b"online", 60, "d1 back")
        probe.wait_for(
            lambda: all(camera_available(probe, availability, c) for c in CAMERAS),
            30,
            "every camera available again",
        )
        back = next(c for c in CAMERAS if owners[c] == "1")
        before = len(probe.payloads(f"{P}/{back}/smoke/attributes"))
        probe.publish(f"{P}/{back}/image", smoke_jpeg(0))
        probe.wait_count(f"{P}/{back}/smoke/attributes", before + 1, 30)
    finally:
        for service in services:
            service.close()
        probe.close()


@pytest.mark.slow
def test_an_added_detector_keeps_the_cameras_it_takes_over(broker: Broker, tmp_path: Path) -> None:
    """From 2 to 3 detectors: the old owner of a moved camera must not remove its entities."""
    tiny = make_tiny_model(tmp_path / "tiny.onnx")
    cameras = CAMERAS[:12]
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, dict.fromkeys(cameras, "{}"))
    base = config.read_text()
    moved = [c for c in cameras if owner(c, 3) == 2]
    assert moved  # rendezvous hashing moves some cameras to the new detector, only those
    assert all(owner(c, 2) == owner(c, 3) for c in cameras if c not in moved)
    probe = Probe(broker.host, broker.port)
    services: list[ServiceProcess] = []

    def run(count: int, index: int) -> None:
        config.write_text(base + f"instance: {{count: {count}, index: auto}}\n")
        services.append(start(config, index, tmp_path / f"d{index}-{count}.log"))
        probe.wait_for(
            lambda: (
                json.loads(probe.last(f"{P}/instance/{index}/info") or b"{}").get("cameras")
                == {c: ANY for c in cameras if owner(c, count) == index}
            ),
            60,
            f"d{index} of {count}",
        )

    try:
        run(2, 0)
        run(2, 1)
        for service in services:
            assert service.terminate() == 0
        run(3, 2)  # the new detector first, then the old ones restart with count 3
        run(3, 0)
        run(3, 1)
        late = Probe(broker.host, broker.port, ("homeassistant/#",))
        try:
            topics = [f"homeassistant/binary_sensor/{P}_{c}_smoke/config" for c in cameras]
            late.wait_for(lambda: all(late.last(t) is not None for t in topics), 10, "retained")
            late.sync()  # a removal published at a restart would be in by now
            assert [c for c, t in zip(cameras, topics, strict=True) if not late.last(t)] == []
        finally:
            late.close()
    finally:
        for service in services:
            service.close()
        probe.close()
