#!/usr/bin/env bash
# The one test command: lint, type-check and test the detector/bridge (Python >= 3.11 venv),
# then the Home Assistant integration (scripts/test-ha.sh: HA on Python 3.14 in a chroot of its own).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
.venv/bin/pip install -q -e '.[test]'

echo "== ruff"
.venv/bin/ruff check detector tests bench custom_components
.venv/bin/ruff format --check detector tests bench custom_components
echo "== mypy"
.venv/bin/mypy
echo "== pytest (detector, bridge)"
.venv/bin/pytest -q tests/detector "$@"

if [ "${SMOKEWATCH_SKIP_HA:-0}" != "1" ]; then
  echo "== Home Assistant integration"
  bash scripts/test-ha.sh
fi
