"""SmokeWatch: wildfire-smoke detection over MQTT.

The entities and the camera devices' "Smoke alert started/ended" triggers come from the
detector's MQTT discovery and belong to the MQTT integration; this integration adds what
discovery cannot: a config flow per detector, services, diagnostics and repairs.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
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


async def _async_entry_updated(hass: HomeAssistant, entry: SmokeWatchConfigEntry) -> None:
    # Entry updates also come from discovery (its discovery keys): apply the options in
    # place instead of reloading, which would drop the retained state already received.
    entry.runtime_data.async_apply_options()
