"""Secrets never leave the process, whatever their shape: redaction by value.

Redaction used to be by pattern only (URL credentials, bearer headers, JWTs): a non-JWT token
echoed in an API error body reached the log, the retained stats and the outbox, and a numeric
MQTT password or a non-string token was printed by `check-config` and `run`. Every secret a
configuration holds is now remembered when it loads and hidden wherever it appears.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector import redact
from detector.bridge.bridge_service import BridgeService
from detector.config import load_config, secret_values
from detector.config.loader import Secret
from tests.detector.broker import Broker
from tests.detector.fake_pyronear import FakePyronear
from tests.detector.mqtt_helpers import REPO, Probe


@pytest.fixture(autouse=True)
def fresh_secrets() -> Iterator[None]:
    redact.forget_all()
    yield
    redact.forget_all()


def smokewatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detector", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_password_of_digits_and_a_numeric_token_are_never_printed(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "mqtt: {host: 127.0.0.1, port: 9, username: u, password: 12345678}\n"
        "cameras: {a: {}}\n"
        "bridge:\n  enabled: true\n  url: http://127.0.0.1:9\n"
        "  cameras: {a: {token: 987654321, pose_id: 1}}\n"
    )
    for args in (("check-config", str(config)), ("run", "-c", str(config))):
        done = smokewatch(*args)
        output = done.stdout + done.stderr
        assert done.returncode != 0, output
        assert "12345678" not in output and "987654321" not in output, output
        assert "mqtt.password: <secret, a number>" in output, output


def test_secret_values_are_found_in_every_shape() -> None:
    data = {
        "mqtt": {"password": 12345678},
        "cameras": {
            "a": {
                "source": {
                    "url": "http://viewer:c4m-p%40ss@cam.lan/snap.jpg",
                    "headers": {"X-Api-Key": "k3y-h3ad3r"},
                    "token": Secret("s3cr3t-from-secrets"),
                }
            }
        },
        "bridge": {"cameras": {"a": {"token": True}}},
    }
    assert secret_values(data) == {
        "12345678",
        "viewer",
        "c4m-p%40ss",
        "k3y-h3ad3r",
        "s3cr3t-from-secrets",
        "True",
    }


secrets_of_any_shape = st.one_of(
    st.text(min_size=redact.MIN_SECRET_CHARS, max_size=40).filter(lambda s: s.strip() == s),
    st.integers(min_value=1000, max_value=10**12).map(str),
)


@given(secret=secrets_of_any_shape, before=st.text(max_size=30), after=st.text(max_size=30))
def test_a_remembered_secret_is_hidden_in_any_text(secret: str, before: str, after: str) -> None:
    redact.forget_all()
    redact.remember([secret])
    text = f"{before}{secret}{after}"
    assert secret not in redact.redact_text(text)
    assert secret not in redact.redact_url(f"http://host/{text}")


def test_the_log_filter_hides_secrets_in_messages_args_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redact.remember(["hunter22"])
    logger = logging.getLogger("smokewatch.test.secrets")
    handler = logging.StreamHandler()
    redact.install_log_filter(logger)  # no handler yet: nothing to do, nothing breaks
    logger.addHandler(handler)
    redact.install_log_filter(logger)
    record = logger.makeRecord("x", logging.ERROR, __file__, 1, "password %s", ("hunter22",), None)
    try:
        raise ValueError("refused hunter22")
    except ValueError:
        record.exc_info = sys.exc_info()
    for log_filter in handler.filters:
        log_filter.filter(record)  # type: ignore[union-attr]
    assert "hunter22" not in record.getMessage()
    assert record.exc_text is not None and "hunter22" not in record.exc_text
    logger.removeHandler(handler)


def test_a_token_an_api_echoes_reaches_neither_log_nor_stats_nor_outbox(
    broker: Broker, api: FakePyronear, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = "pl41n-t0k3n-4711"  # not a JWT: no pattern recognises it
    api.echo_headers = True  # a server that quotes the token it refused
    config = tmp_path / "c.yaml"
    config.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        "cameras: {a: {}}\n"
        "bridge:\n"
        f"  url: {api.url}\n  outbox: {tmp_path / 'outbox.sqlite3'}\n"
        "  backoff_initial: 0.05\n  backoff_max: 0.5\n  stats_interval: 0.5\n"
        f"  cameras: {{a: {{token: {token}, pose_id: 11}}}}\n"
    )
    bridge = BridgeService(load_config(config))
    probe = Probe(broker.host, broker.port, ("smokewatch/#",))
    bridge.start()
    try:
        detection = {
            "id": "d1",
            "camera": "a",
            "recorded_at": "2026-01-01T00:00:00.000Z",
            "bboxes": [[0.1, 0.1, 0.2, 0.2, 0.5]],
            "jpeg": "/9j/2Q==",
        }
        probe.wait_for(lambda: probe.last("smokewatch/bridge/available") == b"online", 15)
        probe.publish("smokewatch/a/detection", json.dumps(detection))
        stats = probe.wait_for(
            lambda: (
                (raw := probe.last("smokewatch/bridge/stats")) and json.loads(raw)["last_error"]
            ),
            20,
            "the error in the stats",
        )
        assert "Invalid token" in stats or "406" in stats
        published = b"".join(p for _t, p, _r in probe.messages).decode(errors="replace")
        assert token not in published
        assert token not in json.dumps(bridge.outbox.items())
        assert token not in caplog.text
    finally:
        bridge.stop()
        probe.close()


def test_a_configuration_whose_aliases_loop_is_walked_once() -> None:
    looped: dict[str, object] = {"password": "l00p-s3cret"}
    looped["self"] = looped  # YAML aliases can make a cycle (&a {x: *a})
    assert secret_values({"mqtt": looped, "list": [looped, looped]}) == {"l00p-s3cret"}
