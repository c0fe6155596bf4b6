"""The service in one process, through a fake bus (tests/detector/fake_comms.py): the publisher's
topics, retain flags and QoS, the command table, and the rule between the file's settings and
those changed in Home Assistant across restarts. Real onnxruntime on the tiny model; the
broker-level behaviour is covered by test_service.py against a real Mosquitto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.eval_dataset import load_dataset
from detector.service import startup as startup_module
from detector.service.detector_service import DetectorService
from tests.detector.fake_comms import FakeComms, in_process_service
from tests.detector.tiny_model import live, smoke_jpeg

SMOKE, CLEAR = smoke_jpeg(200), smoke_jpeg(0)
P = "smokewatch"


class Rig:
    """Services of one config file, each on its own fake bus that starts with the broker's
    retained messages of the one before (a restart)."""

    def __init__(self, tmp_path: Path, tiny: Path) -> None:
        self.path = tmp_path / "c.yaml"
        self.tiny = tiny
        self.retained: dict[str, bytes] = {}
        self.services: list[DetectorService] = []

    def write(self, camera: str = "{}") -> None:
        self.path.write_text(
            f"model: {{path: {self.tiny}}}\n"
            # Scored as fast as the test sends; never stale while it runs.
            "detection: {nb_frames: 3, threshold: 0.25, interval: 0.01, stale_after: 1000,"
            " offline_after: 10000}\n"
            f"false_alarms: {{dir: {self.path.parent / 'false_alarms'}}}\n"
            f"cameras: {{a: {camera}}}\n"
        )

    def start(self) -> tuple[DetectorService, FakeComms]:
        """A service as after `smokewatch run`: restored from the retained messages, connected."""
        service = in_process_service(self.path)
        comms: FakeComms = service.comms  # type: ignore[assignment]
        self.services.append(service)
        comms.retained = dict(self.retained)
        comms.connect()
        service.run_pending()
        return service, comms

    def stop(self, comms: FakeComms) -> None:
        self.retained = dict(comms.retained)


@pytest.fixture
def rig(tmp_path: Path, tiny: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path, tiny)
    rig.write()
    yield rig
    for service in rig.services:
        service.outputs.shutdown()
        for watch in service.cameras.values():
            if watch.test_timer is not None:
                watch.test_timer.cancel()


def command(service: DetectorService, comms: FakeComms, leaf: str, payload: str) -> None:
    """A command from HA, run as the control thread would."""
    assert comms.deliver(f"{P}/{leaf}", payload) == 1
    service.run_pending()


def score(service: DetectorService, camera: str, data: bytes) -> bytes:
    """One frame arrives on the camera's topic, as a live camera's new capture (`live`), and is
    scored as the worker does it. Returns the bytes sent."""
    comms: FakeComms = service.comms  # type: ignore[assignment]
    sent = live(data)
    assert comms.deliver(f"{P}/{camera}/image", sent) == 1
    assert service.work_once(timeout=5)
    service.run_pending()
    return sent


def test_every_leaf_has_its_retain_flag_and_qos(rig: Rig) -> None:
    service, comms = rig.start()
    for data in (CLEAR, SMOKE, SMOKE):
        score(service, "a", data)
    service.outputs.flush()  # the alert image is drawn off the scoring path
    expected = {
        "a/smoke": (True, 1),
        "a/smoke/event": (False, 1),
        "a/smoke/attributes": (True, 0),
        "a/score": (True, 0),
        "a/alert/image": (True, 1),
        "a/frame": (True, 0),
        "a/detection": (False, 1),
        "a/status": (True, 1),
        "a/view": (True, 1),
        "a/enabled/state": (True, 1),
        "a/threshold/state": (True, 1),
        "a/masks/state": (True, 1),
        "a/settings": (True, 1),
        "a/masks/attributes": (True, 0),
        "info": (True, 1),
        "stats": (False, 0),
    }
    for leaf, flags in expected.items():
        sent = comms.on(leaf)
        assert sent, leaf
        assert {(m.retain, m.qos) for m in sent} == {flags}, leaf
    assert [m.payload for m in comms.on("a/smoke")] == [b"OFF", b"ON"]
    events = [json.loads(m.payload) for m in comms.on("a/smoke/event")]
    assert events == [{"event_type": "started", "test": False}]
    # The lead-up window goes to the bridge: nb_frames detections at onset.
    assert len(comms.on("a/detection")) == 3


def test_the_restore_window_ends_on_the_probe_echo(rig: Rig) -> None:
    """No fixed wait at start: the echo of the probe published after subscribing means every
    retained state of the previous run has arrived."""
    service, comms = rig.start()
    probes = comms.on("probe")
    assert len(probes) == 1 and not probes[0].retain and probes[0].qos == 1
    assert not service.startup.collecting


def test_without_the_echo_the_restore_gives_up_with_a_warning(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that refuses the probe (an ACL) delays the start by RESTORE_TIMEOUT, once."""
    monkeypatch.setattr(startup_module, "RESTORE_TIMEOUT", 0.05)
    service = in_process_service(rig.path)
    comms: FakeComms = service.comms  # type: ignore[assignment]
    rig.services.append(service)
    comms.echo = False
    comms.connect()
    service.run_pending()
    assert not service.startup.collecting
    assert "did not echo the start-up probe" in caplog.text
    assert comms.last("info") is not None  # discovery and states went out all the same


def test_detections_refused_by_a_full_queue_are_sent_later_in_order(rig: Rig) -> None:
    service, comms = rig.start()
    comms.accept = False
    for data in (SMOKE, SMOKE, SMOKE):
        score(service, "a", data)
    assert service.publisher.detections_waiting == 3
    comms.accept = True
    service.publisher.send_unsent()
    sent = [json.loads(m.payload) for m in comms.on("a/detection")]
    assert len(sent) == 3 and service.publisher.detections_waiting == 0
    times = [d["recorded_at"] for d in sent]
    assert times == sorted(times)


def test_the_command_table_refuses_with_a_reason(rig: Rig) -> None:
    service, comms = rig.start()
    command(service, comms, "a/reset/set", "nope")
    command(service, comms, "a/nothing/set", "PRESS")
    command(service, comms, "a/threshold/set", "2")
    command(service, comms, "a/enabled/set", "maybe")
    command(service, comms, "zz/reset/set", "PRESS")
    assert service.refusals.total_counts() == {"bad_command": 4, "unknown_camera": 1}
    assert service.refusals.camera_counts("a") == {"bad_command": 4}
    assert service.cameras["a"].settings.threshold == 0.25
    command(service, comms, "a/threshold/set", "0.6")
    assert service.pipeline.camera("a").settings.threshold == 0.6
    assert service.pipeline.camera("a").vote.threshold == 0.6
    last = comms.last("a/threshold/state")
    assert last is not None and last.payload == b"0.6"


def test_disabled_camera_is_not_scored_but_its_frames_are_checked(rig: Rig) -> None:
    service, comms = rig.start()
    command(service, comms, "a/enabled/set", "OFF")
    score(service, "a", b"garbage, not a picture")
    assert service.cameras["a"].status == "refused"  # switched off, yet shown as broken
    score(service, "a", SMOKE)
    assert service.cameras["a"].scored == 0 and comms.last("a/smoke/attributes") is None
    assert service.cameras["a"].status == "online"  # it sends usable frames again
    command(service, comms, "a/enabled/set", "on")
    score(service, "a", SMOKE)
    assert service.cameras["a"].scored == 1 and service.cameras["a"].status == "online"


def settings_of(comms: FakeComms) -> dict[str, dict[str, object]]:
    last = comms.last("a/settings")
    assert last is not None
    return json.loads(last.payload)  # type: ignore[no-any-return]


def test_a_change_in_home_assistant_lasts_across_restarts(rig: Rig) -> None:
    service, comms = rig.start()
    command(service, comms, "a/threshold/set", "0.7")
    assert settings_of(comms)["threshold"] == {"value": 0.7, "file": 0.25, "source": "run time"}
    rig.stop(comms)
    for _ in range(2):  # and it keeps lasting
        service, comms = rig.start()
        assert service.pipeline.camera("a").settings.threshold == 0.7
        assert settings_of(comms)["threshold"]["source"] == "run time"
        rig.stop(comms)


def test_an_edited_file_wins_over_an_older_change(rig: Rig) -> None:
    service, comms = rig.start()
    command(service, comms, "a/threshold/set", "0.7")
    command(service, comms, "a/enabled/set", "OFF")
    rig.stop(comms)
    rig.write("{threshold: 0.4}")  # the user edits the threshold in the file (not enabled)
    service, comms = rig.start()
    assert service.cameras["a"].settings.threshold == 0.4
    assert service.pipeline.camera("a").settings.threshold == 0.4
    assert not service.cameras["a"].settings.enabled  # the other change made in HA stays
    last = comms.last("a/threshold/state")
    assert last is not None and last.payload == b"0.4"


def test_a_file_value_published_last_run_does_not_override_a_new_file(rig: Rig) -> None:
    # The old bug: the retained threshold/state of the last run (the file's own value then)
    # came back after the file was edited, so the edit was ignored.
    service, comms = rig.start()
    rig.stop(comms)
    rig.write("{threshold: 0.5}")
    service, comms = rig.start()
    assert service.pipeline.camera("a").settings.threshold == 0.5


def test_without_a_record_the_change_made_at_run_time_is_kept(rig: Rig) -> None:
    # After an upgrade from a version without `<cam>/settings`: keep what HA set.
    rig.retained = {f"{P}/a/threshold/state": b"0.8", f"{P}/a/enabled/state": b"ON"}
    service, comms = rig.start()
    assert service.pipeline.camera("a").settings.threshold == 0.8
    assert settings_of(comms)["threshold"]["source"] == "run time"


def test_use_file_settings_goes_back_to_the_file(rig: Rig) -> None:
    service, comms = rig.start()
    command(service, comms, "a/threshold/set", "0.7")
    command(service, comms, "a/enabled/set", "OFF")
    command(service, comms, "a/file_settings/set", "PRESS")
    assert service.cameras["a"].settings.enabled
    assert service.pipeline.camera("a").settings.threshold == 0.25
    assert settings_of(comms) == {
        "enabled": {"value": True, "file": True, "source": "file"},
        "threshold": {"value": 0.25, "file": 0.25, "source": "file"},
    }
    rig.stop(comms)
    service, comms = rig.start()
    assert service.pipeline.camera("a").settings.threshold == 0.25


def test_a_corrupt_settings_record_falls_back_to_the_file(rig: Rig) -> None:
    rig.retained = {
        f"{P}/a/threshold/state": b"0.8",
        f"{P}/a/settings": b'{"threshold": "x", "enabled": [1]}',
    }
    service, _ = rig.start()
    assert service.pipeline.camera("a").settings.threshold == 0.25
    assert service.health.healthy, service.health.snapshot()


def test_a_test_alert_ends_by_itself_and_a_reset_ends_a_real_one(rig: Rig) -> None:
    service, comms = rig.start()
    service.actions.test_alert_seconds = 0.05
    command(service, comms, "a/test/set", "PRESS")
    assert service.cameras["a"].alert.smoke and service.cameras["a"].alert.testing
    deadline = time.monotonic() + 10
    while not service.run_pending():  # the timer queues the end on the control thread
        assert time.monotonic() < deadline, "the test alert did not end"
        time.sleep(0.01)
    events = [json.loads(m.payload) for m in comms.on("a/smoke/event")]
    assert events == [
        {"event_type": "started", "test": True},
        {"event_type": "ended", "test": True},
    ]
    for data in (SMOKE, SMOKE, SMOKE):
        score(service, "a", data)
    assert service.cameras["a"].alert.smoke
    command(service, comms, "a/reset/set", "PRESS")
    last = comms.last("a/smoke")
    assert last is not None and last.payload == b"OFF"
    assert not service.pipeline.camera("a").ongoing  # the vote starts again


def test_not_smoke_masks_the_alert_boxes_and_ends_the_alert(rig: Rig) -> None:
    service, comms = rig.start()
    command(service, comms, "a/false_alarm/set", "PRESS")  # no alert yet: refused
    assert service.refusals.camera_counts("a") == {"bad_command": 1}
    for data in (SMOKE, SMOKE, SMOKE):
        score(service, "a", data)
    command(service, comms, "a/false_alarm/set", "PRESS")
    last = comms.last("a/smoke")
    assert last is not None and last.payload == b"OFF"
    state = comms.last("a/masks/state")
    assert state is not None
    masks = json.loads(state.payload)
    assert len(masks) == 1 and masks[0]["rule"] == "iou"
    assert masks[0]["name"].startswith("not smoke")
    attributes = comms.last("a/masks/attributes")
    assert attributes is not None and len(json.loads(attributes.payload)["false_alarms"]) == 1
    # The same smoke no longer alerts: the mask drops its box.
    for data in (SMOKE, SMOKE, SMOKE):
        score(service, "a", data)
    assert not service.cameras["a"].alert.smoke


def test_retained_commands_are_refused_at_every_connect(rig: Rig) -> None:
    """A command the broker kept is a past press replayed: never acted upon, at the start or
    at a reconnect during a real alert; each refusal is counted, and logged once."""
    rig.retained = {
        f"{P}/a/test/set": b"PRESS",
        f"{P}/a/false_alarm/set": b"PRESS",
        f"{P}/a/threshold/set": b"0.9",
        f"{P}/a/enabled/set": b"OFF",
    }
    service, comms = rig.start()
    watch = service.cameras["a"]
    assert not watch.alert.smoke and not comms.on("a/smoke/event")  # no test alert
    assert watch.settings.threshold == 0.25 and watch.settings.enabled
    for data in (SMOKE, SMOKE, SMOKE):
        score(service, "a", data)
    assert watch.alert.smoke
    comms.retained[f"{P}/a/reset/set"] = b"PRESS"
    comms.connect()  # a reconnect: the broker hands over its retained messages again
    service.run_pending()
    assert watch.alert.smoke  # the real alert is still on
    assert service.pipeline.camera("a").masks("local") == ()  # no "Not smoke" mask
    assert service.refusals.camera_counts("a") == {"retained_command": 4 + 5}
    # The same command sent now (not retained) acts.
    command(service, comms, "a/reset/set", "PRESS")
    assert not watch.alert.smoke


def test_a_setting_s_newer_value_replaces_one_still_waiting(rig: Rig) -> None:
    """A flood of expensive commands does not queue without bound: the masks the control
    thread has not applied yet are replaced by the newest, and past a bound the inbox
    refuses."""
    service, comms = rig.start()
    zones = [
        json.dumps([{"name": f"z{i}", "polygon": [[0, 0], [0.1 * (1 + i % 5), 0], [0, 0.1]]}])
        for i in range(50)
    ]
    for zone in zones:
        assert comms.deliver(f"{P}/a/masks/set", zone) == 1
    assert comms.deliver(f"{P}/a/threshold/set", "0.5") == 1
    assert len(service.router.inbox) == 2 and service.router.inbox.replaced == 49
    service.run_pending()
    state = comms.last("a/masks/state")
    assert state is not None and json.loads(state.payload)[0]["name"] == "z49"
    assert service.pipeline.camera("a").settings.threshold == 0.5
    for _ in range(service.router.inbox.limit + 5):
        comms.deliver(f"{P}/a/reset/set", "PRESS")
    assert service.refusals.camera_counts("a") == {"command_flood": 5}
    service.run_pending()


def request(comms: FakeComms, camera: str, command: str, value: object, request_id: str) -> None:
    """A command sent as Home Assistant's services send it: asking for its outcome."""
    envelope = json.dumps({"request_id": request_id, "value": value})
    assert comms.deliver(f"{P}/{camera}/{command}/set", envelope) == 1


def results(comms: FakeComms, camera: str, command: str) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in comms.on(f"{camera}/{command}/result")]


def test_every_command_is_answered_with_its_outcome(rig: Rig) -> None:
    """Home Assistant's services wait for this answer: a refused "Not smoke" is an error there
    with the detector's reason, not a success with a warning in the detector's log."""
    service, comms = rig.start()
    request(comms, "a", "false_alarm", "PRESS", "r1")  # no alert yet
    request(comms, "a", "threshold", "0.4", "r2")
    request(comms, "a", "threshold", 0.45, "r3")  # replaces r2 before it ran
    service.run_pending()
    refused = results(comms, "a", "false_alarm")
    assert refused == [
        {
            "request_id": "r1",
            "ok": False,
            "reason": "false_alarm: no alert on this camera has boxes to mask yet",
        }
    ]
    answered = {r["request_id"]: r for r in results(comms, "a", "threshold")}
    assert answered["r3"] == {"request_id": "r3", "ok": True, "reason": None}
    assert answered["r2"]["ok"] is True and "newer value" in str(answered["r2"]["reason"])
    assert service.cameras["a"].settings.threshold == 0.45
    for payload in ('{"request_id": 7, "value": "PRESS"}', '{"request_id": "x"}'):
        command(service, comms, "a/reset/set", payload)
    assert [r["ok"] for r in results(comms, "a", "reset")] == [False, False]
    # A plain command (an HA button) is answered too, without a request id.
    command(service, comms, "a/test/set", "PRESS")
    assert results(comms, "a", "test") == [{"request_id": None, "ok": True, "reason": None}]
    # Made-up cameras and commands get no answer.
    command(service, comms, "zz/reset/set", "PRESS")
    command(service, comms, "a/nothing/set", "PRESS")
    assert not comms.on("zz/reset/result") and not comms.on("a/nothing/result")


def test_not_smoke_clears_the_score_and_boxes_at_once(rig: Rig) -> None:
    service, comms = rig.start()
    for data in (SMOKE, SMOKE, SMOKE):
        score(service, "a", data)
    before = comms.last("a/smoke/attributes")
    assert before is not None and json.loads(before.payload)["boxes"]
    command(service, comms, "a/false_alarm/set", "PRESS")
    score_now = comms.last("a/score")
    attributes = comms.last("a/smoke/attributes")
    assert score_now is not None and score_now.payload == b"0.0"
    assert attributes is not None
    shown = json.loads(attributes.payload)
    assert shown["score"] == 0.0 and shown["boxes"] == [] and shown["false_alarm"] is not None


def test_a_dismissed_alert_s_frames_become_a_sequence_eval_reads(rig: Rig) -> None:
    """ "Not smoke" keeps the frames that raised the alert as a fire-free sequence, so a user
    can check a threshold change against their own false alarms."""
    service, comms = rig.start()
    sent = [score(service, "a", data) for data in (CLEAR, SMOKE, SMOKE, SMOKE)]
    command(service, comms, "a/false_alarm/set", "PRESS")
    service.false_alarms.close()  # the frames are written on a thread of their own
    (sequence,) = load_dataset(rig.path.parent / "false_alarms")
    assert not sequence.has_fire
    assert len(sequence.frames) == 3  # the vote's window (nb_frames)
    assert list(sequence.times) == sorted(sequence.times)
    assert [path.read_bytes() for path in sequence.frames] == sent[1:]


def test_only_the_newest_dismissed_alerts_are_kept(rig: Rig) -> None:
    rig.write("{}")
    rig.path.write_text(
        rig.path.read_text().replace("false_alarms: {dir:", "false_alarms: {keep: 2, dir:")
    )
    service, comms = rig.start()
    for _ in range(3):
        for data in (SMOKE, SMOKE, SMOKE):
            score(service, "a", data)
        command(service, comms, "a/false_alarm/set", "PRESS")
        # The next alert's boxes are elsewhere than the masks of the previous ones.
        service.pipeline.camera("a").set_masks("local", ())
    service.false_alarms.close()
    assert len(load_dataset(rig.path.parent / "false_alarms")) == 2
