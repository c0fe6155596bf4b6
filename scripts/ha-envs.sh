#!/usr/bin/env bash
# Build (once per machine) what the Home Assistant tests run on, in a cache outside the checkout:
#
#   $SMOKEWATCH_HA_CACHE (default /var/cache/smokewatch-ci)/rootfs-sid-python3.14
#       a Debian sid root filesystem made by mmdebstrap: Debian's own python3.14 (HA 2026.3+
#       needs Python >= 3.14.2; Debian 12 has 3.11 and pyenv here only 3.13.0)
#   <rootfs>/opt/smokewatch-ha/<name>
#       one venv per Home Assistant version, each installed under HA's own pins, with every
#       package the tests need: HA, pytest-homeassistant-custom-component, mypy, and the
#       requirements of every integration the tests set up or a real HA boot loads
#       (scripts/ha_requirements.py: `home-assistant-frontend` among them). Nothing is left
#       for a test or a boot to install: the end-to-end tests run HA with --skip-pip.
#
#   scripts/ha-envs.sh NAME HA_VERSION [PHCC_VERSION]   ensure one venv (and the rootfs)
#
# Trust nothing already there. Each piece carries a marker written last: for the rootfs, a
# hash of the recipe that built it; for a venv, a hash of its recipe (this script's build
# function, ha_requirements.py, the integration's manifest, the versions) followed by the
# `pip freeze` taken when it was built. Before reuse the marker must match this script's
# recipe, the interpreter must run, and the venv's packages must be exactly those it was built
# with (a package added, removed or changed since, by a person or a boot, fails the check):
# otherwise the piece is rebuilt from scratch. The rootfs is made beside and renamed; builds
# hold a lock, so an interrupted build or two concurrent runs never leave a half-built piece.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${SMOKEWATCH_HA_CACHE:-/var/cache/smokewatch-ci}
ROOTFS=$CACHE/rootfs-sid-python3.14
export SMOKEWATCH_HA_ROOTFS=$ROOTFS
# g++ and python3.14-dev: some integration packages build from source on Python 3.14
# (pymicro-vad, pyspeex-noise for assist_pipeline, which HA loads to validate selectors);
# libturbojpeg0 for camera snapshots.
ROOTFS_PACKAGES="python3.14,python3.14-venv,python3.14-dev,g++,libturbojpeg0,ca-certificates"
MARKER=.smokewatch-ready
# What the end-to-end tests configure in Home Assistant (tests/ha_e2e/harness.py writes its
# configuration.yaml; MQTT comes by a config entry, dashboards by lovelace), and what HA's
# onboarding sets up when a test completes it as a user does (onboarding/views.py: the
# integrations offered at its end).
E2E_DOMAINS="http api config onboarding automation logger mqtt lovelace
  google_translate met radio_browser shopping_list"

CHECK_ONLY=0
if [ "${1:-}" = --check ]; then
  # Only say (exit status) whether the piece is ready, without building or locking: for a
  # run that holds the cache's lock shared while it uses the venvs (scripts/test-ha.sh).
  CHECK_ONLY=1
  shift
fi
NAME=$1
HA_VERSION=$2
PHCC_VERSION=${3:-}
VENV=/opt/smokewatch-ha/$NAME # inside the rootfs

in_chroot() { bash scripts/ha-chroot.sh "$@"; }

build_rootfs() {
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "== installing mmdebstrap (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null; }
  fi
  echo "== building the Debian sid root filesystem with Python 3.14 in $ROOTFS (once per machine)"
  rm -rf "$ROOTFS" "$ROOTFS.building"
  # sid's Release file is often past its Valid-Until date: accept it (the archive keys are
  # still checked).
  mmdebstrap --quiet --variant=apt --include="$ROOTFS_PACKAGES" \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    sid "$ROOTFS.building" http://deb.debian.org/debian
  echo "$ROOTFS_KEY" >"$ROOTFS.building/$MARKER"
  mv "$ROOTFS.building" "$ROOTFS"
}

build_venv() {
  echo "== building $VENV (Home Assistant $HA_VERSION${PHCC_VERSION:+, phcc $PHCC_VERSION}; once per machine)"
  rm -rf "$ROOTFS$VENV"
  mkdir -p "$(dirname "$ROOTFS$VENV")"
  # A venv records its own path, so it is built in place; the marker, written last, is what
  # makes it count as built (an interrupted build has none and is rebuilt).
  in_chroot python3.14 -m venv "$VENV"
  in_chroot "$VENV/bin/pip" install -q --upgrade pip
  # HA ships its pins inside its wheel: install it alone first, then everything under its
  # constraints (without them pip backtracks for minutes).
  in_chroot "$VENV/bin/pip" install -q --no-deps "homeassistant==$HA_VERSION"
  local requirements=("homeassistant==$HA_VERSION" mypy)
  if [ -n "$PHCC_VERSION" ]; then
    requirements+=("pytest-homeassistant-custom-component==$PHCC_VERSION")
  fi
  # HA's package (its pins) is read without importing it: homeassistant/__init__.py imports
  # HA's dependencies, which are not installed yet.
  local ha_dir
  ha_dir=$(in_chroot "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"] + "/homeassistant")')
  in_chroot "$VENV/bin/pip" install -q -c "$ha_dir/package_constraints.txt" "${requirements[@]}"
  # Then what the integrations need, found in HA's own manifests as its requirements manager
  # would at a boot, under the same pins.
  # shellcheck disable=SC2207,SC2086 # one word per requirement, per domain
  local integration_requirements=($(in_chroot "$VENV/bin/python" scripts/ha_requirements.py \
    custom_components/smokewatch/manifest.json $E2E_DOMAINS))
  echo "   integration requirements: ${integration_requirements[*]}"
  in_chroot "$VENV/bin/pip" install -q -c "$ha_dir/package_constraints.txt" \
    "${integration_requirements[@]}"
  { echo "$VENV_KEY"; venv_freeze; } >"$ROOTFS$VENV/$MARKER.new"
  mv "$ROOTFS$VENV/$MARKER.new" "$ROOTFS$VENV/$MARKER"
}

venv_freeze() { in_chroot "$VENV/bin/python" -m pip freeze --all 2>/dev/null | LC_ALL=C sort; }

recipe_hash() { sha256sum | cut -c1-16; }
ROOTFS_KEY="sid $ROOTFS_PACKAGES $(declare -f build_rootfs | recipe_hash)"
# The integration's manifest counts only by what leads to requirements (not, say, its MQTT
# discovery topics).
manifest_needs() {
  python3 -c 'import json, sys; m = json.load(open(sys.argv[1]));
print([m.get(k, []) for k in ("requirements", "dependencies", "after_dependencies")])' \
    custom_components/smokewatch/manifest.json
}
VENV_KEY="homeassistant==$HA_VERSION phcc==${PHCC_VERSION:-none} $(
  { declare -f build_venv venv_freeze; echo "$E2E_DOMAINS"; manifest_needs
    cat scripts/ha_requirements.py; } | recipe_hash)"

rootfs_ready() {
  [ "$(cat "$ROOTFS/$MARKER" 2>/dev/null)" = "$ROOTFS_KEY" ] &&
    in_chroot python3.14 -c 'import ssl, sqlite3, sys, venv; sys.exit(sys.version_info < (3, 14, 2))'
}

# Why a venv cannot be reused, or nothing when it can.
venv_problem() {
  local marker=$ROOTFS$VENV/$MARKER
  [ -e "$marker" ] || { echo "not built"; return; }
  [ "$(head -n 1 "$marker")" = "$VENV_KEY" ] || { echo "built by another recipe"; return; }
  local now
  now=$(venv_freeze) || { echo "its Python does not run"; return; }
  if [ "$now" != "$(tail -n +2 "$marker")" ]; then
    echo "its packages changed since it was built: $(diff <(tail -n +2 "$marker") <(echo "$now") | grep '^[<>]' | head -5 | tr '\n' ' ')"
    return
  fi
  in_chroot "$VENV/bin/python" -c 'import homeassistant.components.mqtt, hass_frontend' 2>/dev/null ||
    echo "Home Assistant does not import"
}

if [ "$CHECK_ONLY" = 1 ]; then
  rootfs_ready && [ -z "$(venv_problem)" ]
  exit
fi

mkdir -p "$CACHE"
# Builds take the lock exclusively; runs that use the venvs hold it shared (test-ha.sh), so
# a venv is never rebuilt under a running test.
exec 9>"$CACHE/.lock"
flock 9
if ! rootfs_ready; then
  if [ -e "$ROOTFS/$MARKER" ]; then
    echo "== $ROOTFS is stale or broken (wanted: $ROOTFS_KEY): rebuilding it"
  fi
  build_rootfs
  rootfs_ready || { echo "ha-envs: the new root filesystem does not work" >&2; exit 1; }
fi
problem=$(venv_problem)
if [ -n "$problem" ]; then
  [ "$problem" = "not built" ] || echo "== $VENV: $problem: rebuilding it"
  rm -f "$ROOTFS$VENV/$MARKER"
  build_venv
  problem=$(venv_problem)
  [ -z "$problem" ] || { echo "ha-envs: the new venv $VENV does not work: $problem" >&2; exit 1; }
fi
