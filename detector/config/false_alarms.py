"""`false_alarms:` where the frames of alerts dismissed as "Not smoke" are kept.

Each dismissed alert becomes a fire-free sequence (its frames and a `label.yaml`) that
`smokewatch eval` reads as it is: a threshold or scene change can be checked against the
user's own false alarms before it goes live.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import voluptuous as vol

from detector.config.validators import integer, mapping_or_empty, text

DEFAULT_DIR = "~/.local/share/smokewatch/false_alarms"


@dataclass(frozen=True)
class FalseAlarmsConfig:
    """The false_alarms section."""

    dir: str = DEFAULT_DIR
    keep: int = 50  # sequences kept (the oldest removed first); 0 keeps none


_D = FalseAlarmsConfig()

FALSE_ALARMS_SCHEMA = vol.All(
    mapping_or_empty,
    vol.Schema(
        {
            # The folder (created when needed); relative paths are the config file's.
            vol.Optional("dir", default=_D.dir): text,
            # How many dismissed alerts are kept, newest first; 0 keeps none.
            vol.Optional("keep", default=_D.keep): integer(0, 10000),
        },
        extra=vol.PREVENT_EXTRA,
    ),
)


def false_alarms_config(data: dict[str, object], base_dir: Path | None) -> FalseAlarmsConfig:
    """The dataclass of a validated section, its folder resolved against the config's."""
    folder = Path(str(data["dir"])).expanduser()
    if base_dir is not None and not folder.is_absolute():
        folder = base_dir / folder
    return FalseAlarmsConfig(dir=str(folder), keep=int(str(data["keep"])))
