"""'Not smoke' and the zone card's inputs: the masks made of an alert's boxes, the masks
attributes, and the latest scored frame, through the real `smokewatch run` and broker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector.masks import Mask
from detector.service.false_alarm import FalseAlarm, false_alarm_masks, masks_attributes
from tests.detector.broker import Broker
from tests.detector.mqtt_helpers import Probe, ServiceProcess, score_frame, write_config
from tests.detector.test_masks import apply_masks
from tests.detector.tiny_model import smoke_jpeg

SMOKE, CLEAR = smoke_jpeg(200), smoke_jpeg(0)
P = "smokewatch"
WHEN = time.mktime((2026, 7, 1, 12, 15, 0, 0, 0, -1))


def test_each_box_becomes_an_iou_rectangle_named_with_the_date() -> None:
    boxes = [[0.1, 0.2, 0.3, 0.4, 0.8], [0.6, 0.6, 0.9, 0.95, 0.5]]
    masks = false_alarm_masks(boxes, ["not smoke 2026-07-01 12:15", "chimney"], WHEN)
    assert [mask.name for mask in masks] == [
        "not smoke 2026-07-01 12:15 #2",
        "not smoke 2026-07-01 12:15 #3",
    ]
    assert all(mask.rule == "iou" and mask.enabled for mask in masks)
    assert masks[0].bounds == (0.1, 0.2, 0.3, 0.4)
    assert masks[1].bounds == (0.6, 0.6, 0.9, 0.95)


def test_a_false_alarm_mask_drops_a_look_alike_and_keeps_a_large_plume() -> None:
    (mask,) = false_alarm_masks([[0.40, 0.40, 0.50, 0.50]], [], WHEN)
    same_place = [0.41, 0.40, 0.51, 0.50, 0.6]
    large_plume = [0.10, 0.10, 0.90, 0.90, 0.6]  # covers the mask, IoU 0.016
    elsewhere = [0.70, 0.10, 0.80, 0.20, 0.6]
    boxes = np.array([same_place, large_plume, elsewhere], dtype=np.float32)
    kept = apply_masks(boxes, [mask])
    np.testing.assert_allclose(kept, [large_plume, elsewhere], atol=1e-6)


def test_boxes_without_area_make_no_mask_and_coordinates_are_clipped() -> None:
    masks = false_alarm_masks([[0.5, 0.5, 0.5, 0.7], [-0.01, 0.2, 0.3, 1.02]], [], WHEN)
    assert [mask.bounds for mask in masks] == [(0.0, 0.2, 0.3, 1.0)]


def test_masks_attributes_separate_local_remote_and_events() -> None:
    local = [Mask.rect("chimney", 0.1, 0.1, 0.2, 0.2)]
    remote = [Mask.rect("remote-7", 0.5, 0.5, 0.6, 0.6, "iou")]
    events = [FalseAlarm(WHEN + i, None, (f"m{i}",), ((0.1, 0.1, 0.2, 0.2),)) for i in range(12)]
    data = masks_attributes(local, remote, events)
    assert [m["name"] for m in data["local"]] == ["chimney"]
    assert data["remote"][0]["rule"] == "iou" and data["remote"][0]["name"] == "remote-7"
    assert [e["masks"] for e in data["false_alarms"]] == [[f"m{i}"] for i in range(2, 12)]


@pytest.fixture
def env(broker: Broker, tiny: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    probe = Probe(broker.host, broker.port)
    config = write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"})
    service = ServiceProcess(config, tmp_path / "service.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 30, "online")
        probe.wait_for(lambda: probe.last(f"{P}/a/masks/attributes"), 10, "masks attributes")
        yield {"probe": probe, "service": service}
    finally:
        service.close()
        probe.close()


def _masks(probe: Probe) -> dict[str, Any]:
    return json.loads(probe.last(f"{P}/a/masks/attributes") or b"{}")  # type: ignore[no-any-return]


def test_not_smoke_masks_the_alert_ends_it_and_the_next_sequence_stays_off(
    env: dict[str, Any],
) -> None:
    probe: Probe = env["probe"]
    probe.publish(f"{P}/a/masks/set", json.dumps([{"name": "road", "rect": [0, 0.9, 1, 1]}]))
    probe.wait_for(lambda: len(_masks(probe)["local"]) == 1, 20, "road mask")
    # Nothing to dismiss before any alert: refused with the reason, nothing masked.
    probe.publish(f"{P}/a/false_alarm/set", "PRESS")
    probe.wait_for(lambda: "no alert on this camera" in env["service"].log(), 20, "refusal")
    for _ in range(3):
        score_frame(probe, "a", SMOKE)
    probe.wait_for(lambda: probe.last(f"{P}/a/smoke") == b"ON", 20, "smoke ON")
    probe.publish(f"{P}/a/false_alarm/set", "PRESS")
    probe.wait_for(lambda: probe.last(f"{P}/a/smoke") == b"OFF", 20, "the alert ends")
    masks = probe.wait_for(lambda: len(_masks(probe)["local"]) == 2 and _masks(probe), 20, "zone")
    added = masks["local"][1]
    assert added["name"].startswith("not smoke 20") and added["rule"] == "iou"
    # The tiny model's box on a square frame.
    np.testing.assert_allclose(
        added["polygon"],
        [[0.375, 0.375], [0.625, 0.375], [0.625, 0.625], [0.375, 0.625]],
        atol=1e-3,
    )
    assert masks["false_alarms"][-1]["masks"] == [added["name"]]
    state = json.loads(probe.last(f"{P}/a/masks/state") or b"[]")
    assert [m["name"] for m in state] == ["road", added["name"]]  # listed like any zone
    attributes = json.loads(probe.last(f"{P}/a/smoke/attributes") or b"{}")
    assert attributes["false_alarm"]["masks"] == [added["name"]]
    # The next smoke sequence on this camera stays off: its boxes fall in the new mask.
    for _ in range(4):
        attributes = score_frame(probe, "a", SMOKE)
        assert attributes["boxes"] == []
        assert attributes["false_alarm"]["masks"] == [added["name"]]
    assert {d["reason"] for d in attributes["dropped"]} == {"mask"}
    assert probe.last(f"{P}/a/smoke") == b"OFF"
    # Removable like any other zone.
    probe.publish(f"{P}/a/masks/set", json.dumps(state[:1]))
    probe.wait_for(lambda: len(_masks(probe)["local"]) == 1, 20, "zone removed")


def test_scored_frame_published_at_a_bounded_rate(env: dict[str, Any]) -> None:
    probe: Probe = env["probe"]
    frames = [smoke_jpeg(level) for level in (10, 20, 30, 40)]
    for frame in frames:
        score_frame(probe, "a", frame, new_capture=False)  # four levels: four new frames
    # The first scored frame goes out as it was received; the next three fall within the
    # 30 s period and are not sent.
    assert probe.payloads(f"{P}/a/frame") == [frames[0]]
