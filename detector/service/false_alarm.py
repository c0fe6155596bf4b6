"""'Not smoke': turn an alert's boxes into masks of the camera, so it never alerts there again.

Each box becomes its own rectangle with Pyronear's IoU rule: a later box that looks like the
dismissed one (IoU > 0.1 with it) is dropped, while a box elsewhere, or a much larger plume
that merely covers it, still counts. One rectangle per box because the IoU rule compares a
box with the mask's bounding rectangle: a single mask around two distant boxes would cover
everything between them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from detector.contract import iso_utc
from detector.masks import Mask

# The false alarms a camera's masks attributes list (the newest last).
MAX_EVENTS_SHOWN = 10
NAME_PREFIX = "not smoke"


@dataclass(frozen=True)
class FalseAlarm:
    """A dismissed alert: when, and the masks made of its boxes."""

    at: float
    alert_started: float | None
    masks: tuple[str, ...]
    boxes: tuple[tuple[float, float, float, float], ...]

    def to_json(self) -> dict[str, Any]:
        """The event as shown in the smoke and masks attributes."""
        return {
            "at": iso_utc(self.at),
            "alert_started": None if self.alert_started is None else iso_utc(self.alert_started),
            "masks": list(self.masks),
            "boxes": [list(box) for box in self.boxes],
        }


def false_alarm_masks(
    boxes: Iterable[Sequence[float]], taken: Iterable[str], when: float | None = None
) -> list[Mask]:
    """One IoU-rule rectangle per box (x1, y1, x2, y2[, conf]), named with the date.

    Names are unique among `taken` and each other ("not smoke 2026-07-01 12:15", then
    "... #2"); boxes without an area are skipped (they can never match anything).
    """
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() if when is None else when))
    used = set(taken)
    masks: list[Mask] = []
    for box in boxes:
        x1, y1, x2, y2 = (min(1.0, max(0.0, round(float(v), 4))) for v in box[:4])
        if not (x1 < x2 and y1 < y2):
            continue
        name = f"{NAME_PREFIX} {stamp}"
        suffix = 2
        while name in used:
            name = f"{NAME_PREFIX} {stamp} #{suffix}"
            suffix += 1
        used.add(name)
        masks.append(Mask.rect(name, x1, y1, x2, y2, "iou"))
    return masks


def masks_attributes(
    local: Sequence[Mask], remote: Sequence[Mask], events: Sequence[FalseAlarm]
) -> dict[str, Any]:
    """The retained P/<cam>/masks/attributes JSON read by the zone card.

    `local` are the camera's editable zones (what P/<cam>/masks/set replaces), `remote` the
    Pyronear API's masks (read-only here), `false_alarms` the latest dismissed alerts.
    """
    return {
        "local": [mask.to_json() for mask in local],
        "remote": [mask.to_json() for mask in remote],
        "false_alarms": [event.to_json() for event in events[-MAX_EVENTS_SHOWN:]],
    }
