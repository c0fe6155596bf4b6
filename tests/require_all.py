"""A pytest plugin for runs that must run every test (CI): a skip is a failure, with its reason.

Tests skip with a reason where something they need is absent (Mosquitto, the Triton venv,
../shared/data, Chromium, the Home Assistant venvs). On a developer's partial machine that is
right; on CI, where `.ci/run` installs everything, a skip would hide a stage that did not run.
`scripts/test.sh` loads this plugin (`-p tests.require_all`) when SMOKEWATCH_REQUIRE_ALL=1,
which `.ci/run` sets. An expected failure (xfail) is not a skip and is left alone.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest


def _require(report: Any, where: str) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"{where} skipped ({reason}), but SMOKEWATCH_REQUIRE_ALL=1 requires every test to run"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    """A test that skipped fails instead."""
    outcome = yield
    _require(outcome.get_result(), item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[Any]:
    """A module that skipped as a whole (importorskip, a module-level skip) fails instead."""
    outcome = yield
    _require(outcome.get_result(), collector.nodeid)
