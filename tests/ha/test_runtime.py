"""Repairs: detector offline, bridge failing, model missing — raised and cleared."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
)
from homeassistant.helpers import (
    entity_registry as er,
)
from homeassistant.helpers import (
    issue_registry as ir,
)
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)

from custom_components.smokewatch.const import CONF_OFFLINE_MINUTES, DOMAIN

from .conftest import (
    PREFIX,
    SetupDetector,
    detector_entry,
    detector_topic,
    golden,
    info_payload,
)


@pytest.fixture
def clock() -> Clock:
    """A clock for the timers, starting now."""
    return Clock()


def issue(hass: HomeAssistant, kind: str, entry_id: str) -> ir.IssueEntry | None:
    """The repair issue of one kind for an entry, if raised."""
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{kind}_{entry_id}")


def bridge_issues(hass: HomeAssistant) -> list[ir.IssueEntry]:
    """The bridge repair issues raised (one per prefix at most)."""
    return [
        entry
        for (domain, _), entry in ir.async_get(hass).issues.items()
        if domain == DOMAIN and entry.translation_key == "bridge_failing" and entry.active
    ]


class Clock:
    """Fires Home Assistant's timers as if time went on (without freezing the clock)."""

    def __init__(self) -> None:
        self.now = dt_util.utcnow()

    async def advance(self, hass: HomeAssistant, minutes: float) -> None:
        """Let `minutes` pass for the timers."""
        self.now += timedelta(minutes=minutes)
        async_fire_time_changed(hass, self.now)
        await hass.async_block_till_done()


async def test_offline_issue_after_delay_and_cleared(
    hass: HomeAssistant, setup_detector: SetupDetector, clock: Clock
) -> None:
    """Offline for longer than the delay raises the issue; coming back clears it."""
    entry, _ = await setup_detector()
    async_fire_mqtt_message(hass, f"{PREFIX}/available", "offline")
    await hass.async_block_till_done()
    await clock.advance(hass, 9)
    assert issue(hass, "detector_offline", entry.entry_id) is None
    await clock.advance(hass, 2)
    raised = issue(hass, "detector_offline", entry.entry_id)
    assert raised is not None
    assert raised.translation_placeholders == {"detector": PREFIX, "minutes": "10"}
    assert raised.severity is ir.IssueSeverity.ERROR

    async_fire_mqtt_message(hass, f"{PREFIX}/available", "online")
    await hass.async_block_till_done()
    assert issue(hass, "detector_offline", entry.entry_id) is None


async def test_short_outage_raises_nothing(
    hass: HomeAssistant, setup_detector: SetupDetector, clock: Clock
) -> None:
    """A restart of the detector (offline for a minute) is not an issue."""
    entry, _ = await setup_detector()
    async_fire_mqtt_message(hass, f"{PREFIX}/available", "offline")
    await clock.advance(hass, 1)
    async_fire_mqtt_message(hass, f"{PREFIX}/available", "online")
    await clock.advance(hass, 30)
    assert issue(hass, "detector_offline", entry.entry_id) is None


async def test_never_seen_detector_raises_offline_with_option_delay(
    hass: HomeAssistant, setup_detector: SetupDetector, clock: Clock
) -> None:
    """No info and no availability at all counts as offline, after the configured delay."""
    entry, _ = await setup_detector(online=False, options={CONF_OFFLINE_MINUTES: 3})
    await clock.advance(hass, 2)
    assert issue(hass, "detector_offline", entry.entry_id) is None
    await clock.advance(hass, 2)
    assert issue(hass, "detector_offline", entry.entry_id) is not None

    async_fire_mqtt_message(hass, f"{PREFIX}/available", "online")
    await hass.async_block_till_done()
    assert issue(hass, "detector_offline", entry.entry_id) is not None  # no info yet
    async_fire_mqtt_message(hass, f"{PREFIX}/info", info_payload())
    await hass.async_block_till_done()
    assert issue(hass, "detector_offline", entry.entry_id) is None


async def test_model_missing_issue(hass: HomeAssistant, setup_detector: SetupDetector) -> None:
    """An info with status model_missing raises the issue with the error; ok clears it."""
    entry, _ = await setup_detector()
    async_fire_mqtt_message(
        hass,
        f"{PREFIX}/info",
        info_payload(status="model_missing", error="cannot download the model"),
    )
    await hass.async_block_till_done()
    raised = issue(hass, "model_missing", entry.entry_id)
    assert raised is not None
    assert raised.translation_placeholders is not None
    assert raised.translation_placeholders["error"] == "cannot download the model"

    async_fire_mqtt_message(hass, f"{PREFIX}/info", info_payload())
    await hass.async_block_till_done()
    assert issue(hass, "model_missing", entry.entry_id) is None


def bridge_stats(**values: Any) -> str:
    """The bridge's golden stats payload with some figures changed (only keys it has)."""
    stats = golden("bridge_stats.json")
    values = {"pending": 0, "delivered": 10, "failed": 0, "last_error": None, **values}
    assert set(values) <= set(stats), set(values) - set(stats)
    return json.dumps({**stats, **values})


async def test_bridge_failing_issue(hass: HomeAssistant, setup_detector: SetupDetector) -> None:
    """Rising failures or a growing outbox with an error raise the issue; delivery clears it."""
    await setup_detector()
    topic = f"{PREFIX}/{golden('topics.json')['bridge']['stats']}"

    async def stats(**values: Any) -> ir.IssueEntry | None:
        async_fire_mqtt_message(hass, topic, bridge_stats(**values))
        await hass.async_block_till_done()
        (raised,) = bridge_issues(hass) or [None]
        return raised

    assert await stats() is None
    assert await stats(pending=1, last_error="HTTP 503") is not None  # error + outbox grows
    assert await stats(pending=1, last_error="HTTP 503") is not None  # still not delivering
    assert await stats(pending=0, delivered=11) is None  # drained

    assert await stats(failed=1) is not None  # a frame given up
    (raised,) = bridge_issues(hass)
    assert raised.translation_placeholders is not None
    assert raised.translation_placeholders["failed"] == "1"
    assert await stats(failed=1, delivered=12) is None  # delivers again, no error

    # An error while the outbox shrinks is a retry that is catching up, not a failure.
    assert await stats(pending=5, last_error="timeout") is not None
    await stats(pending=0, delivered=17)
    assert await stats(pending=3) is None
    assert await stats(pending=2, last_error="timeout") is None


async def test_unload_withdraws_issues(hass: HomeAssistant, setup_detector: SetupDetector) -> None:
    """Unloading the entry withdraws its issues and its subscriptions."""
    entry, _ = await setup_detector()
    async_fire_mqtt_message(hass, f"{PREFIX}/info", info_payload(status="model_missing"))
    await hass.async_block_till_done()
    assert issue(hass, "model_missing", entry.entry_id) is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert issue(hass, "model_missing", entry.entry_id) is None
    async_fire_mqtt_message(hass, f"{PREFIX}/info", info_payload(status="model_missing"))
    await hass.async_block_till_done()
    assert issue(hass, "model_missing", entry.entry_id) is None


async def test_devices_and_entities_stay_mqtts(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """The integration attaches itself to no device and adds no entity: MQTT owns them."""
    entry, _ = await setup_detector()
    assert dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id) == []
    assert hass.states.async_entity_ids() == [
        "binary_sensor.backyard_cam_smoke",
        "binary_sensor.ridge_smoke",
    ]
    assert er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id) == []


async def instance_entries(hass: HomeAssistant, *instances: str) -> list[MockConfigEntry]:
    """Entries of detectors sharing the golden prefix, set up (MQTT set up already)."""
    entries = []
    for instance in instances:
        entry = detector_entry(instance=instance)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        entries.append(entry)
    await hass.async_block_till_done()
    return entries


async def test_an_instance_follows_its_own_topics(
    hass: HomeAssistant, setup_detector: SetupDetector, clock: Clock
) -> None:
    """An instance's entry reads its info, availability and stats below instance/<id>/, and
    is offline (its issue raised) when its own last will says so, whatever the others say."""
    await setup_detector(online=False)
    a, b = await instance_entries(hass, "a", "b")
    for instance in ("a", "b"):
        info = info_payload(instance=instance, cameras={f"cam_{instance}": instance})
        async_fire_mqtt_message(hass, detector_topic("info", instance=instance), info)
        async_fire_mqtt_message(hass, detector_topic("available", instance=instance), "online")
    stats = golden("stats.json")
    async_fire_mqtt_message(hass, detector_topic("stats", instance="b"), json.dumps(stats))
    await hass.async_block_till_done()
    assert a.runtime_data.online and b.runtime_data.online
    assert a.runtime_data.info is not None and set(a.runtime_data.info.cameras) == {"cam_a"}
    assert (a.runtime_data.stats, b.runtime_data.stats) == (None, stats)

    async_fire_mqtt_message(hass, detector_topic("available", instance="a"), "offline")
    # The lone detector's topics are no instance's.
    async_fire_mqtt_message(hass, detector_topic("available"), "online")
    await clock.advance(hass, 11)
    raised = issue(hass, "detector_offline", a.entry_id)
    assert raised is not None and raised.translation_placeholders is not None
    assert raised.translation_placeholders["detector"] == f"{PREFIX}/instance/a"
    assert issue(hass, "detector_offline", b.entry_id) is None
    assert not a.runtime_data.online and b.runtime_data.online


async def test_the_bridge_issue_is_raised_once_per_prefix(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """One bridge serves the detectors of a prefix: its issue is one, whatever the number of
    entries, and stays until the last entry of the prefix is unloaded."""
    lone, _ = await setup_detector()
    a, b = await instance_entries(hass, "a", "b")
    topic = f"{PREFIX}/{golden('topics.json')['bridge']['stats']}"
    async_fire_mqtt_message(hass, topic, bridge_stats())
    async_fire_mqtt_message(hass, topic, bridge_stats(failed=1))
    await hass.async_block_till_done()
    (raised,) = bridge_issues(hass)
    assert raised.translation_placeholders is not None
    assert raised.translation_placeholders["prefix"] == PREFIX
    for entry in (lone, a, b):
        assert entry.runtime_data.bridge is not None
        assert entry.runtime_data.bridge.stats == json.loads(bridge_stats(failed=1))

    for entry in (lone, a):
        assert await hass.config_entries.async_unload(entry.entry_id)
        assert len(bridge_issues(hass)) == 1
    assert await hass.config_entries.async_unload(b.entry_id)
    assert bridge_issues(hass) == []
