"""Find the SmokeWatch camera behind a device that MQTT discovery created."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN, MQTT_DOMAIN
from .info import DetectorInfo
from .runtime import SmokeWatchConfigEntry


@dataclass(frozen=True)
class CameraTarget:
    """A camera of a configured detector: where its topics live, and what its detector can
    do (the features of the detector's info)."""

    entry: SmokeWatchConfigEntry
    prefix: str
    camera: str
    name: str
    features: frozenset[str]


@dataclass(frozen=True)
class CameraLookup:
    """The camera of a device, or None; `waited_for` the prefixes whose info never came."""

    target: CameraTarget | None
    waited_for: tuple[str, ...] = ()


async def async_find_camera(hass: HomeAssistant, device_id: str) -> CameraLookup:
    """The SmokeWatch camera of a device, as the detectors' info describes their cameras.

    Each detector's retained info maps its cameras to their device identifiers ("mqtt",
    "<id>"); nothing is parsed out of an identifier. A call that comes before a detector's info
    (automations running at start-up) waits for it, up to INFO_WAIT_SECONDS (see runtime.py).
    """
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return CameraLookup(None)
    identifiers = {value for domain, value in device.identifiers if domain == MQTT_DOMAIN}
    if not identifiers:
        return CameraLookup(None)
    entries: list[SmokeWatchConfigEntry] = [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
    ]
    waiting = []
    for entry in entries:
        info = entry.runtime_data.info
        if info is None:
            waiting.append(entry)
        elif (target := _camera(entry, info, identifiers)) is not None:
            return CameraLookup(target)
    infos = await asyncio.gather(*(entry.runtime_data.async_wait_for_info() for entry in waiting))
    missing = []
    for entry, late in zip(waiting, infos, strict=True):
        if late is None:
            missing.append(entry.runtime_data.location)
        elif (target := _camera(entry, late, identifiers)) is not None:
            return CameraLookup(target)
    return CameraLookup(None, tuple(missing))


def _camera(
    entry: SmokeWatchConfigEntry, info: DetectorInfo, identifiers: set[str]
) -> CameraTarget | None:
    for camera in info.cameras.values():
        if camera.device_id in identifiers:
            return CameraTarget(
                entry, entry.runtime_data.prefix, camera.camera, camera.name, info.features
            )
    return None
