"""The settings a camera runs with, changed at run time from Home Assistant, and the rule that
decides between them and the configuration file after a restart.

Two settings exist in both places: `enabled` (HA's Detection switch) and `threshold` (HA's Smoke
threshold number). The rule (README, "Settings changed in Home Assistant"):

- A change made at run time lasts across restarts: the retained `<cam>/…/state` topics bring it
  back.
- Until the file's value of that setting changes: an edit of the file is newer than the change
  made in HA, so the file wins. `<cam>/settings` (retained) records, for each setting, its value,
  the file's value when it was set, and whether it comes from the file or from a change at run
  time; that record is what tells an edited file from an old one.
- The "Use file settings" button (`<cam>/file_settings/set` PRESS) goes back to the file's values.

Zones drawn in HA (local masks) are not in the file: they add to the file's masks, and
`smokewatch.clear_zones` removes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from detector.config.detection import THRESHOLD_MAX, THRESHOLD_MIN
from detector.masks import Mask, masks_from_json
from detector.untrusted import parse_json

_LOGGER = logging.getLogger(__name__)

# A masks command or state larger than this is refused before it is parsed (a few hundred
# masks of a dozen points fit in a tenth of it).
MASKS_MAX_BYTES = 64 * 1024
# The settings the file also sets (the rule above applies to them).
FILE_KEYS = ("enabled", "threshold")
FROM_FILE = "file"
FROM_RUN_TIME = "run time"


def parse_enabled(text: str) -> bool:
    """ON or OFF (any case); ValueError otherwise."""
    if text.upper() not in ("ON", "OFF"):
        raise ValueError(f"expected ON or OFF, got {text[:40]!r}")
    return text.upper() == "ON"


def parse_threshold(text: str) -> float:
    """A number in the threshold's range; ValueError otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text[:40]!r}") from None
    if not THRESHOLD_MIN <= value <= THRESHOLD_MAX:  # also refuses nan
        raise ValueError(f"threshold {value} is outside {THRESHOLD_MIN}..{THRESHOLD_MAX}")
    return value


def parse_masks(text: str) -> list[Mask]:
    """The local masks of a masks command or state (an empty payload clears them)."""
    try:
        data = parse_json(text, max_bytes=MASKS_MAX_BYTES) if text else []
    except ValueError as err:
        raise ValueError(f"masks are not valid JSON: {err}") from None
    return masks_from_json(data)


@dataclass
class Setting:
    """One setting's value, the file's value, and which of the two it is."""

    value: Any
    file: Any
    source: str = FROM_FILE

    def to_json(self) -> dict[str, Any]:
        """The setting's entry in `<cam>/settings`."""
        return {"value": self.value, "file": self.file, "source": self.source}


@dataclass
class LiveSettings:
    """The one owner of a camera's `enabled` and `threshold` (the pipeline only reads the
    threshold it is given)."""

    camera: str
    values: dict[str, Setting] = field(default_factory=dict)

    @classmethod
    def from_file(cls, camera: str, *, enabled: bool, threshold: float) -> LiveSettings:
        """The settings as the configuration file sets them."""
        return cls(
            camera,
            {"enabled": Setting(enabled, enabled), "threshold": Setting(threshold, threshold)},
        )

    @property
    def enabled(self) -> bool:
        """Whether frames of this camera are scored."""
        return bool(self.values["enabled"].value)

    @property
    def threshold(self) -> float:
        """The vote threshold."""
        return float(self.values["threshold"].value)

    def set(self, key: str, value: Any) -> None:
        """A change at run time (a command from HA)."""
        setting = self.values[key]
        setting.value = value
        setting.source = FROM_FILE if value == setting.file else FROM_RUN_TIME

    def use_file(self) -> list[str]:
        """Go back to the file's values; the keys whose value changed."""
        changed = [key for key, setting in self.values.items() if setting.value != setting.file]
        for setting in self.values.values():
            setting.value, setting.source = setting.file, FROM_FILE
        return changed

    def restored(self, key: str, value: Any, record: Any) -> bool:
        """Whether a value restored from the broker (`…/state`) replaces the file's.

        `record` is this setting's entry in the `<cam>/settings` retained before the restart
        (None when there is none, as after an upgrade from a version without it: the value set
        at run time is then kept, as before; a record that is not an object counts as the
        file's).
        """
        setting = self.values[key]
        if value == setting.file:
            return False  # nothing to restore
        if record is None:
            _LOGGER.info(
                "Camera %s: %s %s set from Home Assistant is kept (the file says %s; "
                "'Use file settings' goes back to it)",
                self.camera,
                key,
                value,
                setting.file,
            )
            self.set(key, value)
            return True
        if not isinstance(record, dict) or record.get("source") != FROM_RUN_TIME:
            return False  # the old state was the file's value of the last run: the file wins
        if record.get("file") != setting.file:
            _LOGGER.info(
                "Camera %s: the file's %s changed (%s, was %s) since %s was set from Home "
                "Assistant: the file wins",
                self.camera,
                key,
                setting.file,
                record.get("file"),
                value,
            )
            return False
        self.set(key, value)
        return True

    def to_json(self) -> dict[str, Any]:
        """The `<cam>/settings` payload."""
        return {key: setting.to_json() for key, setting in self.values.items()}
