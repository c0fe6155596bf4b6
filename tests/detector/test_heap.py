"""keep_freed_memory: glibc's thresholds are set once per process, never against the user's."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHECK = "from detector.heap import keep_freed_memory as k; print(k(), k())"


def _run(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds are glibc's")
def test_thresholds_are_set_once_on_glibc() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert _run(env) == "True True"


def test_the_environments_thresholds_are_left_alone() -> None:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    assert _run(env) == "False False"
