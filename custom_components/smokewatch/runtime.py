"""What a loaded SmokeWatch config entry keeps: the detector's latest info, stats and health.

An entry follows one detector: a lone one's topics are P/info, P/available and P/stats, an
instance's P/instance/<id>/... (entry data `instance`). The prefix's bridge is shared with the
other detectors of the prefix (see bridge.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.util import dt as dt_util

from .answers import CommandAnswers
from .bridge import BridgeWatch, async_release_bridge, async_watch_bridge, json_object
from .const import (
    AVAILABLE_LEAF,
    CONF_INSTANCE,
    CONF_OFFLINE_MINUTES,
    CONF_PREFIX,
    DEFAULT_OFFLINE_MINUTES,
    DOMAIN,
    INFO_LEAF,
    INFO_WAIT_SECONDS,
    ISSUE_MODEL_MISSING,
    ISSUE_OFFLINE,
    STATS_LEAF,
    STATUS_MODEL_MISSING,
)
from .info import DetectorInfo, detector_location, detector_topic, parse_info

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
        self.instance: str | None = entry.data.get(CONF_INSTANCE)
        self.offline_delay = _offline_delay(entry)
        self.info: DetectorInfo | None = None
        self._info_arrived = asyncio.Event()
        self.available: str | None = None
        self.stats: dict[str, Any] | None = None
        self.bridge: BridgeWatch | None = None
        self.answers = CommandAnswers(hass, self.prefix)
        self.last_seen: datetime | None = None
        self._offline_timer: CALLBACK_TYPE | None = None
        self._unsubscribes: list[CALLBACK_TYPE] = []

    @property
    def location(self) -> str:
        """Where the detector's own topics live (P, or P/instance/<id>): how logs and repair
        issues name it."""
        return detector_location(self.prefix, self.instance)

    async def async_start(self) -> None:
        """Subscribe to the detector's health topics and its cameras' answers to commands,
        and follow the prefix's bridge."""
        subscriptions = {
            INFO_LEAF: self._info_received,
            AVAILABLE_LEAF: self._available_received,
            STATS_LEAF: self._stats_received,
        }
        for leaf, handler in subscriptions.items():
            topic = detector_topic(self.prefix, leaf, self.instance)
            self._unsubscribes.append(await mqtt.async_subscribe(self.hass, topic, handler, qos=1))
        await self.answers.async_start()
        self.bridge = await async_watch_bridge(self.hass, self.prefix, self.entry.entry_id)
        # Retained messages arrive right after subscribing; until then the detector counts as
        # offline, which only raises an issue if it lasts for the whole delay.
        self._update_offline()

    @callback
    def async_stop(self) -> None:
        """Unsubscribe, cancel the offline timer and withdraw this detector's issues (and the
        bridge's, when no other entry of the prefix follows it)."""
        while self._unsubscribes:
            self._unsubscribes.pop()()
        self.answers.async_stop()
        self._cancel_offline_timer()
        for kind in (ISSUE_OFFLINE, ISSUE_MODEL_MISSING):
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(kind, self.entry))
        if self.bridge is not None:
            async_release_bridge(self.hass, self.prefix, self.entry.entry_id)
            self.bridge = None

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
        self.stats = json_object(msg)

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
            self.location,
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
                "detector": self.location,
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
                    "detector": self.location,
                    "error": self.info.error or "unknown error",
                },
            )
        elif self.info is not None:
            ir.async_delete_issue(self.hass, DOMAIN, identifier)


def _offline_delay(entry: ConfigEntry) -> timedelta:
    return timedelta(minutes=entry.options.get(CONF_OFFLINE_MINUTES, DEFAULT_OFFLINE_MINUTES))
