"""Config flow: MQTT discovery, manual prefix, errors, duplicates, options, reconfigure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_MQTT, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.smokewatch.const import (
    CONF_NODE_ID,
    CONF_OFFLINE_MINUTES,
    CONF_PREFIX,
    DOMAIN,
)

from .conftest import NODE_ID, PREFIX, SetupDetector, info_payload

MqttMockEntry = Callable[[], Awaitable[MqttMockHAClient]]


def discovery(payload: str, topic: str = "smokewatch/info") -> MqttServiceInfo:
    """What the MQTT integration hands a flow for a message on the manifest's topic."""
    return MqttServiceInfo(
        topic=topic,
        payload=payload,
        qos=0,
        retain=True,
        subscribed_topic="smokewatch/info",
        timestamp=0.0,
    )


async def configure_while_publishing(
    hass: HomeAssistant, flow_id: str, user_input: dict[str, Any], topic: str, payload: str | None
) -> Any:
    """Submit a step that waits for a retained message, publishing it until the step ends.

    The step subscribes only once it runs, so the "retained" message is fired (as the
    broker would on subscribing) until the step has returned.
    """
    task = asyncio.ensure_future(hass.config_entries.flow.async_configure(flow_id, user_input))
    while not task.done():
        if payload is not None:
            async_fire_mqtt_message(hass, topic, payload, retain=True)
        await asyncio.sleep(0.01)
    return task.result()


async def test_discovery_creates_entry(hass: HomeAssistant, mqtt_mock_entry: MqttMockEntry) -> None:
    """A detector's P/info offers the integration; confirming creates one entry."""
    await mqtt_mock_entry()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert "Backyard Cam" in result["description_placeholders"]["cameras"]

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "SmokeWatch"
    assert result["data"] == {CONF_PREFIX: PREFIX, CONF_NODE_ID: NODE_ID}
    assert result["result"].unique_id == NODE_ID


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[1, 2]", '{"prefix": "smokewatch"}', '{"node_id": "x", "cameras": []}'],
)
async def test_discovery_aborts_on_foreign_payload(
    hass: HomeAssistant, mqtt_mock_entry: MqttMockEntry, payload: str
) -> None:
    """Anything but a SmokeWatch info on the topic aborts the flow."""
    await mqtt_mock_entry()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(payload)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_smokewatch"


async def test_discovery_aborts_when_configured(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """A detector that already has an entry is not offered again."""
    await setup_detector()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery(info_payload())
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_manual_flow_reads_retained_info(
    hass: HomeAssistant, mqtt_mock_entry: MqttMockEntry
) -> None:
    """The user step waits for the detector's retained info under the given prefix."""
    await mqtt_mock_entry()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"

    result = await configure_while_publishing(
        hass,
        result["flow_id"],
        {CONF_PREFIX: "home/smoke"},
        "home/smoke/info",
        info_payload("home/smoke", "home_smoke"),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "SmokeWatch (home/smoke)"
    assert result["data"] == {CONF_PREFIX: "home/smoke", CONF_NODE_ID: "home_smoke"}


@pytest.mark.parametrize(
    ("prefix", "payload", "error"),
    [
        ("smokewatch/#", None, "invalid_prefix"),
        ("smokewatch/", None, "invalid_prefix"),
        ("nobody", None, "no_detector"),
        ("other", '{"hello": "world"}', "not_smokewatch"),
    ],
)
async def test_manual_flow_errors(
    hass: HomeAssistant,
    mqtt_mock_entry: MqttMockEntry,
    prefix: str,
    payload: str | None,
    error: str,
) -> None:
    """A bad prefix, a silent prefix and a foreign message each give their form error."""
    await mqtt_mock_entry()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    with patch("custom_components.smokewatch.config_flow.INFO_WAIT_SECONDS", 0.2):
        result = await configure_while_publishing(
            hass, result["flow_id"], {CONF_PREFIX: prefix}, f"{prefix}/info", payload
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}


async def test_manual_flow_without_mqtt_connection(
    hass: HomeAssistant, mqtt_mock_entry: MqttMockEntry
) -> None:
    """No MQTT client: the form says so instead of waiting."""
    await mqtt_mock_entry()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    with patch(
        "custom_components.smokewatch.config_flow.mqtt.async_wait_for_mqtt_client",
        return_value=False,
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_PREFIX: PREFIX}
        )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_manual_flow_aborts_on_duplicate(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Entering the prefix of a configured detector aborts."""
    await setup_detector()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await configure_while_publishing(
        hass, result["flow_id"], {CONF_PREFIX: PREFIX}, f"{PREFIX}/info", info_payload()
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_options_flow(hass: HomeAssistant, setup_detector: SetupDetector) -> None:
    """The offline delay is an option; changing it reloads the entry with it."""
    entry, _ = await setup_detector()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_OFFLINE_MINUTES: 25}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {CONF_OFFLINE_MINUTES: 25}
    assert entry.runtime_data.offline_delay.total_seconds() == 25 * 60


async def test_reconfigure_changes_prefix(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Reconfigure points the entry at the detector's new prefix (and node id)."""
    entry, _ = await setup_detector()
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await configure_while_publishing(
        hass,
        result["flow_id"],
        {CONF_PREFIX: "moved"},
        "moved/info",
        info_payload("moved", "moved"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data == {CONF_PREFIX: "moved", CONF_NODE_ID: "moved"}
    assert entry.unique_id == "moved"
    assert entry.runtime_data.prefix == "moved"


async def test_reconfigure_refuses_another_configured_detector(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Reconfiguring onto a detector that has its own entry aborts."""
    entry, _ = await setup_detector()
    MockConfigEntry(
        domain=DOMAIN, unique_id="other", data={CONF_PREFIX: "other", CONF_NODE_ID: "other"}
    ).add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await configure_while_publishing(
        hass,
        result["flow_id"],
        {CONF_PREFIX: "other"},
        "other/info",
        info_payload("other", "other"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_PREFIX] == PREFIX
