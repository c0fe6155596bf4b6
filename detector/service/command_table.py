"""The command table: what each `<prefix>/<cam>/<command>/set` topic does.

Two kinds of commands. Settings (`enabled`, `threshold`, `masks`) carry a value: the table parses
it with the setting's parser, then hands the value to the setting's handler; the same parsers read
the retained `…/state` topics restored after a restart. Buttons (`reset`, `test`, `false_alarm`,
`file_settings`) carry `PRESS`. Anything else (an unknown camera or command, a payload that does
not parse) is refused with a reason, counted and logged by the refusal log; nothing raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from detector.contract import PRESS
from detector.service.refusals import RefusalLog

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingCommand:
    """A setting: its parser (text → value, ValueError with the reason) and what applies it."""

    parse: Callable[[str], Any]
    apply: Callable[[str, Any, str], None]  # (camera, value, source)


class CommandTable:
    """Routes commands of known cameras to their handlers."""

    def __init__(self, cameras: Collection[str], refusals: RefusalLog) -> None:
        self.cameras = cameras
        self.refusals = refusals
        self.settings: dict[str, SettingCommand] = {}
        self.buttons: dict[str, Callable[[str], None]] = {}

    def setting(
        self, name: str, parse: Callable[[str], Any], apply: Callable[[str, Any, str], None]
    ) -> None:
        """Add a setting command."""
        self.settings[name] = SettingCommand(parse, apply)

    def button(self, name: str, press: Callable[[str], None]) -> None:
        """Add a button command."""
        self.buttons[name] = press

    def command(self, camera: str, name: str, payload: bytes) -> bool:
        """Run one command; False when it was refused (counted and logged)."""
        if camera not in self.cameras:
            self.refusals.refuse(camera, "unknown_camera", f"command {name} for an unknown camera")
            return False
        text = payload.decode("utf-8", "replace").strip()
        press = self.buttons.get(name)
        if press is not None:
            if text.upper() != PRESS:
                self._refuse(camera, name, f"{name}: expected {PRESS}, got {text[:40]!r}")
                return False
            press(camera)
            return True
        if name in self.settings:
            return self.apply(camera, name, text, source="command")
        self._refuse(camera, name, f"unknown command topic {name}/set")
        return False

    def apply(self, camera: str, name: str, text: str, *, source: str) -> bool:
        """Parse and apply a setting's value (from a command or a restored state)."""
        setting = self.settings[name]
        try:
            value = setting.parse(text)
        except ValueError as err:
            self._refuse(camera, name, f"{name} ({source}): {err}")
            return False
        setting.apply(camera, value, source)
        _LOGGER.info("Camera %s: %s set to %s (%s)", camera, name, text[:200], source)
        return True

    def parse(self, camera: str, name: str, text: str, *, source: str) -> tuple[bool, Any]:
        """Only parse a setting's value: (True, value), or (False, None) when refused."""
        try:
            return True, self.settings[name].parse(text)
        except ValueError as err:
            self._refuse(camera, name, f"{name} ({source}): {err}")
            return False, None

    def _refuse(self, camera: str, name: str, message: str) -> None:
        self.refusals.refuse(camera, "bad_command", message, detail=name)
