#!/usr/bin/env bash
# Build (once per machine) what the Home Assistant tests run on, in a cache outside the checkout:
#
#   $SMOKEWATCH_HA_CACHE (default /var/cache/smokewatch-ci)/rootfs-sid-python3.14
#       a Debian sid root filesystem made by mmdebstrap: Debian's own python3.14 (HA 2026.3+
#       needs Python >= 3.14.2; Debian 12 has 3.11 and pyenv here only 3.13.0)
#   <rootfs>/opt/smokewatch-ha/<name>
#       one venv per Home Assistant version, each installed under HA's own pins
#
#   scripts/ha-envs.sh NAME HA_VERSION [PHCC_VERSION]   ensure one venv (and the rootfs)
#
# Each piece carries a marker with the versions it was built for and is checked before reuse
# (the interpreter runs, the pinned versions import); a missing, stale or broken piece is
# rebuilt from scratch. The rootfs is made beside and renamed, a venv gets its marker last; builds hold a lock,
# so an interrupted build or two concurrent runs never leave a half-built piece behind.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${SMOKEWATCH_HA_CACHE:-/var/cache/smokewatch-ci}
ROOTFS=$CACHE/rootfs-sid-python3.14
export SMOKEWATCH_HA_ROOTFS=$ROOTFS
# g++ and python3.14-dev: HA installs some integration packages from source on Python 3.14
# (pymicro-vad, pyspeex-noise for assist_pipeline, which HA loads to validate selectors);
# libturbojpeg0 for camera snapshots.
ROOTFS_PACKAGES="python3.14,python3.14-venv,python3.14-dev,g++,libturbojpeg0,ca-certificates"
ROOTFS_KEY="sid $ROOTFS_PACKAGES v1"
MARKER=.smokewatch-ready

NAME=$1
HA_VERSION=$2
PHCC_VERSION=${3:-}
VENV=/opt/smokewatch-ha/$NAME # inside the rootfs
VENV_KEY="homeassistant==$HA_VERSION phcc==${PHCC_VERSION:-none} v1"

in_chroot() { bash scripts/ha-chroot.sh "$@"; }

rootfs_ready() {
  [ "$(cat "$ROOTFS/$MARKER" 2>/dev/null)" = "$ROOTFS_KEY" ] &&
    in_chroot python3.14 -c 'import ssl, sqlite3, sys, venv; sys.exit(sys.version_info < (3, 14, 2))'
}

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

venv_ready() {
  [ "$(cat "$ROOTFS$VENV/$MARKER" 2>/dev/null)" = "$VENV_KEY" ] &&
    in_chroot "$VENV/bin/python" - "$HA_VERSION" "$PHCC_VERSION" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version

import homeassistant.components.mqtt  # noqa: F401  (the MQTT integration imports)

sys.exit(
    version("homeassistant") != sys.argv[1]
    or (sys.argv[2] != "" and version("pytest-homeassistant-custom-component") != sys.argv[2])
)
PY
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
  # HA's package (its pins, the MQTT integration's manifest) is read without importing it:
  # homeassistant/__init__.py imports HA's dependencies, which are not installed yet.
  local ha_dir
  ha_dir=$(in_chroot "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"] + "/homeassistant")')
  # The MQTT integration's own requirements, as its manifest pins them.
  # shellcheck disable=SC2207 # one word per requirement
  requirements+=($(in_chroot "$VENV/bin/python" -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["requirements"]))' "$ha_dir/components/mqtt/manifest.json"))
  in_chroot "$VENV/bin/pip" install -q -c "$ha_dir/package_constraints.txt" "${requirements[@]}"
  echo "$VENV_KEY" >"$ROOTFS$VENV/$MARKER"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if ! rootfs_ready; then
  if [ -e "$ROOTFS/$MARKER" ]; then
    echo "== $ROOTFS is stale or broken (wanted: $ROOTFS_KEY): rebuilding it"
  fi
  build_rootfs
  rootfs_ready || { echo "ha-envs: the new root filesystem does not work" >&2; exit 1; }
fi
if ! venv_ready; then
  if [ -e "$ROOTFS$VENV/$MARKER" ]; then
    echo "== $VENV is stale or broken (wanted: $VENV_KEY): rebuilding it"
  fi
  rm -f "$ROOTFS$VENV/$MARKER"
  build_venv
  venv_ready || { echo "ha-envs: the new venv $VENV does not work" >&2; exit 1; }
fi
