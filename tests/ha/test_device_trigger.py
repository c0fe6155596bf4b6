"""Device triggers: "smoke alert started" / "ended" on the camera devices."""

from __future__ import annotations

from homeassistant.components import automation
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    async_fire_mqtt_message,
    async_get_device_automations,
)

from custom_components.smokewatch.const import DOMAIN

from .conftest import PREFIX, SetupDetector


def camera_device(hass: HomeAssistant, camera: str = "backyard") -> dr.DeviceEntry:
    """The camera device MQTT discovery created."""
    device = dr.async_get(hass).async_get_device(identifiers={("mqtt", f"smokewatch_{camera}")})
    assert device is not None
    return device


async def test_camera_devices_offer_triggers(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Each camera device lists both triggers; the detector device lists none of ours."""
    await setup_detector()
    device = camera_device(hass)
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, device.id)
    ours = [t for t in triggers if t["domain"] == DOMAIN]
    assert sorted(t["type"] for t in ours) == ["smoke_ended", "smoke_started"]
    assert all(t["device_id"] == device.id and t["platform"] == "device" for t in ours)

    detector = dr.async_get(hass).async_get_device(identifiers={("mqtt", "smokewatch_detector")})
    assert detector is not None
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, detector.id)
    assert [t for t in triggers if t["domain"] == DOMAIN] == []


async def test_triggers_fire_on_smoke_changes(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """ON fires "started", OFF fires "ended"; repeats and the retained replay do not fire."""
    await setup_detector()
    backyard, ridge = camera_device(hass), camera_device(hass, "ridge")
    calls: list[ServiceCall] = []
    hass.services.async_register("test", "record", calls.append)
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: [
                {
                    "trigger": {
                        "platform": "device",
                        "domain": DOMAIN,
                        "device_id": backyard.id,
                        "type": trigger_type,
                    },
                    "action": {
                        "service": "test.record",
                        "data": {
                            "type": trigger_type,
                            "camera": "{{ trigger.camera }}",
                            "description": "{{ trigger.description }}",
                        },
                    },
                }
                for trigger_type in ("smoke_started", "smoke_ended")
            ]
        },
    )
    await hass.async_block_till_done()

    async def smoke(payload: str, *, camera: str = "backyard", retain: bool = False) -> None:
        async_fire_mqtt_message(hass, f"{PREFIX}/{camera}/smoke", payload, retain=retain)
        await hass.async_block_till_done()

    await smoke("ON", retain=True)  # the state replayed on subscribing: not an event
    assert calls == []
    await smoke("OFF")
    assert [c.data["type"] for c in calls] == ["smoke_ended"]
    await smoke("ON")
    await smoke("ON")  # the detector re-publishing its state after a reconnect
    assert [c.data["type"] for c in calls] == ["smoke_ended", "smoke_started"]
    assert calls[-1].data["camera"] == "backyard"
    assert calls[-1].data["description"] == "Backyard Cam smoke alert started"
    await smoke("ON", camera="ridge")  # another camera: not this automation's device
    await smoke("OFF")
    assert [c.data["type"] for c in calls] == ["smoke_ended", "smoke_started", "smoke_ended"]
    assert ridge.id != backyard.id


async def test_trigger_on_foreign_device_is_invalid(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """An automation naming a device that is not a SmokeWatch camera is not set up."""
    entry, _ = await setup_detector()
    lamp = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("hue", "lamp")}
    )
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: {
                "id": "lamp",
                "trigger": {
                    "platform": "device",
                    "domain": DOMAIN,
                    "device_id": lamp.id,
                    "type": "smoke_started",
                },
                "action": {"service": "test.record"},
            }
        },
    )
    await hass.async_block_till_done()
    state = hass.states.get("automation.lamp")
    assert state is None or state.state == "unavailable"
