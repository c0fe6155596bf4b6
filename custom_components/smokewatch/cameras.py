"""Find the SmokeWatch camera behind a device that MQTT discovery created."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import CONF_NODE_ID, CONF_PREFIX, DOMAIN, MQTT_DOMAIN
from .runtime import SmokeWatchConfigEntry


@dataclass(frozen=True)
class CameraTarget:
    """A camera of a configured detector: where its topics live."""

    entry: SmokeWatchConfigEntry
    prefix: str
    camera: str
    name: str


def async_find_camera(hass: HomeAssistant, device_id: str) -> CameraTarget | None:
    """The SmokeWatch camera of a device, or None when the device is not one.

    The detector's info maps device identifiers ("mqtt", "<node>_<cam>") to cameras. Before
    the info has arrived (e.g. automations attaching at start-up), the entry's node id
    splits the identifier: the longest node id that prefixes it wins.
    """
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return None
    identifiers = {value for domain, value in device.identifiers if domain == MQTT_DOMAIN}
    if not identifiers:
        return None
    without_info: list[SmokeWatchConfigEntry] = []
    entries: list[SmokeWatchConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    for entry in entries:
        runtime = entry.runtime_data if entry.state is ConfigEntryState.LOADED else None
        if runtime is None or runtime.info is None:
            without_info.append(entry)
            continue
        for camera in runtime.info.cameras.values():
            if camera.device_id in identifiers:
                return CameraTarget(entry, runtime.prefix, camera.camera, camera.name)
    best: CameraTarget | None = None
    for entry in without_info:
        node_id: str = entry.data[CONF_NODE_ID]
        for identifier in identifiers:
            camera_id = identifier.removeprefix(f"{node_id}_")
            if camera_id in (identifier, "", "detector"):
                continue
            if best is None or len(node_id) > len(best.entry.data[CONF_NODE_ID]):
                name = device.name_by_user or device.name or camera_id
                best = CameraTarget(entry, entry.data[CONF_PREFIX], camera_id, name)
    return best
