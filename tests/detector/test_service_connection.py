"""How `smokewatch run` reaches its broker: credentials, TLS, amqtt, and a missing model."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.detector.broker import Broker, free_port, mosquitto_path
from tests.detector.mqtt_helpers import Probe, ServiceProcess, write_config
from tests.detector.tiny_model import live, smoke_jpeg

P = "smokewatch"
SMOKE = smoke_jpeg(200)

needs_mosquitto = pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto is not installed")


class SecuredBroker(Broker):
    """Mosquitto with a secured listener for the detector and a plain one for the test's probe."""

    def __init__(self, secured: str) -> None:
        super().__init__(kind="mosquitto")
        self.probe_port = free_port()
        self.secured = secured

    def _command(self) -> list[str]:
        conf = self._dir / "mosquitto.conf"
        conf.write_text(
            textwrap.dedent(
                f"""\
                per_listener_settings true
                user root
                log_type error
                log_type warning
                listener {self.probe_port} 127.0.0.1
                allow_anonymous true
                listener {self.port} 127.0.0.1
                """
            )
            + self.secured
        )
        binary = mosquitto_path()
        assert binary is not None
        return [binary, "-c", str(conf)]


@pytest.fixture
def secured(request: pytest.FixtureRequest) -> Iterator[SecuredBroker]:
    broker = SecuredBroker(request.param)
    try:
        yield broker
    finally:
        broker.close()


def service_config(path: Path, port: int, model: Path, mqtt_extra: str) -> Path:
    """A one-camera config whose mqtt section gets extra flow-mapping entries."""
    path.write_text(
        f"model: {{path: {model}}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {port}, client_id: sw-conn, {mqtt_extra}}}\n"
        "detection: {interval: 0.2, nb_frames: 3}\n"
        "cameras:\n  a: {}\n"
    )
    return path


def scored_once(probe: Probe) -> dict[str, object]:
    """Publish a smoke frame on camera a and return the attributes of its scoring."""
    topic = f"{P}/a/smoke/attributes"
    before = len(probe.payloads(topic))
    probe.publish(f"{P}/a/image", live(SMOKE))  # a new capture each time, as a live camera's
    return json.loads(probe.wait_count(topic, before + 1)[-1])  # type: ignore[no-any-return]


@needs_mosquitto
def test_username_and_password(tiny: Path, tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "detector", "s3cret"],
        check=True,
        capture_output=True,
    )
    broker = SecuredBroker(f"allow_anonymous false\npassword_file {passwords}\n")
    broker.start()
    probe = Probe(broker.host, broker.probe_port)
    wrong = ServiceProcess(
        service_config(
            tmp_path / "wrong.yaml", broker.port, tiny, "username: detector, password: nope"
        ),
        tmp_path / "wrong.log",
    )
    right = None
    try:
        # Refused credentials: said in the log (without the password), the process keeps trying.
        probe.wait_for(lambda: "the broker refused the connection" in wrong.log(), 15, "refusal")
        assert "nope" not in wrong.log()
        assert wrong.process.poll() is None
        wrong.close()
        right = ServiceProcess(
            service_config(
                tmp_path / "right.yaml", broker.port, tiny, "username: detector, password: s3cret"
            ),
            tmp_path / "right.log",
        )
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 15, "online")
        assert scored_once(probe)["score"] == 0.0
    finally:
        wrong.close()
        if right is not None:
            right.close()
        probe.close()
        broker.close()


def make_certificates(directory: Path) -> None:
    """A test CA; a server certificate for a host name that is not 127.0.0.1; a client one."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=SmokeWatch test CA",
    )  # fmt: skip
    for name, subject in (("server", "/CN=broker.invalid"), ("client", "/CN=smokewatch")):
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject,
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
        )  # fmt: skip


@needs_mosquitto
def test_tls_with_ca_client_certificate_and_insecure_host_name(tiny: Path, tmp_path: Path) -> None:
    make_certificates(tmp_path)
    broker = SecuredBroker(
        f"cafile {tmp_path / 'ca.pem'}\ncertfile {tmp_path / 'server.pem'}\n"
        f"keyfile {tmp_path / 'server.key'}\nrequire_certificate true\nallow_anonymous true\n"
    )
    broker.start()
    probe = Probe(broker.host, broker.probe_port)
    tls = "ca_certs: ca.pem, certfile: client.pem, keyfile: client.key"
    # The server certificate names broker.invalid, not 127.0.0.1: verified, it is refused.
    strict = ServiceProcess(
        service_config(
            tmp_path / "strict.yaml", broker.port, tiny, f"tls: {{enabled: true, {tls}}}"
        ),
        tmp_path / "strict.log",
    )
    insecure = None
    try:
        probe.wait_for(lambda: "certificate verify failed" in strict.log(), 15, "hostname mismatch")
        assert probe.last(f"{P}/available") is None
        strict.close()
        # Relative file names resolve against the config's folder.
        insecure = ServiceProcess(
            service_config(
                tmp_path / "insecure.yaml",
                broker.port,
                tiny,
                f"tls: {{enabled: true, insecure: true, {tls}}}",
            ),
            tmp_path / "insecure.log",
        )
        probe.wait_for(lambda: probe.last(f"{P}/available") == b"online", 15, "online over TLS")
        assert scored_once(probe)["score"] == 0.0
    finally:
        strict.close()
        if insecure is not None:
            insecure.close()
        probe.close()
        broker.close()


def test_amqtt_broker_each_frame_scored_once(tiny: Path, tmp_path: Path) -> None:
    # amqtt delivers a message once per matching subscription: the image topic must not be
    # matched by two of the detector's subscriptions, or every frame counts twice in the vote.
    broker = Broker(kind="amqtt").start()
    probe = Probe(broker.host, broker.port)
    service = ServiceProcess(
        write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"}), tmp_path / "s.log"
    )
    try:
        probe.wait_for(lambda: probe.last(f"{P}/a/threshold/state"), 30, "started")
        for _ in range(4):
            scored_once(probe)
            time.sleep(0.3)  # longer than the interval: a duplicate would be scored too
        time.sleep(0.5)

        def camera_a() -> dict[str, int] | None:
            last = probe.last(f"{P}/stats")
            stats = json.loads(last)["cameras"]["a"] if last else None
            return stats if stats and stats["scored"] >= 4 else None

        stats = probe.wait_for(camera_a, 10, "stats")
        assert (stats["frames_in"], stats["scored"], stats["dropped"]) == (4, 4, 0)
        assert len(probe.payloads(f"{P}/a/smoke/attributes")) == 4
    finally:
        service.close()
        probe.close()
        broker.close()


def test_missing_model_is_published_and_exits_2(broker: Broker, tmp_path: Path) -> None:
    probe = Probe(broker.host, broker.port)
    missing = tmp_path / "missing.onnx"
    config = write_config(tmp_path / "c.yaml", broker.port, missing, {"a": "{}"})
    service = ServiceProcess(config, tmp_path / "s.log")
    try:
        assert service.process.wait(30) == 2
        info = json.loads(probe.wait_for(lambda: probe.last(f"{P}/info"), 20, "info"))
        assert info["status"] == "model_missing" and str(missing) in info["error"]
        assert info["model"] is None and list(info["cameras"]) == ["a"]
    finally:
        service.close()
        probe.close()


def test_fresh_broker_gets_discovery_states_and_alert_image_back(
    tiny: Path, tmp_path: Path
) -> None:
    broker = Broker().start()
    probe = Probe(broker.host, broker.port)
    service = ServiceProcess(
        write_config(tmp_path / "c.yaml", broker.port, tiny, {"a": "{}"}), tmp_path / "s.log"
    )
    fresh = None
    try:
        probe.wait_for(lambda: probe.last(f"{P}/a/threshold/state"), 30, "started")
        probe.publish(f"{P}/a/threshold/set", "0.4")
        for _ in range(3):
            scored_once(probe)
        # ON from the second frame (2 boxes of 3, 0.52 > 0.4): one alert image per alert frame.
        image = probe.wait_count(f"{P}/a/alert/image", 2)[-1]
        probe.close()
        # A broker that lost everything (no persistence) on the same port.
        broker.stop()
        fresh = Broker(kind=broker.kind, port=broker.port)
        fresh.start()
        probe = Probe(fresh.host, fresh.port)
        for topic, expected in [
            (f"{P}/available", b"online"),
            (f"{P}/a/smoke", b"ON"),
            (f"{P}/a/threshold/state", b"0.4"),
            (f"{P}/a/alert/image", image),
        ]:
            probe.wait_for(lambda t=topic, e=expected: probe.last(t) == e, 15, topic)
        assert probe.last("homeassistant/image/smokewatch_a_alert_image/config")
    finally:
        service.close()
        probe.close()
        broker.close()
        if fresh is not None:
            fresh.close()


def test_two_clients_with_one_client_id_are_explained(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    # Two processes with one config kicked each other off every ~2 s, logged only as
    # "Unspecified error".
    from detector.config import validate
    from detector.flaps import SHORT_CONNECTIONS_HINT
    from detector.service.comms import detector_session

    config = validate(
        {
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": "twin"},
            "cameras": {"a": {}},
        }
    ).mqtt
    first, second = detector_session(config), detector_session(config)
    for comms in (first, second):
        comms.client.reconnect_delay_set(min_delay=1, max_delay=1)
        comms.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "same client id" not in caplog.text:
            time.sleep(0.2)
    finally:
        first.stop()
        second.stop()
    errors = [r.getMessage() for r in caplog.records if "same client id" in r.getMessage()]
    assert errors, caplog.text[-2000:]
    assert "'twin'" in errors[0] and f"{SHORT_CONNECTIONS_HINT} times" in errors[0]
