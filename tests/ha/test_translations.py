"""Every string the integration's code uses has its English text: errors of services, repair
issues, flow steps, form errors and aborts (Home Assistant shows the bare key without one).
tests/detector/test_packaging.py checks that translations/en.json is strings.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

from custom_components.smokewatch import const

COMPONENT = Path(__file__).resolve().parents[2] / "custom_components" / "smokewatch"
STRINGS = json.loads((COMPONENT / "strings.json").read_text())


def found(pattern: str, *modules: str) -> set[str]:
    """The keys a pattern finds in the integration's modules (all of them by default)."""
    paths = [COMPONENT / module for module in modules] or sorted(COMPONENT.glob("*.py"))
    return {key for path in paths for key in re.findall(pattern, path.read_text())}


def test_every_error_and_issue_has_its_text() -> None:
    exceptions = found(r'translation_key="(\w+)"')
    assert {"command_refused", "no_answer", "no_answer_and_refused"} <= exceptions
    assert exceptions <= set(STRINGS["exceptions"])
    issues = {value for name, value in vars(const).items() if name.startswith("ISSUE_")}
    assert issues == set(STRINGS["issues"])


def test_every_flow_step_error_and_abort_has_its_text() -> None:
    steps = found(r'step_id="(\w+)"', "config_flow.py")
    assert "pick_detector" in steps
    assert steps - {"init"} <= set(STRINGS["config"]["step"])
    assert "init" in STRINGS["options"]["step"]
    errors = found(r'(?:return \[\], |or |else )"(\w+)"', "config_flow.py")
    assert {"no_detector", "not_smokewatch", "several_detectors"} <= errors
    assert errors <= set(STRINGS["config"]["error"])
    aborts = found(r'reason="(\w+)"', "config_flow.py")
    assert aborts <= set(STRINGS["config"]["abort"])
