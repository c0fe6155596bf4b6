"""The detector's answers to its cameras' commands, heard for as long as a config entry is loaded.

A detector whose info lists the `command_results` feature answers every command of a camera on
P/<cam>/<command>/result (QoS 1, not retained): `{"request_id": <id or null>, "ok": bool,
"reason": str|null}`. One subscription per entry hears them all, so a service call waits for
no subscription of its own; a command is published only once the broker has that subscription
(see `async_ready`), so its answer cannot be missed.
"""

from __future__ import annotations

import asyncio
import json
import logging

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback

from .const import REQUEST_ID
from .info import result_topic

_LOGGER = logging.getLogger(__name__)

# The detector's answers are QoS 1; so is the subscription that hears them.
ANSWER_QOS = 1

type Answer = tuple[bool, str | None]  # (ok, the detector's reason)


class CommandAnswers:
    """Hands each answer to the request that waits for it (by its request id)."""

    def __init__(self, hass: HomeAssistant, prefix: str) -> None:
        """Prepare the subscription to every camera's answers under a prefix."""
        self.hass = hass
        self.topic = result_topic(prefix, "+", "+")
        self._waiting: dict[str, asyncio.Future[Answer]] = {}
        self._unsubscribe: CALLBACK_TYPE | None = None

    async def async_start(self) -> None:
        """Subscribe to the answers."""
        self._unsubscribe = await mqtt.async_subscribe(
            self.hass, self.topic, self._answer_received, qos=ANSWER_QOS
        )

    @callback
    def async_stop(self) -> None:
        """Unsubscribe; the requests still waiting get no answer (they time out)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def async_ready(self) -> None:
        """Return once the broker has the subscription: at once when it has, else when the
        MQTT client's pending subscriptions (HA sends them in batches) were acknowledged.
        The caller bounds the wait."""
        subscribed = asyncio.Event()
        stop_watching = mqtt.async_on_subscribe_done(
            self.hass, self.topic, ANSWER_QOS, subscribed.set
        )
        try:
            await subscribed.wait()
        finally:
            stop_watching()

    @callback
    def expect(self, request_id: str) -> asyncio.Future[Answer]:
        """The answer to a request about to be published (forget it when done)."""
        answer: asyncio.Future[Answer] = self.hass.loop.create_future()
        self._waiting[request_id] = answer
        return answer

    @callback
    def forget(self, request_id: str) -> None:
        """Stop waiting for a request's answer."""
        self._waiting.pop(request_id, None)

    @callback
    def _answer_received(self, msg: mqtt.ReceiveMessage) -> None:
        parsed = parse_answer(msg.payload)
        if parsed is None:
            _LOGGER.debug("Ignoring %s: not a command result", msg.topic)
            return
        request_id, ok, reason = parsed
        # Answers to other requests (another entry's, an HA button's without an id) pass by.
        answer = self._waiting.get(request_id) if request_id is not None else None
        if answer is not None and not answer.done():
            answer.set_result((ok, reason))


def parse_answer(payload: str | bytes | bytearray) -> tuple[str | None, bool, str | None] | None:
    """(request id, ok, reason) of a command result, or None when it is not one."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        return None
    request_id, reason = data.get(REQUEST_ID), data.get("reason")
    if not isinstance(request_id, str | None) or not isinstance(reason, str | None):
        return None
    return request_id, data["ok"], reason
