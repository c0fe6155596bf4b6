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

echo "== zone card (npm: typecheck, unit tests, the committed bundle is up to date)"
# Skipped only where Node is absent (a detector-only machine); CI installs it (.ci/run).
if command -v npm >/dev/null 2>&1; then
  (cd card && npm ci --no-audit --no-fund --loglevel=error && npm test)
  if [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    echo "== zone card in headless Chromium"
    (cd card && npm run test:browser)
  else
    echo "zone card browser test skipped: no Chromium at ${CHROMIUM:-/usr/bin/chromium} (apt-get install chromium)"
  fi
else
  echo "zone card tests skipped: npm not found (apt-get install nodejs npm)"
fi

if [ "${SMOKEWATCH_SKIP_HA:-0}" != "1" ]; then
  echo "== Home Assistant integration"
  bash scripts/test-ha.sh
fi
