"""The CI guard (tests/require_all.py): under SMOKEWATCH_REQUIRE_ALL=1 a skip is a failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.detector.mqtt_helpers import REPO

SKIPPING = """
import pytest

def test_skips():
    pytest.skip("Chromium is absent")

@pytest.mark.xfail(reason="a known bug")
def test_expected_failure():
    assert False

def test_passes():
    pass
"""


def run(tmp_path: Path, source: str, *plugin: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_sample.py"
    test.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, str(test)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_fails_with_its_reason(tmp_path: Path) -> None:
    run_all = run(tmp_path, SKIPPING, "-p", "tests.require_all")
    assert run_all.returncode == 1, run_all.stdout
    assert "1 failed, 1 passed, 1 xfailed" in run_all.stdout
    assert "Chromium is absent" in run_all.stdout and "SMOKEWATCH_REQUIRE_ALL" in run_all.stdout
    # Without the plugin the same file passes with a skip (a developer's partial machine).
    plain = run(tmp_path, SKIPPING)
    assert plain.returncode == 0 and "1 skipped" in plain.stdout


def test_a_module_skipped_whole_fails(tmp_path: Path) -> None:
    source = 'import pytest\npytest.importorskip("no_such_module")\n\ndef test_x():\n    pass\n'
    result = run(tmp_path, source, "-p", "tests.require_all")
    assert result.returncode != 0 and "no_such_module" in result.stdout
