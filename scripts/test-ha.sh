#!/usr/bin/env bash
# The Home Assistant part of the test command: both ends of the supported range.
#
#   oldest supported HA   2026.5.4  + pytest-homeassistant-custom-component 0.13.333: mypy, tests
#   newest phcc           2026.10.4 + pytest-homeassistant-custom-component 0.13.375: mypy, tests
#   end to end            a real HA process on 2026.11.0 (current release) and on 2026.5.4,
#                         with real Mosquitto and the real `smokewatch run` (tests/ha_e2e)
#
#   bash scripts/test-ha.sh [PYTEST ARGS...]   build what is missing or stale, then test
#   bash scripts/test-ha.sh build              only build (scripts/test.sh runs this in the
#                                              background while the detector's tests run)
#
# HA 2026.3+ needs Python >= 3.14.2: HA runs in Debian sid's python3.14 inside a root
# filesystem built by scripts/ha-envs.sh (mmdebstrap) and entered through scripts/ha-chroot.sh.
# Everything is cached in $SMOKEWATCH_HA_CACHE (default /var/cache/smokewatch-ci), checked
# before reuse and rebuilt when built by another recipe, changed or broken. Needs root.
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
# ha-chroot.sh finds the root filesystem of the same cache.
export SMOKEWATCH_HA_CACHE=${SMOKEWATCH_HA_CACHE:-/var/cache/smokewatch-ci}
export SMOKEWATCH_HA_ROOTFS=$SMOKEWATCH_HA_CACHE/rootfs-sid-python3.14

ENVS=("ha-$HA_OLDEST $HA_OLDEST $PHCC_OLDEST" "ha-$HA_PHCC_NEWEST $HA_PHCC_NEWEST $PHCC_NEWEST"
  "ha-$HA_NEWEST $HA_NEWEST")
build_envs() {
  local env
  for env in "${ENVS[@]}"; do
    # shellcheck disable=SC2086 # name, version, phcc version
    bash scripts/ha-envs.sh $env
  done
}
build_envs
[ "${1:-}" != build ] || exit 0

# From here the venvs are in use: hold the cache's lock shared, so that a run from another
# checkout on this machine (with another recipe) cannot rebuild one under these tests. One may
# have been rebuilt between the builds above and this lock: check, and build again if so.
mkdir -p "$SMOKEWATCH_HA_CACHE"
exec 8>"$SMOKEWATCH_HA_CACHE/.lock"
for attempt in 1 2 3; do
  flock -s 8
  ready=1
  for env in "${ENVS[@]}"; do
    # shellcheck disable=SC2086
    bash scripts/ha-envs.sh --check $env || ready=0
  done
  [ "$ready" = 0 ] || break
  flock -u 8
  [ "$attempt" != 3 ] || { echo "test-ha: the HA environments keep being rebuilt by another run" >&2; exit 1; }
  build_envs
done

step() { echo "== [$((SECONDS))s] $1"; }
for ha in "$HA_OLDEST" "$HA_PHCC_NEWEST"; do
  venv=/opt/smokewatch-ha/ha-$ha
  step "mypy (custom_components, Home Assistant $ha's types)"
  bash scripts/ha-chroot.sh "$venv/bin/mypy" --config-file tests/ha/mypy.ini \
    --cache-dir "$venv/.mypy_cache" custom_components/smokewatch
  step "pytest (Home Assistant $ha, pytest-homeassistant-custom-component)"
  # tests/ha/pytest.ini is this run's config: pyproject's pytest settings are the detector's.
  bash scripts/ha-chroot.sh "$venv/bin/python" -m pytest -c tests/ha/pytest.ini --rootdir . \
    -q -p no:cacheprovider tests/ha "$@"
done

if [ "${SMOKEWATCH_SKIP_E2E:-0}" != "1" ]; then
  # Both versions at once: each run spends most of its time waiting for its own Home
  # Assistant to boot, on its own ports, config dir and broker. Each output is shown whole
  # when its run ends.
  step "end to end on $HA_NEWEST and $HA_OLDEST at once (a real Home Assistant process each, Mosquitto, smokewatch run)"
  pids=() works=() outs=()
  for ha in "$HA_NEWEST" "$HA_OLDEST"; do
    # The test itself runs in the detector's venv; only Home Assistant runs in the chroot,
    # which sees /tmp: HA's config dir lives in this run's own temporary directory (kept,
    # with HA's and the detector's logs, when the test fails).
    work=$(mktemp -d /tmp/smokewatch-ha-e2e.XXXXXX)
    SMOKEWATCH_E2E_HA_COMMAND="bash $REPO/scripts/ha-chroot.sh /opt/smokewatch-ha/ha-$ha/bin/python" \
      SMOKEWATCH_E2E_HA_VERSION=$ha \
      .venv/bin/python -m pytest -q -p no:cacheprovider --basetemp "$work" "$@" tests/ha_e2e \
      >"$work.out" 2>&1 &
    pids+=("$!") works+=("$work") outs+=("$ha")
  done
  failed=0
  for i in "${!pids[@]}"; do
    status=0
    wait "${pids[$i]}" || status=$?
    step "end to end on Home Assistant ${outs[$i]}: exit $status"
    cat "${works[$i]}.out"
    rm -f "${works[$i]}.out"
    if [ "$status" = 0 ]; then
      rm -rf "${works[$i]}"
    else
      echo "test-ha: end-to-end logs of ${outs[$i]} kept in ${works[$i]}" >&2
      failed=1
    fi
  done
  [ "$failed" = 0 ] || exit 1
  step "end to end done"
elif [ "${SMOKEWATCH_REQUIRE_ALL:-0}" = "1" ]; then
  echo "SMOKEWATCH_SKIP_E2E=1 and SMOKEWATCH_REQUIRE_ALL=1 contradict each other" >&2
  exit 1
fi
