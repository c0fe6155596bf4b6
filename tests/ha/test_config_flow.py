"""Config flow: MQTT discovery (a lone detector's info, each instance's), manual prefix (one
detector, or a choice among several), errors, duplicates, options, reconfigure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
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
    CONF_INSTANCE,
    CONF_NODE_ID,
    CONF_OFFLINE_MINUTES,
    CONF_PREFIX,
    DOMAIN,
)

from .conftest import (
    INSTANCE_INFO,
    NODE_ID,
    PREFIX,
    SetupDetector,
    detector_entry,
    detector_topic,
    info_payload,
)

MqttMockEntry = Callable[[], Awaitable[MqttMockHAClient]]


@pytest.fixture(autouse=True)
def short_settle() -> Iterator[None]:
    """The manual steps listen on for more detectors' infos for a shorter while: the test's
    retained messages are all fired every 10 ms."""
    with patch("custom_components.smokewatch.config_flow.INFO_SETTLE_SECONDS", 0.1):
        yield


MANIFEST = json.loads(
    (Path(__file__).resolve().parents[2] / "custom_components/smokewatch/manifest.json").read_text()
)


def discovery(payload: str, topic: str = "smokewatch/info") -> MqttServiceInfo:
    """What the MQTT integration hands a flow for a message on one of the manifest's topics
    (a topic none of them matches would never reach the flow: that fails here)."""
    (subscribed,) = [wanted for wanted in MANIFEST["mqtt"] if _matches(wanted, topic)]
    return MqttServiceInfo(
        topic=topic,
        payload=payload,
        qos=0,
        retain=True,
        subscribed_topic=subscribed,
        timestamp=0.0,
    )


def _matches(subscription: str, topic: str) -> bool:
    wanted, levels = subscription.split("/"), topic.split("/")
    return len(wanted) == len(levels) and all(
        w in ("+", t) for w, t in zip(wanted, levels, strict=True)
    )


async def configure_while_publishing(
    hass: HomeAssistant,
    flow_id: str,
    user_input: dict[str, Any],
    topic: str,
    payload: str | None,
    more: dict[str, str] | None = None,
) -> Any:
    """Submit a step that waits for retained messages, publishing them until the step ends.

    The step subscribes only once it runs, so the "retained" messages (`payload` on `topic`,
    and `more`, topic to payload) are fired (as the broker would on subscribing) until the
    step has returned.
    """
    messages = {**({topic: payload} if payload is not None else {}), **(more or {})}
    task = asyncio.ensure_future(hass.config_entries.flow.async_configure(flow_id, user_input))
    while not task.done():
        for retained_topic, retained in messages.items():
            async_fire_mqtt_message(hass, retained_topic, retained, retain=True)
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
    assert result["description_placeholders"]["detector"] == PREFIX

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


async def test_each_instance_is_discovered_and_added(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Detectors sharing the prefix each publish their info below instance/<id>/: each one
    is offered by its own flow, side by side, one click per detector; the lone detector's
    entry (unique id: its node id, as before instances) stays as it was."""
    lone, _ = await setup_detector()
    flows = []
    for instance in ("a", "b"):
        result = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": SOURCE_MQTT},
            data=discovery(
                info_payload(instance=instance), detector_topic("info", instance=instance)
            ),
        )
        assert result["type"] is FlowResultType.FORM, result
        assert result["description_placeholders"]["detector"] == f"{PREFIX}/instance/{instance}"
        flows.append(result["flow_id"])
    created = [await hass.config_entries.flow.async_configure(flow, {}) for flow in flows]
    assert [(r["type"], r["title"]) for r in created] == [
        (FlowResultType.CREATE_ENTRY, "SmokeWatch a"),
        (FlowResultType.CREATE_ENTRY, "SmokeWatch b"),
    ]
    assert created[1]["data"] == {CONF_PREFIX: PREFIX, CONF_NODE_ID: NODE_ID, CONF_INSTANCE: "b"}
    unique_ids = {entry.unique_id for entry in hass.config_entries.async_entries(DOMAIN)}
    assert unique_ids == {NODE_ID, f"{NODE_ID}/instance/a", f"{NODE_ID}/instance/b"}
    assert lone.unique_id == NODE_ID and lone.data == {CONF_PREFIX: PREFIX, CONF_NODE_ID: NODE_ID}
    await hass.async_block_till_done()
    runtime = created[1]["result"].runtime_data
    assert (runtime.prefix, runtime.instance) == (PREFIX, "b")

    # The same instance's info again (a restart): already configured.
    again = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=discovery(json.dumps(INSTANCE_INFO), detector_topic("info", instance="b")),
    )
    assert (again["type"], again["reason"]) == (FlowResultType.ABORT, "already_configured")


async def test_manual_flow_offers_the_detectors_not_configured_yet(
    hass: HomeAssistant, mqtt_mock_entry: MqttMockEntry
) -> None:
    """Three detectors under a typed prefix, one already configured: the user picks one of
    the two others; the last one is then added without a choice; then nothing is left."""
    await mqtt_mock_entry()
    prefix, node = "home/smoke", "home_smoke"
    detector_entry(prefix, node, instance="0").add_to_hass(hass)
    infos = {
        detector_topic("info", prefix, instance): info_payload(
            prefix, node, instance=instance, cameras={f"cam{instance}": f"Camera {instance}"}
        )
        for instance in ("0", "1", "2")
    }

    async def add() -> Any:
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        return await configure_while_publishing(
            hass, result["flow_id"], {CONF_PREFIX: prefix}, "", None, more=infos
        )

    result = await add()
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, "pick_detector")
    options = result["data_schema"].schema["detector"].config["options"]
    assert [(o["value"], o["label"]) for o in options] == [
        (f"{node}/instance/1", f"{prefix}/instance/1: Camera 1"),
        (f"{node}/instance/2", f"{prefix}/instance/2: Camera 2"),
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"detector": f"{node}/instance/2"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "SmokeWatch 2 (home/smoke)"
    assert result["data"] == {CONF_PREFIX: prefix, CONF_NODE_ID: node, CONF_INSTANCE: "2"}

    result = await add()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_INSTANCE] == "1"
    result = await add()
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "already_configured")


async def test_reconfigure_an_instance_follows_it_to_the_new_prefix(
    hass: HomeAssistant, setup_detector: SetupDetector
) -> None:
    """Under the new prefix, an instance's entry follows the detector with its instance id;
    a prefix with several detectors and none of its id is a form error."""
    await setup_detector(online=False)
    entry = detector_entry(instance="b")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    infos = {
        detector_topic("info", "moved", instance): info_payload("moved", "moved", instance=instance)
        for instance in ("a", "b")
    }
    result = await entry.start_reconfigure_flow(hass)
    others = {topic: info for topic, info in infos.items() if "/b/" not in topic}
    others[detector_topic("info", "moved", "c")] = info_payload("moved", "moved", instance="c")
    result = await configure_while_publishing(
        hass, result["flow_id"], {CONF_PREFIX: "moved"}, "", None, more=others
    )
    assert result["errors"] == {"base": "several_detectors"}
    result = await configure_while_publishing(
        hass, result["flow_id"], {CONF_PREFIX: "moved"}, "", None, more=infos
    )
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reconfigure_successful")
    await hass.async_block_till_done()
    assert entry.data == {CONF_PREFIX: "moved", CONF_NODE_ID: "moved", CONF_INSTANCE: "b"}
    assert entry.unique_id == "moved/instance/b"
    assert (entry.runtime_data.prefix, entry.runtime_data.instance) == ("moved", "b")
