"""The validation library of the running Home Assistant.

Home Assistant validates with probatio from 2026.10 (API-compatible with voluptuous) and with
voluptuous before. Schemas and `Invalid` must come from the library HA itself uses: HA's
helpers raise its `Invalid`, and its service registry is typed for its own `Schema`. The
module is picked at import time, so to a type checker `vol` is `Any` on every version.
"""

from __future__ import annotations

import importlib
from typing import Any

vol: Any
try:
    vol = importlib.import_module("probatio")
except ImportError:
    vol = importlib.import_module("voluptuous")
