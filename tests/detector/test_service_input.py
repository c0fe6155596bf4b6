"""What `smokewatch run` does with commands, masks and cameras that come and go."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.bridge.api_masks import translate_api_masks
from detector.service.settings import MASKS_MAX_BYTES
from tests.detector.broker import Broker
from tests.detector.mqtt_helpers import (
    Probe,
    ServiceProcess,
    newest_stats,
    score_frame,
    write_config,
)
from tests.detector.tiny_model import smoke_jpeg

P = "smokewatch"
SMOKE, CLEAR = smoke_jpeg(200), smoke_jpeg(0)
SETTINGS = ("enabled", "threshold", "masks")


@pytest.fixture
def env(broker: Broker, tiny: Path, tmp_path: Path) -> Iterator[tuple[Probe, ServiceProcess]]:
    """Cameras a and b (b goes stale after 2 intervals and offline after 4)."""
    probe = Probe(broker.host, broker.port)
    config = write_config(
        tmp_path / "c.yaml",
        broker.port,
        tiny,
        {"a": "{}", "b": "{stale_after: 2, offline_after: 4}"},
    )
    service = ServiceProcess(config, tmp_path / "service.log")
    try:
        probe.wait_for(lambda: probe.last(f"{P}/b/masks/state"), 30, "started")
        yield probe, service
    finally:
        service.close()
        probe.close()


def test_every_set_topic_refuses_garbage(env: tuple[Probe, ServiceProcess]) -> None:
    probe, service = env
    states = {key: probe.last(f"{P}/a/{key}/state") for key in SETTINGS}
    garbage = [b'{"oops', b"\xff\xfe\x00\x01", b"[1, 2", b"null", b""]
    commands = (*SETTINGS, "reset", "test")
    refused = 0
    for payload in garbage:
        # One round at a time: a setting's newer value replaces one still waiting to run.
        for command in commands:
            probe.publish(f"{P}/a/{command}/set", payload)
        # masks takes an empty payload as "clear" (what HA's text entity sends).
        refused += len(commands) - (payload == b"")
        data = newest_stats(probe, lambda s, n=refused: s["rejected"].get("bad_command", 0) >= n)
    time.sleep(0.6)  # one more stats period: nothing else is counted late
    data = newest_stats(probe, bool)
    assert data["rejected"]["bad_command"] == refused
    assert data["cameras"]["a"]["errors"]["bad_command"] == refused
    # Nothing changed: the states are what they were, no alert was raised or reset.
    for key in SETTINGS:
        assert probe.last(f"{P}/a/{key}/state") == states[key]
    assert probe.payloads(f"{P}/a/smoke") == [b"OFF"]
    log = service.log()
    # Each command topic is logged once, with the reason.
    for command in commands:
        assert log.count(f"Refused input for a (bad_command): {command}") == 1, command
    assert "reset: expected PRESS, got '{\"oops'" in log
    assert "masks (command): masks are not valid JSON" in log
    # The service is still up and scoring.
    assert service.process.poll() is None
    assert score_frame(probe, "a", SMOKE)["score"] == 0.0


def test_remote_masks_from_the_bridge(env: tuple[Probe, ServiceProcess]) -> None:
    probe, service = env
    score_frame(probe, "a", SMOKE)
    assert score_frame(probe, "a", SMOKE)["boxes"]  # two of three frames: the vote's box
    # API masks use Pyronear's rule: IoU with the box (0.375..0.625) above 0.1 drops it. The
    # bridge publishes them in the detector's mask JSON (what its translation gives).
    remote = translate_api_masks([{"id": 1, "mask": "(0.3,0.3,0.7,0.7)"}]).masks
    probe.publish(f"{P}/a/masks/remote", json.dumps(remote))
    probe.wait_for(lambda: not score_frame(probe, "a", SMOKE)["boxes"], 20, "box under remote mask")
    attributes = json.loads(probe.last(f"{P}/a/masks/attributes") or b"{}")
    assert [mask["name"] for mask in attributes["remote"]] == ["remote-1"]
    # What an older bridge left retained on the broker: the API's own strings, refused.
    probe.publish(f"{P}/a/masks/remote", json.dumps([{"id": 1, "mask": "(0.3,0.3,0.7,0.7)"}]))
    probe.publish(f"{P}/a/masks/remote", b"not json")
    data = newest_stats(probe, lambda s: s["rejected"].get("bad_remote_masks") == 2)
    assert data["rejected"]["bad_remote_masks"] == 2
    assert score_frame(probe, "a", SMOKE)["boxes"] == []  # the previous masks stay
    log = service.log()
    assert "(bad_remote_masks): masks[0]: unknown key(s) id, mask; the previous remote" in log
    assert "replaced at the upgraded bridge's first masks fetch" in log


def test_disabled_camera_stays_available_and_is_not_scored(
    env: tuple[Probe, ServiceProcess],
) -> None:
    probe, _service = env
    score_frame(probe, "b", CLEAR)
    probe.wait_for(lambda: probe.last(f"{P}/b/status") == b"online", 20, "b online")
    probe.publish(f"{P}/b/enabled/set", "OFF")
    probe.wait_for(lambda: probe.last(f"{P}/b/enabled/state") == b"OFF", 20, "disabled")
    scored = len(probe.payloads(f"{P}/b/smoke/attributes"))
    for _ in range(8):  # 1.6 s: twice b's offline_after of 4 intervals
        probe.publish(f"{P}/b/image", SMOKE)
        time.sleep(0.2)
    assert len(probe.payloads(f"{P}/b/smoke/attributes")) == scored
    # Still sending, so still online: the Detection switch stays usable in HA.
    assert probe.payloads(f"{P}/b/status")[-1] == b"online"
    probe.publish(f"{P}/b/enabled/set", "ON")
    probe.wait_for(lambda: probe.last(f"{P}/b/enabled/state") == b"ON", 20, "enabled")
    assert score_frame(probe, "b", SMOKE)["score"] == 0.0


def test_camera_health_and_stats_shape(env: tuple[Probe, ServiceProcess]) -> None:
    probe, _service = env
    score_frame(probe, "b", CLEAR)
    # b: stale after 2 intervals (0.4 s) without a frame, offline after 4 (0.8 s).
    # The status before the frame may itself be offline: wait for the whole transition.
    probe.wait_for(
        lambda: probe.payloads(f"{P}/b/status")[-3:] == [b"online", b"stale", b"offline"],
        5,
        "b online, then stale, then offline",
    )
    data = newest_stats(probe, lambda s: s["cameras"]["b"]["scored"] >= 1)
    assert set(data) >= {"uptime", "inference_ms", "frames_dropped", "cameras", "rejected"}
    assert set(data["cameras"]["b"]) >= {
        "frames_in",
        "scored",
        "dropped",
        "errors",
        "last_score",
        "last_scored_at",
    }
    assert data["cameras"]["b"]["last_scored_at"].endswith("Z")
    assert isinstance(data["inference_ms"], float)


def test_unknown_camera_logged_once_counted_always(env: tuple[Probe, ServiceProcess]) -> None:
    probe, service = env
    for _ in range(3):
        probe.publish(f"{P}/ghost/image", SMOKE)
    data = newest_stats(probe, lambda s: s["rejected"].get("unknown_camera", 0) >= 3)
    assert data["rejected"]["unknown_camera"] == 3
    assert "ghost" not in data["cameras"]
    assert service.log().count("Refused input for ghost (unknown_camera)") == 1


def test_a_camera_sending_only_garbage_is_never_online(env: tuple[Probe, ServiceProcess]) -> None:
    """A blind camera was `online` for a moment after each frame arrived, and its frames counted
    as scored: until one of its frames is scored, its status does not say online, and refused
    frames are not counted as scored."""
    probe, _service = env
    for _ in range(6):
        probe.publish(f"{P}/a/image", b"not a picture at all")
        time.sleep(0.25)  # one interval: each frame is looked at
    data = newest_stats(probe, lambda s: s["cameras"]["a"]["errors"].get("not_an_image", 0) >= 6)
    assert data["cameras"]["a"]["scored"] == 0 and data["cameras"]["a"]["frames_in"] == 6
    assert b"online" not in probe.payloads(f"{P}/a/status")
    assert probe.last(f"{P}/a/status") == b"refused"


def test_a_disabled_camera_sending_garbage_shows_it(env: tuple[Probe, ServiceProcess]) -> None:
    probe, _service = env
    probe.publish(f"{P}/a/enabled/set", "OFF")
    probe.wait_for(lambda: probe.last(f"{P}/a/enabled/state") == b"OFF", 20, "disabled")
    probe.publish(f"{P}/a/image", b"garbage")
    probe.wait_for(lambda: probe.last(f"{P}/a/status") == b"refused", 20, "refused")
    assert probe.payloads(f"{P}/a/smoke/attributes") == []  # checked, never scored


def test_a_flood_of_made_up_cameras_does_not_hide_a_real_camera_s_problem(
    env: tuple[Probe, ServiceProcess],
) -> None:
    """After ~1000 made-up camera names the refusals of real cameras were no longer logged."""
    probe, service = env
    for index in range(1200):
        probe.publish(f"{P}/ghost{index}/image", b"x", qos=0)
    newest_stats(probe, lambda s: s["rejected"].get("unknown_camera", 0) >= 1200)
    probe.publish(f"{P}/a/image", b"not a picture at all")
    probe.wait_for(
        lambda: "Refused input for a (not_an_image)" in service.log(), 10, "a's refusal logged"
    )
    # The made-up names share one entry of the log's bookkeeping: one line, then summaries.
    assert service.log().count("(unknown_camera)") == 1


def max_size_masks(tag: int) -> str:
    """50 zones of 85 points (a convex ring each): close to the largest masks command allowed
    (MASKS_MAX_BYTES, 64 KiB), the most expensive one to check."""
    zones = []
    for zone in range(50):
        cx, cy = 0.1 + 0.8 * (zone % 10) / 9, 0.1 + 0.8 * (zone // 10) / 4
        ring = [
            [
                round(cx + 0.04 * math.cos(2 * math.pi * k / 85), 3),
                round(cy + 0.04 * math.sin(2 * math.pi * k / 85), 3),
            ]
            for k in range(85)
        ]
        zones.append({"name": f"z{tag}-{zone}", "polygon": ring})
    payload = json.dumps(zones, separators=(",", ":"))
    assert 50_000 < len(payload) <= MASKS_MAX_BYTES
    return payload


def test_a_flood_of_large_masks_commands_does_not_delay_the_next_command(
    env: tuple[Probe, ServiceProcess],
) -> None:
    """200 max-size masks/set commands delayed a later command by 42 s: each was parsed and
    applied in turn. A newer value of a setting replaces the one still waiting."""
    probe, _service = env
    for tag in range(200):
        probe.publish(f"{P}/a/masks/set", max_size_masks(tag), qos=0)
    probe.publish(f"{P}/a/enabled/set", "OFF")
    probe.wait_for(lambda: probe.last(f"{P}/a/enabled/state") == b"OFF", 15, "the switch")
    probe.wait_for(
        lambda: (
            json.loads(probe.last(f"{P}/a/masks/state") or b"[]")[:1]
            and json.loads(probe.last(f"{P}/a/masks/state") or b"[]")[0]["name"] == "z199-0"
        ),
        15,
        "the newest zones",
    )
