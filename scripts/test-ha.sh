#!/usr/bin/env bash
# The Home Assistant part of the test command: both ends of the supported range.
#
#   oldest supported HA   2026.5.4  + pytest-homeassistant-custom-component 0.13.333: mypy, tests
#   newest phcc           2026.10.4 + pytest-homeassistant-custom-component 0.13.375: mypy, tests
#   end to end            a real HA process on 2026.11.0 (current release) and on 2026.5.4,
#                         with real Mosquitto and the real `smokewatch run` (tests/ha_e2e)
#
# HA 2026.3+ needs Python >= 3.14.2: HA runs in Debian sid's python3.14 inside a root
# filesystem built once per machine by scripts/ha-envs.sh (mmdebstrap) and entered through
# scripts/ha-chroot.sh. Everything is cached in /var/cache/smokewatch-ci (SMOKEWATCH_HA_CACHE),
# checked before reuse and rebuilt when stale or broken. Needs root (chroot, mounts).
#
# Environment: SMOKEWATCH_SKIP_E2E=1  skip the end-to-end tests
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

HA_OLDEST=2026.5.4
PHCC_OLDEST=0.13.333 # the pytest-homeassistant-custom-component release that pins HA 2026.5.4
HA_PHCC_NEWEST=2026.10.4
PHCC_NEWEST=0.13.375 # the newest phcc release; it pins HA 2026.10.4
HA_NEWEST=2026.11.0  # the current HA release (no phcc release pins it yet)

if [ "$(id -u)" != 0 ]; then
  echo "test-ha: needs root (it runs Home Assistant's Python 3.14 in a chroot); try sudo" >&2
  exit 1
fi

bash scripts/ha-envs.sh "ha-$HA_OLDEST" "$HA_OLDEST" "$PHCC_OLDEST"
bash scripts/ha-envs.sh "ha-$HA_PHCC_NEWEST" "$HA_PHCC_NEWEST" "$PHCC_NEWEST"
bash scripts/ha-envs.sh "ha-$HA_NEWEST" "$HA_NEWEST"

for ha in "$HA_OLDEST" "$HA_PHCC_NEWEST"; do
  venv=/opt/smokewatch-ha/ha-$ha
  echo "== mypy (custom_components, Home Assistant $ha's types)"
  bash scripts/ha-chroot.sh "$venv/bin/mypy" --config-file tests/ha/mypy.ini \
    --cache-dir "$venv/.mypy_cache" custom_components/smokewatch
  echo "== pytest (Home Assistant $ha, pytest-homeassistant-custom-component)"
  # tests/ha/pytest.ini is this run's config: pyproject's pytest settings are the detector's.
  bash scripts/ha-chroot.sh "$venv/bin/python" -m pytest -c tests/ha/pytest.ini --rootdir . \
    -q -p no:cacheprovider tests/ha "$@"
done

if [ "${SMOKEWATCH_SKIP_E2E:-0}" != "1" ]; then
  for ha in "$HA_NEWEST" "$HA_OLDEST"; do
    echo "== end to end (a real Home Assistant $ha process, Mosquitto, smokewatch run)"
    # The test itself runs in the detector's venv; only Home Assistant runs in the chroot,
    # which sees /tmp: HA's config dir lives in this run's own temporary directory (kept,
    # with HA's and the detector's logs, when the test fails).
    work=$(mktemp -d /tmp/smokewatch-ha-e2e.XXXXXX)
    SMOKEWATCH_E2E_HA_COMMAND="bash $REPO/scripts/ha-chroot.sh /opt/smokewatch-ha/ha-$ha/bin/python" \
      SMOKEWATCH_E2E_HA_VERSION=$ha \
      .venv/bin/pytest -q -p no:cacheprovider --basetemp "$work" tests/ha_e2e ||
      { echo "test-ha: end-to-end logs kept in $work" >&2; exit 1; }
    rm -rf "$work"
  done
fi
