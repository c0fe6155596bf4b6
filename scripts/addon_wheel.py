"""Rebuild the wheel of the detector that the add-on's Dockerfile installs (addon/wheels/).

The Home Assistant Supervisor builds an add-on on the user's machine with the add-on folder as
the only build context, and the detector is not on PyPI: so the folder carries a wheel of this
repository's package, built here by the project's own build backend (setuptools, from
pyproject.toml) out of a clean copy of the sources. Run it after any change to detector/ or to
the package's metadata; tests/detector/test_addon_repository.py fails while the committed wheel
differs from the sources.

    .venv/bin/python scripts/addon_wheel.py

Zip timestamps come from SOURCE_DATE_EPOCH (fixed), so a rebuild of unchanged sources with the
same setuptools gives the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / "addon" / "wheels"
# What setuptools reads to build the wheel (pyproject.toml names README.md and LICENSE).
SOURCES = ("pyproject.toml", "LICENSE", "detector")
# The wheel's long description, in place of README.md: the wheel then changes only with the
# code and the package's metadata, not with every edit of the README.
DESCRIPTION = (
    "# SmokeWatch\n\nThe SmokeWatch detector, as the Home Assistant add-on installs it."
    " Documentation: https://github.com/smokewatch/smokewatch\n"
)
# 1980-01-01, the earliest time a zip archive can record.
SOURCE_DATE_EPOCH = "315532800"


def build(destination: Path) -> Path:
    """Build the wheel from a clean copy of the sources into `destination`; its path."""
    with tempfile.TemporaryDirectory(prefix="smokewatch-wheel-") as scratch:
        source = Path(scratch) / "src"
        source.mkdir()
        for name in SOURCES:
            path = REPO / name
            if path.is_dir():
                shutil.copytree(
                    path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(path, source / name)
        (source / "README.md").write_text(DESCRIPTION)
        built = Path(scratch) / "out"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", built, source],
            check=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )
        (wheel,) = built.glob("*.whl")
        destination.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheel, destination / wheel.name))


def main() -> int:
    """Replace the add-on's wheel with one built from the current sources."""
    with tempfile.TemporaryDirectory(prefix="smokewatch-wheel-new-") as staging:
        wheel = build(Path(staging))
        for old in WHEELS.glob("*.whl"):
            old.unlink()
        WHEELS.mkdir(parents=True, exist_ok=True)
        target = WHEELS / wheel.name
        shutil.copy2(wheel, target)
    print(f"wrote {target.relative_to(REPO)} ({target.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
