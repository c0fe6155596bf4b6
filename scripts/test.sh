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

# A real Triton server for tests/detector/test_triton.py: PyPI's nvidia-pytriton ships
# tritonserver, whose Python backend loads the system libpython, so its venv is built from the
# system Python 3 (Debian's /usr/bin/python3; apt: python3-venv libpython3.11) and kept apart
# from .venv (pytriton pins its own numpy and protobuf). Built once, then cached.
TRITON_PY=${SMOKEWATCH_TRITON_PYTHON:-/usr/bin/python3}
if [ ! -x .venv-triton/bin/python ] && [ -x "$TRITON_PY" ]; then
  echo "== building .venv-triton (nvidia-pytriton, onnxruntime) with $TRITON_PY"
  if "$TRITON_PY" -m venv .venv-triton.tmp \
    && .venv-triton.tmp/bin/pip install -q 'nvidia-pytriton==0.7.0' 'onnxruntime>=1.17'; then
    mv .venv-triton.tmp .venv-triton
  else
    rm -rf .venv-triton.tmp
    echo "warning: .venv-triton could not be built: the Triton tests will skip" >&2
  fi
fi

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
