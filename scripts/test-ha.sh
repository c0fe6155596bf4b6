#!/usr/bin/env bash
# The Home Assistant part of the test command: the integration's tests against a real Home
# Assistant (2025.4.4 on Python 3.13) in a venv of its own (.venv-ha), because HA pins its own
# dependency versions (paho-mqtt, numpy, ...) which clash with the detector's.
#
# Environment: SMOKEWATCH_HA_PYTHON  a Python 3.13 interpreter (default: pyenv's 3.13.x)
#              SMOKEWATCH_SKIP_E2E=1 skip the end-to-end test with a real HA process
set -euo pipefail
cd "$(dirname "$0")/.."

HA_VERSION=2025.4.4
PHCC_VERSION=0.13.236 # pytest-homeassistant-custom-component release that pins HA 2025.4.4
VENV=.venv-ha

find_python313() {
  if [ -n "${SMOKEWATCH_HA_PYTHON:-}" ]; then
    echo "$SMOKEWATCH_HA_PYTHON"
    return
  fi
  local candidate root
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    candidate=$(pyenv prefix 3.13 2>/dev/null || true)
    if [ -n "$candidate" ] && [ -x "$candidate/bin/python3.13" ]; then
      echo "$candidate/bin/python3.13"
      return
    fi
  else
    root=${PYENV_ROOT:-$HOME/.pyenv}
  fi
  for candidate in "$root"/versions/3.13*/bin/python3.13; do
    if [ -x "$candidate" ]; then
      echo "$candidate"
      return
    fi
  done
  if command -v python3.13 >/dev/null 2>&1; then
    command -v python3.13
  fi
}

venv_ready() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$PHCC_VERSION" "$HA_VERSION" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
wanted = {"pytest-homeassistant-custom-component": sys.argv[1], "homeassistant": sys.argv[2]}
sys.exit(any(version(name) != pinned for name, pinned in wanted.items()))
PY
}

if ! venv_ready; then
  PY313=$(find_python313)
  if [ -z "$PY313" ]; then
    echo "test-ha: no Python 3.13 interpreter found (Home Assistant $HA_VERSION needs 3.13)." >&2
    echo "Install one with 'pyenv install 3.13' or point SMOKEWATCH_HA_PYTHON at it." >&2
    exit 1
  fi
  echo "== creating $VENV with $PY313 (Home Assistant $HA_VERSION, once)"
  rm -rf "$VENV"
  "$PY313" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # HA ships its pins inside its wheel: install it alone first, then everything under its
  # constraints (without them pip backtracks for minutes and may pick josepy 2, which breaks
  # every HTTP answer of HA).
  "$VENV/bin/pip" install -q --no-deps "homeassistant==$HA_VERSION"
  HA_CONSTRAINTS=$("$VENV/bin/python" -c 'import homeassistant, pathlib; print(pathlib.Path(homeassistant.__file__).parent / "package_constraints.txt")')
  EXTRA_CONSTRAINTS="$VENV/extra-constraints.txt"
  echo "josepy<2" >"$EXTRA_CONSTRAINTS"
  # The MQTT integration's own requirement (paho-mqtt), as its manifest pins it.
  MQTT_REQUIREMENTS=$("$VENV/bin/python" -c 'import homeassistant, json, pathlib; print(" ".join(json.loads((pathlib.Path(homeassistant.__file__).parent / "components/mqtt/manifest.json").read_text())["requirements"]))')
  # shellcheck disable=SC2086 # one word per requirement
  "$VENV/bin/pip" install -q -c "$HA_CONSTRAINTS" -c "$EXTRA_CONSTRAINTS" \
    "pytest-homeassistant-custom-component==$PHCC_VERSION" "homeassistant==$HA_VERSION" \
    $MQTT_REQUIREMENTS mypy
fi

echo "== mypy (custom_components, Home Assistant's types)"
"$VENV/bin/mypy" --config-file tests/ha/mypy.ini custom_components/smokewatch

echo "== pytest (Home Assistant integration; end to end with a real HA, Mosquitto, smokewatch run)"
MARKERS=()
if [ "${SMOKEWATCH_SKIP_E2E:-0}" = "1" ]; then
  MARKERS=(-m "not e2e")
fi
# tests/ha/pytest.ini is this run's config: pyproject's pytest settings are the detector's.
"$VENV/bin/python" -m pytest -c tests/ha/pytest.ini --rootdir . -q -p no:cacheprovider \
  "${MARKERS[@]}" tests/ha "$@"
