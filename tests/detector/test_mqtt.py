"""The one paho client factory (detector/mqtt.py) and the Comms publish-and-wait, on Mosquitto."""

from __future__ import annotations

import json
import socket
import time

import paho.mqtt.client as mqtt
import pytest

from detector.config import MqttConfig, validate
from detector.mqtt import make_client, prefixed, say_offline_and_disconnect
from detector.service.comms import detector_session
from detector.service.startup import publish_model_error
from tests.detector.broker import Broker, free_port
from tests.detector.mqtt_helpers import Probe


def test_prefixed() -> None:
    assert prefixed("smokewatch", "a/masks/remote") == "smokewatch/a/masks/remote"


def _online_client(broker: Broker, client_id: str) -> mqtt.Client:
    """A factory client with its will on t/available, connected and announced online."""
    client = make_client(
        MqttConfig(host=broker.host, port=broker.port),
        client_id=client_id,
        will_topic="t/available",
        queue_limit=10,
    )
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish("t/available", "online", qos=1, retain=True).wait_for_publish(10)
    return client


def test_the_will_says_offline_when_the_connection_drops(broker: Broker) -> None:
    probe = Probe(broker.host, broker.port, ("t/#",))
    client = _online_client(broker, "factory-will")
    try:
        probe.wait_for(lambda: probe.last("t/available") == b"online", 10)
        # No goodbye: the broker publishes the will.
        client.loop_stop()
        client.socket().shutdown(socket.SHUT_RDWR)
        probe.wait_for(lambda: probe.last("t/available") == b"offline", 10, "the will")
    finally:
        client.loop_stop()
        probe.close()


def test_a_clean_stop_says_offline_before_disconnecting(broker: Broker) -> None:
    probe = Probe(broker.host, broker.port, ("t/#",))
    client = _online_client(broker, "factory-stop")
    try:
        probe.wait_for(lambda: probe.last("t/available") == b"online", 10)
        say_offline_and_disconnect(client, "t/available", connected=True)
        probe.wait_for(lambda: probe.payloads("t/available") == [b"online", b"offline"], 10)
        assert not client.is_connected()
    finally:
        probe.close()


def test_the_queue_is_bounded_while_the_broker_is_away() -> None:
    client = make_client(MqttConfig(), client_id="factory-queue", will_topic=None, queue_limit=3)
    results = [client.publish("t/x", b"1", qos=1).rc for _ in range(5)]
    # Kept for the reconnect up to the bound, refused beyond it (memory stays flat).
    assert results == [mqtt.MQTT_ERR_NO_CONN] * 3 + [mqtt.MQTT_ERR_QUEUE_SIZE] * 2


def test_a_persistent_session_leaves_acknowledging_to_the_caller() -> None:
    client = make_client(
        MqttConfig(), client_id="bridge", will_topic=None, queue_limit=3, persistent_session=True
    )
    assert client._clean_session is False and client._manual_ack is True
    throwaway = make_client(MqttConfig(), client_id=None, will_topic=None, queue_limit=3)
    assert throwaway._clean_session is True and throwaway._manual_ack is False


def test_publish_and_wait_reaches_the_broker(broker: Broker) -> None:
    probe = Probe(broker.host, broker.port, ("smokewatch/#",))
    comms = detector_session(MqttConfig(host=broker.host, port=broker.port, client_id="paw"))
    comms.start()
    try:
        assert comms.publish_and_wait("info", '{"status": "x"}', retain=True, timeout=10)
        probe.wait_for(lambda: probe.last("smokewatch/info") == b'{"status": "x"}', 10)
    finally:
        comms.stop()
        probe.close()
    # Retained: a client that comes later still reads it.
    late = Probe(broker.host, broker.port, ("smokewatch/info",))
    try:
        late.wait_for(lambda: late.last("smokewatch/info") == b'{"status": "x"}', 10)
    finally:
        late.close()


def nodelay(client: mqtt.Client) -> int:
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_messages_leave_at_once_without_waiting_for_the_last_ack(broker: Broker) -> None:
    # Nagle's algorithm holds a small write while the previous one is unacknowledged (up to
    # the broker's delayed ACK, 40 ms on Linux): the session turns it off on every connection.
    session = detector_session(MqttConfig(host=broker.host, port=broker.port, client_id="nd"))
    plain = make_client(MqttConfig(), client_id=None, will_topic=None, queue_limit=3)
    session.start()
    plain.connect(broker.host, broker.port)
    try:
        assert session.connected.wait(10)
        assert nodelay(session.client) == 1
        assert nodelay(plain) == 0  # paho's own default: what the session changes
        # Again after the connection is lost and paho opens a new socket.
        session.connected.clear()
        first = session.client.socket()
        session.drop_connection()
        assert session.connected.wait(20) and session.client.socket() is not first
        assert nodelay(session.client) == 1
    finally:
        session.stop()
        plain.disconnect()


def test_publish_and_wait_gives_up_when_no_broker_answers() -> None:
    comms = detector_session(MqttConfig(host="127.0.0.1", port=free_port(), client_id="paw-none"))
    comms.start()
    started = time.monotonic()
    try:
        assert not comms.publish_and_wait("info", "x", retain=True, timeout=0.5)
    finally:
        comms.stop()
    assert time.monotonic() - started < 5


class WaitingComms:
    """A bus without a broker that records publish_and_wait (the Comms protocol's part)."""

    def __init__(self, reached: bool) -> None:
        self.reached = reached
        self.on_connected = None
        self.calls: list[str] = []
        self.waited: list[tuple[str, str, bool]] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self, *, timeout: float = 5.0) -> None:
        self.calls.append("stop")

    def subscribe(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("publish_model_error subscribes to nothing")

    def publish(self, *args: object, **kwargs: object) -> bool:
        raise AssertionError("the model error must wait for the broker")

    def publish_absolute(self, *args: object, **kwargs: object) -> bool:
        raise AssertionError("the model error must wait for the broker")

    def publish_and_wait(
        self, topic: str, payload: bytes | str, *, retain: bool = False, timeout: float = 10.0
    ) -> bool:
        self.calls.append("publish_and_wait")
        self.waited.append((topic, str(payload), retain))
        return self.reached


def test_the_model_error_goes_through_comms(caplog: pytest.LogCaptureFixture) -> None:
    config = validate({"cameras": {"ridge": {}}})
    comms = WaitingComms(reached=True)
    publish_model_error(config, "no model at /x.onnx", comms=comms)
    assert comms.calls == ["start", "publish_and_wait", "stop"]
    topic, payload, retain = comms.waited[0]
    info = json.loads(payload)
    assert topic == "info" and retain
    assert info["status"] == "model_missing" and info["error"] == "no model at /x.onnx"
    assert list(info["cameras"]) == ["ridge"]
    assert "Broker unreachable" not in caplog.text
    unreachable = WaitingComms(reached=False)
    publish_model_error(config, "no model", comms=unreachable)
    assert unreachable.calls == ["start", "publish_and_wait", "stop"]
    assert "Broker unreachable: the model error is only in this log" in caplog.text
