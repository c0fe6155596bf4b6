"""The Pyronear bridge of a prefix: its health, and its repair issue raised once per prefix.

One bridge serves a prefix however many detectors share it (P/bridge/...), while each detector
has its own config entry: the entries of one prefix share one watch, the first one's setup
starts it and the last one's unload stops it and withdraws its issue.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util.hass_dict import HassKey

from .const import BRIDGE_AVAILABLE_LEAF, BRIDGE_STATS_LEAF, DOMAIN, ISSUE_BRIDGE_FAILING
from .info import prefix_topic

_LOGGER = logging.getLogger(__name__)

DATA_BRIDGES: HassKey[dict[str, BridgeWatch]] = HassKey(f"{DOMAIN}_bridges")


def bridge_issue_id(prefix: str) -> str:
    """The repair issue id of the bridge of a prefix."""
    return f"{ISSUE_BRIDGE_FAILING}_{prefix}"


async def async_watch_bridge(hass: HomeAssistant, prefix: str, entry_id: str) -> BridgeWatch:
    """The watch of a prefix's bridge, started by its first user (a config entry)."""
    bridges = hass.data.setdefault(DATA_BRIDGES, {})
    watch = bridges.get(prefix)
    if watch is None:
        watch = bridges[prefix] = BridgeWatch(hass, prefix)
        await watch.async_start()
    watch.users.add(entry_id)
    return watch


@callback
def async_release_bridge(hass: HomeAssistant, prefix: str, entry_id: str) -> None:
    """An entry no longer follows the prefix's bridge; the last one stops the watch."""
    bridges = hass.data.get(DATA_BRIDGES, {})
    watch = bridges.get(prefix)
    if watch is None:
        return
    watch.users.discard(entry_id)
    if not watch.users:
        del bridges[prefix]
        watch.async_stop()


class BridgeWatch:
    """Follows one prefix's bridge and raises or clears its repair issue."""

    def __init__(self, hass: HomeAssistant, prefix: str) -> None:
        """Prepare the watch (nothing is subscribed yet)."""
        self.hass = hass
        self.prefix = prefix
        self.available: str | None = None
        self.stats: dict[str, Any] | None = None
        self.users: set[str] = set()
        self._failing = False
        self._unsubscribes: list[CALLBACK_TYPE] = []

    async def async_start(self) -> None:
        """Subscribe to the bridge's health topics."""
        for leaf, handler in (
            (BRIDGE_AVAILABLE_LEAF, self._available_received),
            (BRIDGE_STATS_LEAF, self._stats_received),
        ):
            topic = prefix_topic(self.prefix, leaf)
            self._unsubscribes.append(await mqtt.async_subscribe(self.hass, topic, handler, qos=1))

    @callback
    def async_stop(self) -> None:
        """Unsubscribe and withdraw the issue."""
        while self._unsubscribes:
            self._unsubscribes.pop()()
        ir.async_delete_issue(self.hass, DOMAIN, bridge_issue_id(self.prefix))

    @callback
    def _available_received(self, msg: mqtt.ReceiveMessage) -> None:
        self.available = str(msg.payload) or None

    @callback
    def _stats_received(self, msg: mqtt.ReceiveMessage) -> None:
        previous, self.stats = self.stats, json_object(msg)
        self._update_issue(previous, self.stats)

    def _update_issue(
        self, previous: dict[str, Any] | None, current: dict[str, Any] | None
    ) -> None:
        """Raise the issue when deliveries fail, clear it when the outbox drains or delivers.

        Failing: the failed count rose, or an error is set while the outbox grows. Healthy
        again: no error any more, or nothing pending.
        """
        if current is None:
            return
        failed, pending = _number(current, "failed"), _number(current, "pending")
        last_error = current.get("last_error")
        failing = previous is not None and (
            failed > _number(previous, "failed")
            or (bool(last_error) and pending > _number(previous, "pending"))
        )
        identifier = bridge_issue_id(self.prefix)
        if failing:
            self._failing = True
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                identifier,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_BRIDGE_FAILING,
                translation_placeholders={
                    "prefix": self.prefix,
                    "pending": str(int(pending)),
                    "failed": str(int(failed)),
                    "error": str(last_error or "none reported"),
                },
            )
        elif self._failing and (not last_error or pending == 0):
            self._failing = False
            ir.async_delete_issue(self.hass, DOMAIN, identifier)


def json_object(msg: mqtt.ReceiveMessage) -> dict[str, Any] | None:
    """The JSON object of a message, or None (logged at debug) for anything else."""
    try:
        data = json.loads(msg.payload)
    except ValueError:
        _LOGGER.debug("Ignoring non-JSON payload on %s", msg.topic)
        return None
    return data if isinstance(data, dict) else None


def _number(data: dict[str, Any], key: str) -> float:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
