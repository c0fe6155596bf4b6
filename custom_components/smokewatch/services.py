"""Services that drive a detector's cameras through its MQTT command topics.

Each service returns once every targeted camera's detector has answered (see commands.py):
a refusal or a detector that does not answer is an error, with the detector's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.target import TargetSelection, async_extract_referenced_entity_ids

from .cameras import CameraTarget, async_find_camera
from .commands import async_command_cameras
from .const import (
    ATTR_ENABLED,
    ATTR_NAME,
    ATTR_POLYGON,
    ATTR_RULE,
    ATTR_ZONES,
    BUTTON_FALSE_ALARM,
    BUTTON_RESET,
    BUTTON_TEST,
    DOMAIN,
    MAX_ZONES,
    PAYLOAD_PRESS,
    SERVICE_CLEAR_ZONES,
    SERVICE_MARK_FALSE_ALARM,
    SERVICE_RESET_ALERT,
    SERVICE_SET_ZONES,
    SERVICE_TEST_ALERT,
    SETTING_MASKS,
    ZONE_RULES,
)
from .validation import vol
from .zones import check_polygon

ZONE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_NAME): cv.string,
        vol.Required(ATTR_POLYGON): list,
        vol.Optional(ATTR_RULE, default="inside"): vol.In(ZONE_RULES),
        vol.Optional(ATTR_ENABLED, default=True): cv.boolean,
    }
)
TARGET_SCHEMA = vol.Schema(cv.TARGET_SERVICE_FIELDS)
SET_ZONES_SCHEMA = TARGET_SCHEMA.extend(
    {vol.Required(ATTR_ZONES): vol.All(cv.ensure_list, [ZONE_SCHEMA])}
)


def _zones_value(zones: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The masks command's value (the detector's masks JSON), or a translated validation
    error for what the detector would refuse (see zones.py): caught before anything is sent."""
    if len(zones) > MAX_ZONES:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="too_many_zones",
            translation_placeholders={"count": str(len(zones)), "max": str(MAX_ZONES)},
        )
    names: set[str] = set()
    masks = []
    for zone in zones:
        name = zone[ATTR_NAME]
        if not name.strip():
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="empty_zone_name"
            )
        if name in names:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="duplicate_zone",
                translation_placeholders={"zone": name},
            )
        names.add(name)
        polygon, problem = check_polygon(zone[ATTR_POLYGON])
        if problem is not None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_polygon",
                translation_placeholders={"zone": name, "reason": problem},
            )
        masks.append(
            {
                "name": name,
                "polygon": polygon,
                "rule": zone[ATTR_RULE],
                "enabled": zone[ATTR_ENABLED],
            }
        )
    return masks


async def _async_targets(hass: HomeAssistant, call: ServiceCall) -> list[CameraTarget]:
    """The cameras a call targets (devices, or the devices of targeted entities).

    HA expands areas, floors and labels to devices and entities; each device is then
    recognised as a camera by the detectors' info (see cameras.py).
    """
    selected = async_extract_referenced_entity_ids(hass, TargetSelection(call.data))
    device_ids = selected.referenced_devices | selected.missing_devices
    registry = er.async_get(hass)
    for entity_id in selected.referenced | selected.indirectly_referenced:
        entity = registry.async_get(entity_id)
        if entity is not None and entity.device_id is not None:
            device_ids.add(entity.device_id)
    if not device_ids:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_target")
    targets: list[CameraTarget] = []
    for device_id in sorted(device_ids):
        found = await async_find_camera(hass, device_id)
        if found.target is None and found.waited_for:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="no_detector_info",
                translation_placeholders={
                    "device_id": device_id,
                    "prefixes": ", ".join(found.waited_for),
                },
            )
        if found.target is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_a_camera",
                translation_placeholders={"device_id": device_id},
            )
        targets.append(found.target)
    return targets


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the SmokeWatch services."""

    async def set_zones(call: ServiceCall) -> None:
        value = _zones_value(call.data[ATTR_ZONES])
        await async_command_cameras(hass, await _async_targets(hass, call), SETTING_MASKS, value)

    async def clear_zones(call: ServiceCall) -> None:
        await async_command_cameras(hass, await _async_targets(hass, call), SETTING_MASKS, [])

    def press(button: str) -> Callable[[ServiceCall], Coroutine[Any, Any, None]]:
        async def handler(call: ServiceCall) -> None:
            targets = await _async_targets(hass, call)
            await async_command_cameras(hass, targets, button, PAYLOAD_PRESS)

        return handler

    hass.services.async_register(DOMAIN, SERVICE_SET_ZONES, set_zones, schema=SET_ZONES_SCHEMA)
    for name, handler in (
        (SERVICE_CLEAR_ZONES, clear_zones),
        (SERVICE_RESET_ALERT, press(BUTTON_RESET)),
        (SERVICE_TEST_ALERT, press(BUTTON_TEST)),
        # "Not smoke": the detector owns the alert's boxes, turns them into masks and ends
        # the alert, or refuses (no alert with boxes yet, a test alert) and says why.
        (SERVICE_MARK_FALSE_ALARM, press(BUTTON_FALSE_ALARM)),
    ):
        hass.services.async_register(DOMAIN, name, handler, schema=TARGET_SCHEMA)
