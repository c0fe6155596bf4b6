"""SmokeWatch: wildfire-smoke detection over MQTT.

The entities come from the detector's MQTT discovery; this integration adds what discovery
cannot: a config flow per detector, services, diagnostics, repairs and device triggers.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN, MQTT_DOMAIN
from .frontend import async_register_card
from .runtime import SmokeWatchConfigEntry, SmokeWatchRuntime
from .services import async_setup_services

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services and the zone card once, whether or not a detector is configured."""
    async_setup_services(hass)
    await async_register_card(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: SmokeWatchConfigEntry) -> bool:
    """Follow one detector."""
    runtime = SmokeWatchRuntime(hass, entry)
    entry.runtime_data = runtime
    await runtime.async_start()
    entry.async_on_unload(runtime.async_stop)
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: SmokeWatchConfigEntry) -> bool:
    """Stop following the detector (the subscriptions go with the entry's unload callbacks)."""
    return True


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: SmokeWatchConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user detach a device that is no longer one of the detector's cameras."""
    info = entry.runtime_data.info if hasattr(entry, "runtime_data") else None
    if info is None:
        return True
    current = {camera.device_id for camera in info.cameras.values()}
    return not any(
        domain == MQTT_DOMAIN and value in current for domain, value in device.identifiers
    )


async def _async_entry_updated(hass: HomeAssistant, entry: SmokeWatchConfigEntry) -> None:
    # Entry updates also come from discovery (its discovery keys): apply the options in
    # place instead of reloading, which would drop the retained state already received.
    entry.runtime_data.async_apply_options()
