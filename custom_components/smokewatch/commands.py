"""Commands to the cameras of a detector, and what the detector answered to each.

A command sent as `{"request_id": <id>, "value": <value>}` gets its own id back in the
detector's answer (answers.py), so a service waits for the answer to its own command and tells
the user what the detector said. A detector whose info does not list `command_results` (an
older one) gets the plain value and no wait: it answers nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .cameras import CameraTarget
from .const import (
    DOMAIN,
    FEATURE_COMMAND_RESULTS,
    REQUEST_ID,
    REQUEST_VALUE,
    RESULT_WAIT_SECONDS,
)
from .info import command_topic

_LOGGER = logging.getLogger(__name__)


class Status(StrEnum):
    """What became of a command sent to one camera."""

    DONE = "done"
    REFUSED = "refused"
    NO_ANSWER = "no_answer"
    SENT = "sent"  # to an older detector, which does not answer


@dataclass(frozen=True)
class CommandOutcome:
    """The outcome of a command for one camera, and the detector's reason for a refusal."""

    target: CameraTarget
    status: Status
    reason: str | None = None


async def async_command_cameras(
    hass: HomeAssistant, targets: Sequence[CameraTarget], command: str, value: Any
) -> list[CommandOutcome]:
    """Send a command to every camera at once and wait for their answers (each bounded by
    RESULT_WAIT_SECONDS); raise a translated error naming each camera that refused it or did
    not answer.

    `value` is the command's value: text (`PRESS`) or JSON (a list of masks).
    """
    results = await asyncio.gather(
        *(async_command_camera(hass, target, command, value) for target in targets),
        return_exceptions=True,
    )
    outcomes: list[CommandOutcome] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result  # a publish that failed (a translated HomeAssistantError)
        outcomes.append(result)
    raise_for_outcomes(outcomes)
    return outcomes


async def async_command_camera(
    hass: HomeAssistant, target: CameraTarget, command: str, value: Any
) -> CommandOutcome:
    """Send one camera's command and, if its detector answers commands, wait for the answer
    (RESULT_WAIT_SECONDS from the start, the subscription to the answers included)."""
    if FEATURE_COMMAND_RESULTS not in target.features:
        await _async_publish(hass, target, command, plain_payload(value))
        return CommandOutcome(target, Status.SENT)
    answers = target.entry.runtime_data.answers
    deadline = hass.loop.time() + RESULT_WAIT_SECONDS
    try:
        async with asyncio.timeout_at(deadline):
            await answers.async_ready()
    except TimeoutError:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="not_subscribed",
            translation_placeholders={"topic": answers.topic},
        ) from None
    request_id = uuid.uuid4().hex
    answer = answers.expect(request_id)
    try:
        envelope = {REQUEST_ID: request_id, REQUEST_VALUE: value}
        await _async_publish(hass, target, command, json.dumps(envelope))
        try:
            async with asyncio.timeout_at(deadline):
                ok, reason = await answer
        except TimeoutError:
            return CommandOutcome(target, Status.NO_ANSWER)
    finally:
        answers.forget(request_id)
    if ok:
        if reason:  # e.g. a newer value of the same setting replaced it before it ran
            _LOGGER.debug("%s of %s done: %s", command, target.camera, reason)
        return CommandOutcome(target, Status.DONE, reason)
    return CommandOutcome(target, Status.REFUSED, reason or "no reason given")


def raise_for_outcomes(outcomes: Sequence[CommandOutcome]) -> None:
    """A translated error for the cameras that refused the command or did not answer.

    A refusal is the caller's error (ServiceValidationError: e.g. "Not smoke" with no alert),
    with the detector's reason; no answer is a failure of the path to the detector
    (HomeAssistantError).
    """
    refused = [outcome for outcome in outcomes if outcome.status is Status.REFUSED]
    silent = [outcome for outcome in outcomes if outcome.status is Status.NO_ANSWER]
    refusals = "; ".join(f"{outcome.target.name}: {outcome.reason}" for outcome in refused)
    if silent:
        placeholders = {
            "cameras": ", ".join(outcome.target.name for outcome in silent),
            "seconds": f"{RESULT_WAIT_SECONDS:g}",
        }
        if refused:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="no_answer_and_refused",
                translation_placeholders={**placeholders, "refusals": refusals},
            )
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="no_answer",
            translation_placeholders=placeholders,
        )
    if refused:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="command_refused",
            translation_placeholders={"refusals": refusals},
        )


def plain_payload(value: Any) -> str:
    """The payload of a command without a request: the value itself, as text."""
    return value if isinstance(value, str) else json.dumps(value)


async def _async_publish(
    hass: HomeAssistant, target: CameraTarget, command: str, payload: str
) -> None:
    topic = command_topic(target.prefix, target.camera, command)
    try:
        await mqtt.async_publish(hass, topic, payload, qos=1, retain=False)
    except HomeAssistantError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="publish_failed",
            translation_placeholders={"topic": topic, "error": str(err)},
        ) from err
    _LOGGER.debug("Published %s on %s", payload[:200], topic)
