"""The command table: what each `<prefix>/<cam>/<command>/set` topic does.

Two kinds of commands. Settings (`enabled`, `threshold`, `masks`) carry a value: the table parses
it with the setting's parser, then hands the value to the setting's handler; the same parsers read
the retained `…/state` topics restored after a restart. Buttons (`reset`, `test`, `false_alarm`,
`file_settings`) carry `PRESS`. Anything else (an unknown camera or command, a payload that does
not parse) is refused with a reason, counted and logged by the refusal log; nothing raises.

A command acts when it is sent. A command the broker kept (retained) and hands over at a
(re)connect is a past press replayed: it is refused, whatever it is. A retained reset would
otherwise close a real alert at each reconnect, a retained "Not smoke" turn a real plume into a
mask, a retained test fire a test alert at every start. Settings last across restarts through
the detector's own retained `<setting>/state`, never through a retained command.

Commands wait for the control thread in the `CommandInbox`: a setting's newer value replaces the
older one still waiting (only the latest can matter), and at most a bounded number wait, so a
flood of expensive commands (large masks) cannot delay the next one without bound.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from detector.contract import PRESS, command_leaf
from detector.service.refusals import RefusalLog

_LOGGER = logging.getLogger(__name__)

# Commands waiting for the control thread at most; beyond it a command is refused.
INBOX_LIMIT = 200


@dataclass(frozen=True)
class SettingCommand:
    """A setting: its parser (text → value, ValueError with the reason) and what applies it."""

    parse: Callable[[str], Any]
    apply: Callable[[str, Any, str], None]  # (camera, value, source)


@dataclass(frozen=True)
class Outcome:
    """What became of a command: done, or refused with the reason (shown to the user)."""

    ok: bool
    reason: str | None = None


DONE = Outcome(True)


class CommandRefused(Exception):
    """Raised by a handler that refuses a command it cannot carry out (the reason is shown)."""


class CommandTable:
    """Routes commands of known cameras to their handlers."""

    def __init__(self, cameras: Collection[str], refusals: RefusalLog) -> None:
        self.cameras = cameras
        self.refusals = refusals
        self.setting_commands: dict[str, SettingCommand] = {}
        self.buttons: dict[str, Callable[[str], None]] = {}

    def setting(
        self, name: str, parse: Callable[[str], Any], apply: Callable[[str, Any, str], None]
    ) -> None:
        """Add a setting command."""
        self.setting_commands[name] = SettingCommand(parse, apply)

    def button(self, name: str, press: Callable[[str], None]) -> None:
        """Add a button command (its handler may raise CommandRefused)."""
        self.buttons[name] = press

    def known(self, name: str) -> bool:
        """Whether `name` is a command of the table."""
        return name in self.setting_commands or name in self.buttons

    def command(self, camera: str, name: str, payload: bytes) -> Outcome:
        """Run one command; a refused one is counted and logged, and says why."""
        if camera not in self.cameras:
            return self._refuse(
                camera, name, "unknown_camera", f"command {name} for an unknown camera"
            )
        text = payload.decode("utf-8", "replace").strip()
        press = self.buttons.get(name)
        if press is not None:
            if text.upper() != PRESS:
                return self._refuse(
                    camera, name, "bad_command", f"{name}: expected {PRESS}, got {text[:40]!r}"
                )
            try:
                press(camera)
            except CommandRefused as err:
                return self._refuse(camera, name, "bad_command", f"{name}: {err}")
            return DONE
        if name in self.setting_commands:
            return self.apply(camera, name, text, source="command")
        return self._refuse(
            camera, name, "bad_command", f"unknown command topic {command_leaf(name)}"
        )

    def refuse_retained(self, camera: str, name: str) -> Outcome:
        """A command the broker kept and replayed at a (re)connect: never acted upon."""
        return self._refuse(
            camera,
            name,
            "retained_command",
            f"{command_leaf(name)} was retained on the broker: a command acts only when it is"
            " sent"
            " (remove it: mosquitto_pub -r -n -t <topic>)",
        )

    def refuse_request(self, camera: str, name: str, problem: str) -> Outcome:
        """A request envelope that is not a valid one (see contract.open_command)."""
        return self._refuse(camera, name, "bad_command", f"{name}: {problem}")

    def apply(self, camera: str, name: str, text: str, *, source: str) -> Outcome:
        """Parse and apply a setting's value (from a command or a restored state)."""
        setting = self.setting_commands[name]
        try:
            value = setting.parse(text)
        except ValueError as err:
            return self._refuse(camera, name, "bad_command", f"{name} ({source}): {err}")
        setting.apply(camera, value, source)
        _LOGGER.info("Camera %s: %s set to %s (%s)", camera, name, text[:200], source)
        return DONE

    def parse(self, camera: str, name: str, text: str, *, source: str) -> tuple[bool, Any]:
        """Only parse a setting's value: (True, value), or (False, None) when refused."""
        try:
            return True, self.setting_commands[name].parse(text)
        except ValueError as err:
            self._refuse(camera, name, "bad_command", f"{name} ({source}): {err}")
            return False, None

    def _refuse(self, camera: str, name: str, reason: str, message: str) -> Outcome:
        # A made-up command name must not make a log entry of its own (bounded bookkeeping).
        detail = name if self.known(name) else "unknown"
        self.refusals.refuse(camera, reason, message, detail=detail)
        return Outcome(False, message)


@dataclass(frozen=True)
class PendingCommand:
    """A command waiting for the control thread."""

    camera: str
    name: str
    payload: bytes


class CommandInbox:
    """Commands from the bus's thread, waiting for the control thread (thread-safe).

    A setting's newer value replaces the one still waiting for the same camera (only the last
    matters); a button press is kept as it is. Beyond `limit` waiting commands, `put` refuses.
    """

    def __init__(self, settings: Collection[str], *, limit: int = INBOX_LIMIT) -> None:
        self.settings = settings  # the names of setting commands (a newer value replaces)
        self.limit = limit
        self._waiting: OrderedDict[tuple[str, str] | int, PendingCommand] = OrderedDict()
        self._count = 0  # gives each press a key of its own
        self._lock = threading.Lock()
        self.replaced = 0  # setting values replaced by a newer one before they ran

    def put(self, command: PendingCommand) -> tuple[bool, PendingCommand | None]:
        """Queue a command: (False, None) when the inbox is full (the caller refuses it), else
        (True, the waiting command of the same setting it replaced, if any)."""
        replaced = None
        with self._lock:
            if command.name in self.settings:
                key: tuple[str, str] | int = (command.camera, command.name)
                replaced = self._waiting.pop(key, None)  # the newer goes to the back, in order
                if replaced is not None:
                    self.replaced += 1
            else:
                self._count += 1
                key = self._count
            if len(self._waiting) >= self.limit:
                return False, None
            self._waiting[key] = command
            return True, replaced

    def take(self) -> list[PendingCommand]:
        """Every waiting command, in the order they arrived (a replaced value at its newest)."""
        with self._lock:
            waiting = list(self._waiting.values())
            self._waiting.clear()
        return waiting

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)
