"""The one way SmokeWatch sets up a paho-mqtt client, for the service, the bridge and the demo.

Every client gets what `mqtt:` in the config says (broker credentials, TLS) and the same
connection policy: MQTT 3.1.1, reconnection with backoff from 1 s to 30 s, a bound on the
messages queued while the broker is away, and a retained `offline` last will on its
availability topic. Topics below the prefix get it in one place, `prefixed`. It imports
neither the service nor the bridge, so both may use it.
"""

from __future__ import annotations

import logging
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from detector.config import MqttConfig

_LOGGER = logging.getLogger(__name__)

RECONNECT_MIN_DELAY = 1  # seconds, doubled at each failed attempt
RECONNECT_MAX_DELAY = 30
ONLINE, OFFLINE = "online", "offline"


def prefixed(prefix: str, relative: str) -> str:
    """The full topic of a topic below the prefix (`smokewatch` + `a/smoke`)."""
    return f"{prefix}/{relative}"


def make_client(
    config: MqttConfig,
    *,
    client_id: str | None,
    will_topic: str | None,
    queue_limit: int,
    persistent_session: bool = False,
) -> mqtt.Client:
    """A paho client for the broker of `config`, not yet connected.

    `client_id` None lets paho draw one (a throw-away client such as the demo's camera).
    `will_topic` (a full topic) gets a retained `offline` if the connection drops without a
    goodbye. `queue_limit` bounds the messages kept while disconnected, so memory stays flat
    whatever the outage. `persistent_session` asks the broker to keep the session and its QoS 1
    messages while the client is away, and leaves acknowledging them to the caller
    (`client.ack`): the bridge acknowledges a detection only once it is on disk.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or "",
        clean_session=not persistent_session,
        protocol=mqtt.MQTTv311,
        manual_ack=persistent_session,
    )
    if will_topic is not None:
        client.will_set(will_topic, OFFLINE, qos=1, retain=True)
    if config.username is not None:
        # Secrets are wrapped so they never print; paho wants plain strings.
        password = None if config.password is None else str(config.password)
        client.username_pw_set(str(config.username), password)
    if config.tls.enabled:
        client.tls_set(
            ca_certs=config.tls.ca_certs,
            certfile=config.tls.certfile,
            keyfile=config.tls.keyfile,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(config.tls.insecure)
    client.reconnect_delay_set(min_delay=RECONNECT_MIN_DELAY, max_delay=RECONNECT_MAX_DELAY)
    client.max_queued_messages_set(queue_limit)
    return client


def say_offline_and_disconnect(
    client: mqtt.Client, will_topic: str, *, connected: bool, timeout: float = 5.0
) -> None:
    """Publish the retained `offline` on the will topic (when connected), wait for it to leave
    (at most `timeout`), then disconnect and stop paho's network thread."""
    if connected:
        info = client.publish(will_topic, OFFLINE, qos=1, retain=True)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            _LOGGER.warning("Could not publish offline on %s before disconnecting", will_topic)
    client.disconnect()
    client.loop_stop()
