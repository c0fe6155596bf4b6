"""Untrusted input at every boundary: bounded parsing, and fuzzing of what crosses it.

The fuzz tests drive the real entry points (the frame payload parser, every `…/set` handler of
a real DetectorService on the tiny ONNX model, the config loader) with generated input: only
the project's own error types may come out, and the service must still be healthy afterwards.
The handlers are driven on a bus that records publishes instead of a broker: the wire is
covered by test_service_robustness.py; here the point is the number of inputs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.config import load_config
from detector.errors import FrameError, SmokeWatchError
from detector.inputs.payloads import parse_frame_payload
from detector.redact import redact_text, redact_url
from detector.service.detector_service import DetectorService
from detector.supervise import Health, run_supervised
from detector.untrusted import epoch_seconds, parse_json
from tests.detector.fake_comms import FakeComms, one_camera_service
from tests.detector.tiny_model import smoke_jpeg

JPEG = smoke_jpeg(200)
B64 = base64.b64encode(JPEG).decode()
NOW = 1_790_000_000.0


# -- bounded parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["NaN", "[Infinity]", '{"a": -Infinity}', "1" * 400, "1e400", "[" * 20 + "]" * 20],
)
def test_parse_json_refuses_what_python_would_take(text: str) -> None:
    with pytest.raises(ValueError):
        parse_json(text)


def test_parse_json_keeps_ordinary_values() -> None:
    assert parse_json('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert parse_json('"[[[[[[[[[[[[[[[[[[[[["') == "[" * 21  # brackets in strings don't count


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(NOW, NOW), (NOW * 1e3, NOW), (NOW * 1e6, NOW), (NOW * 1e9, NOW), (int(NOW), NOW)],
)
def test_epoch_units(value: float, seconds: float) -> None:
    assert math.isclose(epoch_seconds(value, now=NOW), seconds)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1e11, 10**400, 1e30, 5, True])
def test_epoch_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        epoch_seconds(value, now=NOW)


@pytest.mark.parametrize("ts", ["NaN", "Infinity", "-Infinity", "1" + "0" * 400, '"soon"'])
def test_envelope_whose_ts_is_no_number_is_refused(ts: str) -> None:
    # Each of these was accepted and later killed the service in iso_utc() (stats publish).
    payload = f'{{"image": "{B64}", "ts": {ts}}}'.encode()
    with pytest.raises(FrameError) as caught:
        parse_frame_payload(payload, NOW)
    assert caught.value.reason == "bad_envelope"


@pytest.mark.parametrize("ts", ["-1e11", "1e30", "0", "5"])
def test_envelope_with_an_impossible_time_is_scored_at_its_arrival(ts: str) -> None:
    # -1e11 used to kill the service (year out of range); a camera whose clock was never set
    # (ts 0) must not be blinded either: its frames are scored at their arrival time.
    payload = f'{{"image": "{B64}", "ts": {ts}}}'.encode()
    reported: list[str] = []
    assert parse_frame_payload(payload, NOW, on_bad_time=reported.append) == (JPEG, NOW)
    assert len(reported) == 1 and "arrival time" in reported[0]


def test_envelope_in_microseconds_gets_its_time() -> None:
    payload = json.dumps({"image": B64, "ts": (NOW - 5) * 1e6}).encode()
    assert parse_frame_payload(payload, NOW) == (JPEG, NOW - 5)


def test_deeply_nested_envelope_is_one_refusal() -> None:
    payload = b'{"image": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}"
    with pytest.raises(FrameError) as caught:
        parse_frame_payload(payload, NOW)
    assert caught.value.reason == "bad_envelope"


def test_base64_wrapped_at_76_columns_is_accepted() -> None:
    wrapped = base64.encodebytes(JPEG)  # MIME style: a newline every 76 characters
    assert b"\n" in wrapped[:-1]
    assert parse_frame_payload(wrapped, NOW) == (JPEG, NOW)


# -- redaction -------------------------------------------------------------------------------


def test_redaction_of_urls_and_answers() -> None:
    assert redact_url("http://admin:GateP4ss@cam.local/snap.jpg") == "http://***@cam.local/snap.jpg"
    assert (
        redact_url("https://api.example/x?token=abc&w=1") == "https://api.example/x?token=***&w=1"
    )
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl"
    echoed = f'{{"detail": "bad", "headers": {{"Authorization": "Bearer {token}"}}}}'
    clean = redact_text(echoed)
    assert token not in clean and "Bearer ***" in clean
    assert "BridgeP4ss" not in redact_text("cannot reach http://buser:BridgeP4ss@api:8080/")


# -- supervision -----------------------------------------------------------------------------


def test_supervised_loop_is_restarted_logged_once_and_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import threading

    health = Health("test")
    stop = threading.Event()
    runs: list[int] = []

    def target() -> None:
        runs.append(1)
        if len(runs) < 4:
            raise OSError("database or disk is full")
        health.ok("worker")
        assert not health.faults
        stop.set()

    with caplog.at_level("DEBUG"):
        run_supervised("worker", target, health, stop, initial=0.01, cap=0.05)
    assert len(runs) == 4
    assert health.failures["worker"] == 3
    assert health.snapshot()["healthy"] is True
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "disk is full" in errors[0].getMessage()


# -- fuzzing ---------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def _json_text(value: Any) -> bytes:
    return json.dumps(value).encode()


payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(_json_text),
    st.builds(
        lambda ts, extra: _json_text({"image": B64, "ts": ts, **extra}),
        json_values,
        st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    ),
    st.sampled_from([JPEG[:50], b"data:image/jpeg;base64," + B64.encode()[:60], b" {"]),
)


@FUZZ
@given(payloads)
def test_fuzz_parse_frame_payload(payload: bytes) -> None:
    try:
        data, ts = parse_frame_payload(payload, NOW)
    except FrameError:
        return
    assert isinstance(data, bytes) and math.isfinite(ts)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> DetectorService:
    return one_camera_service(tmp_path_factory.mktemp("fuzz"))


commands = st.sampled_from(["enabled", "threshold", "masks", "reset", "test", "other"])
command_payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(_json_text),
    st.lists(
        st.fixed_dictionaries(
            {"name": st.text(max_size=5)},
            optional={
                "polygon": st.lists(
                    st.lists(st.floats(allow_nan=True) | st.integers(), max_size=3), max_size=6
                ),
                "rect": st.lists(st.floats(allow_nan=True) | st.integers(), max_size=5),
                "rule": st.sampled_from(["iou", "inside", "x", 3]),
                "enabled": json_values,
            },
        ),
        max_size=3,
    ).map(_json_text),
    st.sampled_from([b"ON", b"OFF", b"PRESS", b"0.5", b"nan", b"1e400", b"-0"]),
)


@FUZZ
@given(commands, command_payloads)
def test_fuzz_every_set_handler(service: DetectorService, setting: str, payload: bytes) -> None:
    # As the broker would: live and retained, on the command, remote masks and state topics;
    # then the control thread runs what was queued.
    comms: FakeComms = service.comms  # type: ignore[assignment]
    for retain in (False, True):
        comms.deliver(f"smokewatch/a/{setting}/set", payload, retain=retain)
        comms.deliver("smokewatch/a/masks/remote", payload, retain=retain)
        comms.deliver(f"smokewatch/a/{setting}/state", payload, retain=retain)
    service.run_pending()
    assert service.health.healthy, service.health.snapshot()
    watch = service.cameras["a"]
    if watch.test_timer is not None:
        watch.test_timer.cancel()
    assert 0.05 <= service.pipeline.camera("a").settings.threshold <= 0.95


yaml_texts = st.one_of(
    st.text(max_size=200),
    json_values.map(lambda v: json.dumps({"cameras": {"a": v}})),
    json_values.map(lambda v: json.dumps({"cameras": {"a": {}}, "detection": v})),
    json_values.map(lambda v: json.dumps({"cameras": {"a": {}}, "bridge": v})),
    st.sampled_from(["a: &x [*x]", "cameras: !secret x", "cameras: !env NOPE", "- *y"]),
)


@FUZZ
@given(yaml_texts)
def test_fuzz_config_loader(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    started = time.monotonic()
    with contextlib.suppress(SmokeWatchError):
        load_config(path)
    assert time.monotonic() - started < 5
