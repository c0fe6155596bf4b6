"""Config flow for SmokeWatch: one entry per detector, found by MQTT discovery of its retained
info or under a topic prefix the user types.

A lone detector describes itself on P/info; each of several detectors sharing a prefix on
P/instance/<id>/info. The manifest's discovery topics are the default prefix's (both forms), so
each detector of a sharded install is offered on its own: one click per detector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.helpers import selector
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from .const import (
    CONF_INSTANCE,
    CONF_NODE_ID,
    CONF_OFFLINE_MINUTES,
    CONF_PREFIX,
    DEFAULT_OFFLINE_MINUTES,
    DEFAULT_PREFIX,
    DOMAIN,
    INFO_SETTLE_SECONDS,
    INFO_WAIT_SECONDS,
    MAX_OFFLINE_MINUTES,
    MIN_OFFLINE_MINUTES,
)
from .info import DetectorInfo, info_topic, instance_info_topics, parse_info
from .validation import vol

_LOGGER = logging.getLogger(__name__)

PREFIX_SCHEMA = vol.Schema({vol.Required(CONF_PREFIX): selector.TextSelector()})
CONF_DETECTOR = "detector"


def _entry_title(info: DetectorInfo) -> str:
    title = "SmokeWatch" if info.instance is None else f"SmokeWatch {info.instance}"
    return title if info.prefix == DEFAULT_PREFIX else f"{title} ({info.prefix})"


def _entry_data(info: DetectorInfo) -> dict[str, Any]:
    data = {CONF_PREFIX: info.prefix, CONF_NODE_ID: info.node_id}
    if info.instance is not None:
        data[CONF_INSTANCE] = info.instance
    return data


def _cameras(info: DetectorInfo) -> str:
    return ", ".join(camera.name for camera in info.cameras.values()) or "-"


def _valid_prefix(prefix: str) -> bool:
    """A prefix is a publish topic without wildcards and without a trailing slash."""
    if not prefix or prefix.endswith("/") or prefix.startswith("$"):
        return False
    try:
        mqtt.valid_publish_topic(prefix)
    except vol.Invalid:
        return False
    return True


class SmokeWatchConfigFlow(ConfigFlow, domain=DOMAIN):
    """One config entry per detector, keyed by the detector's node id (and instance id)."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with no detector found yet."""
        self._info: DetectorInfo | None = None
        self._choices: dict[str, DetectorInfo] = {}
        self._prefix = DEFAULT_PREFIX

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> SmokeWatchOptionsFlow:
        """The options flow of an entry."""
        return SmokeWatchOptionsFlow()

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """A detector published its retained info on the default prefix (P/info, or
        P/instance/<id>/info for one of several)."""
        info = parse_info(discovery_info.payload)
        if info is None:
            return self.async_abort(reason="not_smokewatch")
        await self.async_set_unique_id(info.unique_id)
        self._abort_if_unique_id_configured(updates=_entry_data(info))
        self._info = info
        self.context["title_placeholders"] = {"detector": info.location}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask the user to confirm the discovered detector."""
        assert self._info is not None
        if user_input is not None:
            return self.async_create_entry(
                title=_entry_title(self._info), data=_entry_data(self._info)
            )
        self._set_confirm_only()
        return self.async_show_form(
            step_id="discovery_confirm",
            description_placeholders={
                "detector": self._info.location,
                "cameras": _cameras(self._info),
            },
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The user gives the detectors' topic prefix; one detector found there is added,
        several are offered to choose from (those not configured yet)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._prefix = user_input[CONF_PREFIX].strip()
            found, error = await self._async_find_detectors(self._prefix)
            if not found:
                errors["base"] = error
            else:
                configured = self._async_current_ids(include_ignore=False)
                new = [info for info in found if info.unique_id not in configured]
                if not new:
                    return self.async_abort(reason="already_configured")
                if len(new) == 1:
                    return await self._async_create(new[0])
                self._choices = {info.unique_id: info for info in new}
                return await self.async_step_pick_detector()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                PREFIX_SCHEMA, user_input or {CONF_PREFIX: DEFAULT_PREFIX}
            ),
            errors=errors,
        )

    async def async_step_pick_detector(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Several detectors share the prefix: the user picks one not configured yet."""
        if user_input is not None:
            return await self._async_create(self._choices[user_input[CONF_DETECTOR]])
        options = [
            selector.SelectOptionDict(value=unique_id, label=f"{info.location}: {_cameras(info)}")
            for unique_id, info in self._choices.items()
        ]
        schema = vol.Schema(
            {
                vol.Required(CONF_DETECTOR): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=options, mode=selector.SelectSelectorMode.LIST
                    )
                )
            }
        )
        return self.async_show_form(
            step_id="pick_detector",
            data_schema=schema,
            description_placeholders={"prefix": self._prefix},
        )

    async def _async_create(self, info: DetectorInfo) -> ConfigFlowResult:
        await self.async_set_unique_id(info.unique_id, raise_on_progress=False)
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title=_entry_title(info), data=_entry_data(info))

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point an entry at the detector's new topic prefix (the same instance there, or
        the only detector there)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            found, error = await self._async_find_detectors(user_input[CONF_PREFIX].strip())
            instance = entry.data.get(CONF_INSTANCE)
            same = [info for info in found if info.instance == instance]
            info = same[0] if same else found[0] if len(found) == 1 else None
            if info is None:
                errors["base"] = error or "several_detectors"
            else:
                if info.unique_id != entry.unique_id:
                    await self.async_set_unique_id(info.unique_id, raise_on_progress=False)
                    self._abort_if_unique_id_configured()
                return self.async_update_reload_and_abort(
                    entry,
                    unique_id=info.unique_id,
                    title=_entry_title(info),
                    data=_entry_data(info),
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                PREFIX_SCHEMA, user_input or {CONF_PREFIX: entry.data[CONF_PREFIX]}
            ),
            errors=errors,
        )

    async def _async_find_detectors(self, prefix: str) -> tuple[list[DetectorInfo], str]:
        """The detectors whose retained info is under a prefix (a lone one's, every
        instance's), or none and the form error."""
        if not _valid_prefix(prefix):
            return [], "invalid_prefix"
        if not await mqtt.async_wait_for_mqtt_client(self.hass):
            return [], "cannot_connect"
        infos: dict[str, DetectorInfo | None] = {}  # by topic; None: not a SmokeWatch info
        new_topic = asyncio.Event()

        @callback
        def _info_received(msg: mqtt.ReceiveMessage) -> None:
            if not msg.payload:
                return
            if msg.topic not in infos:
                new_topic.set()
            infos[msg.topic] = parse_info(msg.payload)

        topics = (info_topic(prefix), instance_info_topics(prefix))
        unsubscribes = [
            await mqtt.async_subscribe(self.hass, topic, _info_received) for topic in topics
        ]
        try:
            async with asyncio.timeout(INFO_WAIT_SECONDS):
                await new_topic.wait()
            # The retained infos of every detector arrive together: listen on until none new
            # came for a moment (bounded, should the prefix hold an endless stream of them).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INFO_WAIT_SECONDS):
                    while True:
                        new_topic.clear()
                        try:
                            async with asyncio.timeout(INFO_SETTLE_SECONDS):
                                await new_topic.wait()
                        except TimeoutError:
                            break
        except TimeoutError:
            _LOGGER.debug("No retained SmokeWatch info under %s", prefix)
            return [], "no_detector"
        finally:
            for unsubscribe in unsubscribes:
                unsubscribe()
        found = sorted(
            (info for info in infos.values() if info is not None), key=lambda i: i.location
        )
        return found, "" if found else "not_smokewatch"


class SmokeWatchOptionsFlow(OptionsFlow):
    """How long the detector may stay offline before a repair issue is raised."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The only options step."""
        if user_input is not None:
            return self.async_create_entry(
                data={CONF_OFFLINE_MINUTES: int(user_input[CONF_OFFLINE_MINUTES])}
            )
        schema = vol.Schema(
            {
                vol.Required(CONF_OFFLINE_MINUTES): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=MIN_OFFLINE_MINUTES,
                        max=MAX_OFFLINE_MINUTES,
                        step=1,
                        mode=selector.NumberSelectorMode.BOX,
                        unit_of_measurement="min",
                    )
                )
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema,
                {
                    CONF_OFFLINE_MINUTES: self.config_entry.options.get(
                        CONF_OFFLINE_MINUTES, DEFAULT_OFFLINE_MINUTES
                    )
                },
            ),
        )
