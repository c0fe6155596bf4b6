"""Device triggers "smoke alert started" / "smoke alert ended" on the camera devices."""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol
from homeassistant.components import mqtt
from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.device_automation.exceptions import (
    InvalidDeviceAutomationConfig,
)
from homeassistant.const import CONF_DEVICE_ID, CONF_DOMAIN, CONF_PLATFORM, CONF_TYPE
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .cameras import async_find_camera
from .const import (
    DOMAIN,
    PAYLOAD_OFF,
    PAYLOAD_ON,
    TRIGGER_SMOKE_ENDED,
    TRIGGER_SMOKE_STARTED,
    TRIGGER_TYPES,
)

_LOGGER = logging.getLogger(__name__)

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend({vol.Required(CONF_TYPE): vol.In(TRIGGER_TYPES)})

_PAYLOADS = {TRIGGER_SMOKE_STARTED: PAYLOAD_ON, TRIGGER_SMOKE_ENDED: PAYLOAD_OFF}


async def async_validate_trigger_config(hass: HomeAssistant, config: ConfigType) -> ConfigType:
    """Check the trigger's type and that its device is a SmokeWatch camera."""
    config = TRIGGER_SCHEMA(config)
    if async_find_camera(hass, config[CONF_DEVICE_ID]) is None:
        raise InvalidDeviceAutomationConfig(
            f"Device {config[CONF_DEVICE_ID]} is not a SmokeWatch camera"
        )
    return config


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    """The triggers of a camera device (none for other devices)."""
    if async_find_camera(hass, device_id) is None:
        return []
    return [
        {
            CONF_PLATFORM: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: trigger_type,
        }
        for trigger_type in TRIGGER_TYPES
    ]


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Fire on the camera's smoke state changing to ON (started) or OFF (ended).

    Retained messages replay the current state on subscribing and the detector re-publishes
    its states when it reconnects: only a change from the previous state fires.
    """
    target = async_find_camera(hass, config[CONF_DEVICE_ID])
    if target is None:
        raise HomeAssistantError(f"Device {config[CONF_DEVICE_ID]} is not a SmokeWatch camera")
    trigger_type: str = config[CONF_TYPE]
    wanted = _PAYLOADS[trigger_type]
    topic = f"{target.prefix}/{target.camera}/smoke"
    job = HassJob(action)
    last: dict[str, str | None] = {"payload": None}

    @callback
    def _smoke_received(msg: mqtt.ReceiveMessage) -> None:
        payload = str(msg.payload)
        previous, last["payload"] = last["payload"], payload
        if msg.retain or payload != wanted or previous == payload:
            return
        hass.async_run_hass_job(
            job,
            {
                "trigger": {
                    **trigger_info["trigger_data"],
                    CONF_PLATFORM: "device",
                    CONF_DOMAIN: DOMAIN,
                    CONF_DEVICE_ID: config[CONF_DEVICE_ID],
                    CONF_TYPE: trigger_type,
                    "camera": target.camera,
                    "topic": msg.topic,
                    "payload": payload,
                    "description": f"{target.name} smoke alert "
                    f"{'started' if trigger_type == TRIGGER_SMOKE_STARTED else 'ended'}",
                }
            },
        )

    _LOGGER.debug("Attaching %s trigger on %s", trigger_type, topic)
    return await mqtt.async_subscribe(hass, topic, _smoke_received, qos=1)
