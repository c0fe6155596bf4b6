"""What a loaded SmokeWatch config entry keeps: the detector's latest info, stats and health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .const import (
    AVAILABLE_LEAF,
    BRIDGE_AVAILABLE_LEAF,
    BRIDGE_STATS_LEAF,
    CONF_OFFLINE_MINUTES,
    CONF_PREFIX,
    DEFAULT_OFFLINE_MINUTES,
    DOMAIN,
    INFO_WAIT_SECONDS,
    ISSUE_BRIDGE_FAILING,
    ISSUE_MODEL_MISSING,
    ISSUE_OFFLINE,
    STATS_LEAF,
    STATUS_MODEL_MISSING,
)
from .info import DetectorInfo, detector_topic, info_topic, parse_info

_LOGGER = logging.getLogger(__name__)

type SmokeWatchConfigEntry = ConfigEntry[SmokeWatchRuntime]


def issue_id(kind: str, entry: ConfigEntry) -> str:
    """The repair issue id of one kind of problem of one detector."""
    return f"{kind}_{entry.entry_id}"


class SmokeWatchRuntime:
    """Follows one detector over MQTT and raises or clears its repair issues."""

    def __init__(self, hass: HomeAssistant, entry: SmokeWatchConfigEntry) -> None:
        """Prepare the runtime of a config entry (nothing is subscribed yet)."""
        self.hass = hass
        self.entry = entry
        self.prefix: str = entry.data[CONF_PREFIX]
        self.offline_delay = _offline_delay(entry)
        self.info: DetectorInfo | None = None
        self._info_arrived = asyncio.Event()
        self.available: str | None = None
        self.stats: dict[str, Any] | None = None
        self.bridge_available: str | None = None
        self.bridge_stats: dict[str, Any] | None = None
        self.last_seen: datetime | None = None
        self._bridge_failing = False
        self._offline_timer: CALLBACK_TYPE | None = None
        self._unsubscribes: list[CALLBACK_TYPE] = []

    async def async_start(self) -> None:
        """Subscribe to the detector's and the bridge's health topics."""
        subscriptions = {
            info_topic(self.prefix): self._info_received,
            detector_topic(self.prefix, AVAILABLE_LEAF): self._available_received,
            detector_topic(self.prefix, STATS_LEAF): self._stats_received,
            detector_topic(self.prefix, BRIDGE_AVAILABLE_LEAF): self._bridge_available_received,
            detector_topic(self.prefix, BRIDGE_STATS_LEAF): self._bridge_stats_received,
        }
        for topic, handler in subscriptions.items():
            self._unsubscribes.append(await mqtt.async_subscribe(self.hass, topic, handler, qos=1))
        # Retained messages arrive right after subscribing; until then the detector counts as
        # offline, which only raises an issue if it lasts for the whole delay.
        self._update_offline()

    @callback
    def async_stop(self) -> None:
        """Unsubscribe, cancel the offline timer and withdraw this detector's issues."""
        while self._unsubscribes:
            self._unsubscribes.pop()()
        self._cancel_offline_timer()
        for kind in (ISSUE_OFFLINE, ISSUE_BRIDGE_FAILING, ISSUE_MODEL_MISSING):
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(kind, self.entry))

    @callback
    def async_apply_options(self) -> None:
        """Use the entry's current options (a new offline delay restarts a running wait)."""
        delay = _offline_delay(self.entry)
        if delay != self.offline_delay:
            self.offline_delay = delay
            self._cancel_offline_timer()
            self._update_offline()

    async def async_wait_for_info(self) -> DetectorInfo | None:
        """The detector's info, waiting up to INFO_WAIT_SECONDS for it when none came yet."""
        if self.info is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INFO_WAIT_SECONDS):
                    await self._info_arrived.wait()
        return self.info

    @property
    def online(self) -> bool:
        """Whether the detector says it is online and has described itself."""
        return self.available == "online" and self.info is not None

    # -- messages --------------------------------------------------------------------------

    @callback
    def _info_received(self, msg: mqtt.ReceiveMessage) -> None:
        self.info = parse_info(msg.payload)
        if self.info is not None:
            self._info_arrived.set()
        else:
            self._info_arrived.clear()
            if msg.payload:
                _LOGGER.warning("Ignoring %s: not a SmokeWatch detector description", msg.topic)
        self._update_model_issue()
        self._update_offline()

    @callback
    def _available_received(self, msg: mqtt.ReceiveMessage) -> None:
        self.available = str(msg.payload) or None
        if self.available == "online":
            self.last_seen = dt_util.utcnow()
        self._update_offline()

    @callback
    def _stats_received(self, msg: mqtt.ReceiveMessage) -> None:
        self.stats = _json_object(msg)

    @callback
    def _bridge_available_received(self, msg: mqtt.ReceiveMessage) -> None:
        self.bridge_available = str(msg.payload) or None

    @callback
    def _bridge_stats_received(self, msg: mqtt.ReceiveMessage) -> None:
        previous, self.bridge_stats = self.bridge_stats, _json_object(msg)
        self._update_bridge_issue(previous, self.bridge_stats)

    # -- repairs ---------------------------------------------------------------------------

    def _update_offline(self) -> None:
        if self.online:
            self._cancel_offline_timer()
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(ISSUE_OFFLINE, self.entry))
        elif self._offline_timer is None:
            self._offline_timer = async_call_later(
                self.hass, self.offline_delay, self._offline_too_long
            )

    @callback
    def _offline_too_long(self, _now: datetime) -> None:
        self._offline_timer = None
        if self.online:
            return
        _LOGGER.warning(
            "SmokeWatch detector %s has been offline for more than %s",
            self.prefix,
            self.offline_delay,
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id(ISSUE_OFFLINE, self.entry),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_OFFLINE,
            translation_placeholders={
                "prefix": self.prefix,
                "minutes": str(int(self.offline_delay.total_seconds() // 60)),
            },
        )

    def _cancel_offline_timer(self) -> None:
        if self._offline_timer is not None:
            self._offline_timer()
            self._offline_timer = None

    def _update_model_issue(self) -> None:
        identifier = issue_id(ISSUE_MODEL_MISSING, self.entry)
        if self.info is not None and self.info.status == STATUS_MODEL_MISSING:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                identifier,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_MODEL_MISSING,
                translation_placeholders={
                    "prefix": self.prefix,
                    "error": self.info.error or "unknown error",
                },
            )
        elif self.info is not None:
            ir.async_delete_issue(self.hass, DOMAIN, identifier)

    def _update_bridge_issue(
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
        identifier = issue_id(ISSUE_BRIDGE_FAILING, self.entry)
        if failing:
            self._bridge_failing = True
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
        elif self._bridge_failing and (not last_error or pending == 0):
            self._bridge_failing = False
            ir.async_delete_issue(self.hass, DOMAIN, identifier)


def _offline_delay(entry: ConfigEntry) -> timedelta:
    return timedelta(minutes=entry.options.get(CONF_OFFLINE_MINUTES, DEFAULT_OFFLINE_MINUTES))


def _json_object(msg: mqtt.ReceiveMessage) -> dict[str, Any] | None:
    try:
        data = json.loads(msg.payload)
    except ValueError:
        _LOGGER.debug("Ignoring non-JSON payload on %s", msg.topic)
        return None
    return data if isinstance(data, dict) else None


def _number(data: dict[str, Any], key: str) -> float:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
