"""Intake against a real broker: acknowledged only once on disk, bad messages refused."""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from detector.bridge import intake as intake_module
from detector.bridge.intake import Intake
from detector.bridge.outbox import Outbox
from detector.config import validate
from tests.detector.broker import Broker
from tests.detector.mqtt_helpers import Probe
from tests.detector.tiny_model import smoke_jpeg


class FlakyOutbox(Outbox):
    """An outbox whose first commits fail, like a full disk."""

    def __init__(self, path: Path, failures: int = 1) -> None:
        super().__init__(path)
        self.failures = failures

    def add(self, *args: Any) -> bool:
        if self.failures:
            self.failures -= 1
            raise OSError("No space left on device")
        return super().add(*args)


def message(camera: str = "a", **changes: Any) -> str:
    data = {
        "id": uuid.uuid4().hex,
        "camera": camera,
        "recorded_at": "2026-01-01T00:00:00.000Z",
        "bboxes": [[0.1, 0.1, 0.2, 0.2, 0.5]],
        "jpeg": base64.b64encode(smoke_jpeg(200, 32)).decode(),
        "alert": True,
        **changes,
    }
    return json.dumps(data)


def make_intake(broker: Broker, outbox: Outbox) -> tuple[Intake, threading.Event]:
    config = validate(
        {
            "mqtt": {"host": broker.host, "port": broker.port},
            "cameras": {"a": {}, "c": {}},
            "bridge": {"cameras": {"a": {"token": "t0k3n", "pose_id": 1}}},
        }
    )
    stored = threading.Event()
    intake = Intake(
        config, outbox, on_stored=stored.set, on_frame=lambda *_: None, on_connected=lambda: None
    )
    return intake, stored


def test_a_failed_commit_is_not_acknowledged_and_comes_back(broker: Broker, tmp_path: Path) -> None:
    outbox = FlakyOutbox(tmp_path / "o.sqlite3")
    intake, _stored = make_intake(broker, outbox)
    probe = Probe(broker.host, broker.port, ("smokewatch/bridge/#",))
    intake.start()
    try:
        probe.wait_for(intake.connected.is_set, 10, "intake connected")
        probe.publish("smokewatch/a/detection", message())
        # The broker sends it again after the dropped connection; the second commit works.
        probe.wait_for(lambda: outbox.stats()["pending"] == 1, 15, "the detection stored")
        assert outbox.failures == 0 and intake.storage_errors == 1
    finally:
        intake.stop()
        probe.close()
        outbox.close()


def test_bad_and_unrouted_messages_are_counted_not_stored(broker: Broker, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    intake, _stored = make_intake(broker, outbox)
    probe = Probe(broker.host, broker.port, ("smokewatch/bridge/#",))
    intake.start()
    try:
        probe.wait_for(intake.connected.is_set, 10, "intake connected")
        for payload in (
            b"\xff\xfe",
            "[1, 2]",
            message(bboxes="nope"),
            message(jpeg="***"),
            message(recorded_at="yesterday"),
            message(camera="b"),  # published under a's topic
        ):
            probe.publish("smokewatch/a/detection", payload)
        probe.publish("smokewatch/c/detection", message("c"))  # no token for c: skipped
        probe.publish("smokewatch/a/detection", message())
        probe.wait_for(lambda: outbox.stats()["pending"] == 1, 10, "the good one stored")
        stats = outbox.stats()
        assert stats["rejected"] == 6 and stats["skipped"] == 1
        assert stats["cameras"]["c"]["skipped"] == 1
    finally:
        intake.stop()
        probe.close()
        outbox.close()


def test_a_full_disk_is_retried_quietly_without_dropping_the_connection(
    broker: Broker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk logged an ERROR and a misleading "same client id" line every second (each
    failed commit dropped the connection for a redelivery, which the flap watch took for a
    second client). The commit is retried on the storage thread, unacknowledged meanwhile: one
    line for the fault, the connection kept."""
    monkeypatch.setattr(intake_module, "RETRY_INITIAL", 0.05)
    outbox = FlakyOutbox(tmp_path / "o.sqlite3", failures=4)
    intake, _stored = make_intake(broker, outbox)
    probe = Probe(broker.host, broker.port, ("smokewatch/bridge/#",))
    intake.start()
    try:
        probe.wait_for(intake.connected.is_set, 10, "intake connected")
        probe.publish("smokewatch/a/detection", message())
        probe.wait_for(lambda: outbox.stats()["pending"] == 1, 30, "the detection stored")
        assert intake.storage_errors == 4 and intake.health.healthy
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()
        assert "same client id" not in caplog.text
        assert "disconnected" not in caplog.text.lower()
    finally:
        intake.stop()
        probe.close()
        outbox.close()
