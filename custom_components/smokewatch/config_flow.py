"""Config flow for SmokeWatch: found by MQTT discovery (P/info) or entered by its topic prefix."""

from __future__ import annotations

import asyncio
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
    CONF_NODE_ID,
    CONF_OFFLINE_MINUTES,
    CONF_PREFIX,
    DEFAULT_OFFLINE_MINUTES,
    DEFAULT_PREFIX,
    DOMAIN,
    INFO_WAIT_SECONDS,
    MAX_OFFLINE_MINUTES,
    MIN_OFFLINE_MINUTES,
)
from .info import DetectorInfo, info_topic, parse_info
from .validation import vol

_LOGGER = logging.getLogger(__name__)

PREFIX_SCHEMA = vol.Schema({vol.Required(CONF_PREFIX): selector.TextSelector()})


def _entry_title(info: DetectorInfo) -> str:
    return "SmokeWatch" if info.prefix == DEFAULT_PREFIX else f"SmokeWatch ({info.prefix})"


def _entry_data(info: DetectorInfo) -> dict[str, Any]:
    return {CONF_PREFIX: info.prefix, CONF_NODE_ID: info.node_id}


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
    """One config entry per detector, keyed by the detector's node id."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with no detector found yet."""
        self._info: DetectorInfo | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> SmokeWatchOptionsFlow:
        """The options flow of an entry."""
        return SmokeWatchOptionsFlow()

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """A detector published its retained info on the default prefix."""
        info = parse_info(discovery_info.payload)
        if info is None:
            return self.async_abort(reason="not_smokewatch")
        await self.async_set_unique_id(info.node_id)
        self._abort_if_unique_id_configured(updates=_entry_data(info))
        self._info = info
        self.context["title_placeholders"] = {"prefix": info.prefix}
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
                "prefix": self._info.prefix,
                "cameras": ", ".join(c.name for c in self._info.cameras.values()) or "-",
            },
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The user gives the detector's topic prefix."""
        errors: dict[str, str] = {}
        if user_input is not None:
            info, error = await self._async_fetch_info(user_input[CONF_PREFIX].strip())
            if info is None:
                errors["base"] = error
            else:
                await self.async_set_unique_id(info.node_id, raise_on_progress=False)
                self._abort_if_unique_id_configured()
                return self.async_create_entry(title=_entry_title(info), data=_entry_data(info))
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                PREFIX_SCHEMA, user_input or {CONF_PREFIX: DEFAULT_PREFIX}
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point an entry at the detector's new topic prefix."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            info, error = await self._async_fetch_info(user_input[CONF_PREFIX].strip())
            if info is None:
                errors["base"] = error
            else:
                if info.node_id != entry.unique_id:
                    await self.async_set_unique_id(info.node_id, raise_on_progress=False)
                    self._abort_if_unique_id_configured()
                return self.async_update_reload_and_abort(
                    entry,
                    unique_id=info.node_id,
                    title=_entry_title(info),
                    data_updates=_entry_data(info),
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                PREFIX_SCHEMA, user_input or {CONF_PREFIX: entry.data[CONF_PREFIX]}
            ),
            errors=errors,
        )

    async def _async_fetch_info(self, prefix: str) -> tuple[DetectorInfo | None, str]:
        """The detector's retained info under a prefix, or None and the form error."""
        if not _valid_prefix(prefix):
            return None, "invalid_prefix"
        if not await mqtt.async_wait_for_mqtt_client(self.hass):
            return None, "cannot_connect"
        received: asyncio.Future[str | bytes | bytearray] = self.hass.loop.create_future()

        @callback
        def _info_received(msg: mqtt.ReceiveMessage) -> None:
            if msg.payload and not received.done():
                received.set_result(msg.payload)

        unsubscribe = await mqtt.async_subscribe(self.hass, info_topic(prefix), _info_received)
        try:
            async with asyncio.timeout(INFO_WAIT_SECONDS):
                payload = await received
        except TimeoutError:
            _LOGGER.debug("No retained SmokeWatch info on %s", info_topic(prefix))
            return None, "no_detector"
        finally:
            unsubscribe()
        info = parse_info(payload)
        if info is None:
            return None, "not_smokewatch"
        return info, ""


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
