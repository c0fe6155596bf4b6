"""The command table and its inbox (detector/service/command_table.py), alone."""

from __future__ import annotations

from typing import Any

import pytest

from detector.service.command_table import (
    CommandInbox,
    CommandRefused,
    CommandTable,
    Outcome,
    PendingCommand,
)
from detector.service.refusals import RefusalLog


@pytest.fixture
def table() -> tuple[CommandTable, list[tuple[str, Any, str]], RefusalLog]:
    applied: list[tuple[str, Any, str]] = []
    refusals = RefusalLog(["a"])
    table = CommandTable(["a"], refusals)

    def parse(text: str) -> float:
        value = float(text)
        if not 0 < value < 1:
            raise ValueError(f"{value} is outside 0..1")
        return value

    table.setting(
        "threshold", parse, lambda camera, value, source: applied.append((camera, value, source))
    )
    table.button("reset", lambda camera: applied.append((camera, "pressed", "button")))

    def refuse(camera: str) -> None:
        raise CommandRefused("nothing to dismiss")

    table.button("false_alarm", refuse)
    return table, applied, refusals


def test_settings_and_buttons_run_with_their_payload(table: Any) -> None:
    commands, applied, _ = table
    assert commands.command("a", "threshold", b" 0.4 ") == Outcome(True)
    assert commands.command("a", "reset", b"press") == Outcome(True)  # any case
    assert applied == [("a", 0.4, "command"), ("a", "pressed", "button")]


def test_refusals_say_why_and_are_counted(table: Any) -> None:
    commands, applied, refusals = table
    outcomes = [
        commands.command("a", "threshold", b"2"),
        commands.command("a", "reset", b"ON"),
        commands.command("a", "false_alarm", b"PRESS"),
        commands.command("a", "colour", b"red"),
        commands.command("b", "reset", b"PRESS"),
        commands.refuse_retained("a", "reset"),
    ]
    assert [o.ok for o in outcomes] == [False] * 6 and not applied
    reasons = [o.reason or "" for o in outcomes]
    assert "outside 0..1" in reasons[0]
    assert "expected PRESS" in reasons[1]
    assert reasons[2] == "false_alarm: nothing to dismiss"
    assert "unknown command topic colour/set" in reasons[3]
    assert "unknown camera" in reasons[4]
    assert "retained" in reasons[5]
    assert refusals.camera_counts("a") == {"bad_command": 4, "retained_command": 1}
    assert refusals.total_counts()["unknown_camera"] == 1


def test_the_inbox_keeps_order_replaces_a_waiting_value_and_is_bounded() -> None:
    inbox = CommandInbox(["threshold"], limit=3)
    first = PendingCommand("a", "threshold", b"0.3")
    assert inbox.put(first) == (True, None)
    assert inbox.put(PendingCommand("a", "reset", b"PRESS")) == (True, None)
    assert inbox.put(PendingCommand("b", "threshold", b"0.5")) == (True, None)
    # A newer value for a's threshold replaces the waiting one and goes to the back.
    assert inbox.put(PendingCommand("a", "threshold", b"0.4")) == (True, first)
    assert inbox.put(PendingCommand("a", "reset", b"PRESS")) == (False, None)  # full
    assert [(c.camera, c.name, c.payload) for c in inbox.take()] == [
        ("a", "reset", b"PRESS"),
        ("b", "threshold", b"0.5"),
        ("a", "threshold", b"0.4"),
    ]
    assert len(inbox) == 0 and inbox.replaced == 1
