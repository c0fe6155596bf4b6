"""The Pyronear API's occlusion masks, translated into the detector's mask JSON.

The API keeps a pose's masks as text, `[{"id": 5, "mask": "(x1,y1,x2,y2)", ...}]`, and checks
only that text's shape: it accepts `(0.5,0.5,0.1,0.1)`, which has no area. The detector reads
one mask format, the one of its masks command (`detector.masks.masks_from_json`), so the bridge
translates here and only the bridge knows the API's. Each API mask becomes a rectangle named
`remote-<id>` with Pyronear's IoU rule; one the detector would refuse is skipped with its
reason, named by its id at the API, and one bad mask never costs the camera the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from detector.masks import MAX_MASKS, mask_from_json

_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_API_MASK = re.compile(rf"^\({_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}\)$")
# Characters of a mask string read, and quoted in a problem: the API stores any text.
_READ, _QUOTE = 200, 60


@dataclass(frozen=True)
class TranslatedMasks:
    """The masks to publish on `<cam>/masks/remote` and why API masks were left out."""

    masks: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def translate_api_masks(items: Any) -> TranslatedMasks:
    """The detector's mask JSON for the API's answer to `GET poses/{id}/occlusion_masks`.

    Raises ValueError when the answer is not a list at all (nothing to publish then); a bad
    item is skipped and named in `problems`. Beyond MAX_MASKS (what the detector accepts) the
    first ones are kept and the rest reported as one problem.
    """
    if not isinstance(items, list):
        raise ValueError(f"the API's masks are not a JSON list but {type(items).__name__}")
    masks: list[dict[str, Any]] = []
    problems: list[str] = []
    names: set[str] = set()
    for index, item in enumerate(items):
        where = _where(item, index)
        try:
            mask = _translate(item, index, where)
            if mask["name"] in names:
                raise ValueError(f"{where}: the name {mask['name']!r} is already used")
        except ValueError as err:
            problems.append(str(err))
            continue
        names.add(mask["name"])
        masks.append(mask)
    if len(masks) > MAX_MASKS:
        problems.append(
            f"{len(masks) - MAX_MASKS} API mask(s) beyond the first {MAX_MASKS} skipped "
            f"(the detector takes at most {MAX_MASKS})"
        )
        masks = masks[:MAX_MASKS]
    return TranslatedMasks(masks, problems)


def _api_id(item: Any) -> int | None:
    """The API's id of a mask (an integer), or None."""
    ident = item.get("id") if isinstance(item, dict) else None
    return ident if isinstance(ident, int) and not isinstance(ident, bool) else None


def _where(item: Any, index: int) -> str:
    """How a problem names a mask: by its id at the API, which the operator can look up on
    the platform (its place in the answer's list means nothing to them)."""
    ident = _api_id(item)
    return f"API mask #{index + 1} (no id)" if ident is None else f"API mask id {ident}"


def _translate(item: Any, index: int, where: str) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("mask"), str):
        raise ValueError(f"{where}: expected an object with a 'mask' string")
    text = item["mask"]
    match = _API_MASK.match(text[:_READ])
    if not match:
        raise ValueError(f"{where}: {text[:_QUOTE]!r} is not '(x1,y1,x2,y2)'")
    ident = _api_id(item)
    # The API's ids are integers; anything else would make a strange mask name.
    suffix = index if ident is None else ident
    mask = {
        "name": f"remote-{suffix}",
        "rect": [float(value) for value in match.groups()],
        "rule": "iou",
    }
    # The detector's own check, so that what is published is what it accepts.
    mask_from_json(mask, where)
    return mask
