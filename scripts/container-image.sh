#!/usr/bin/env bash
# Build (once per recipe) the container images the container tests run (tests/container), in a
# cache outside the checkout:
#
#   $SMOKEWATCH_HA_CACHE (default /var/cache/smokewatch-ci)/container/
#     containers.conf, storage.conf   podman and buildah settings of this cache, named by
#                                     CONTAINERS_CONF / CONTAINERS_STORAGE_CONF (/etc untouched):
#                                     runc (crun fails here: cgroups in hybrid mode), no default
#                                     ulimits (setrlimit is refused), images in storage/ below
#     storage/                        the image store
#   images in it:
#     localhost/smokewatch-test-base:trixie       Debian trixie from Debian's packages
#                                                 (mmdebstrap minbase, trimmed as Debian's
#                                                 -slim images are), the Dockerfile's BUILD_FROM
#     localhost/smokewatch:test                   addon/Dockerfile built on it (buildah)
#     localhost/smokewatch-test-mosquitto:trixie  Debian's mosquitto on the same base: the
#                                                 compose test's broker (no registry here)
#
#   scripts/container-image.sh          ensure they are built; `env` prints the variables the
#                                       tests need (scripts/test.sh sources them)
#
# Trust nothing already there: the marker, written last, holds a hash of the recipe (this
# script's build function, the base's packages, everything in addon/ the Dockerfile uses)
# and the ids of the images built; before reuse the hash must match, the images must exist
# with those ids and the image must run. Otherwise everything is built again from scratch.
# Builds hold a lock, so two runs never build at once. Needs root (buildah's chroot isolation).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${SMOKEWATCH_HA_CACHE:-/var/cache/smokewatch-ci}
DIR=$CACHE/container
IMAGE=localhost/smokewatch:test
BASE=localhost/smokewatch-test-base:trixie
MOSQUITTO=localhost/smokewatch-test-mosquitto:trixie
MARKER=$DIR/.smokewatch-ready
MIRROR=http://deb.debian.org/debian
# What debian:trixie-slim leaves out (docs, man pages, translations).
SLIM=(
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/groff/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)
# The CA bundle pip needs where TLS to the registries is re-signed by a local authority; mounted
# for the build only (the Dockerfile reads /run/host-ca.crt if present), never in the image.
HOST_CA=/etc/ssl/certs/ca-certificates.crt

if [ "$(id -u)" != 0 ]; then
  echo "container-image: needs root (buildah, podman); try sudo" >&2
  exit 1
fi

# Runtime state of podman for this image store, on tmpfs (cleared at reboot) and kept apart
# from any other store on the machine.
RUN_DIR=/run/smokewatch-containers/$(echo "$DIR" | sha256sum | cut -c1-12)

write_settings() {
  mkdir -p "$DIR/storage" "$RUN_DIR"
  cat >"$DIR/containers.conf" <<EOF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
tmp_dir = "$RUN_DIR/libpod"
EOF
  cat >"$DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$RUN_DIR/storage"
EOF
}

print_env() {
  echo "export CONTAINERS_CONF=$DIR/containers.conf"
  echo "export CONTAINERS_STORAGE_CONF=$DIR/storage.conf"
  echo "export SMOKEWATCH_CONTAINER_IMAGE=$IMAGE"
  echo "export SMOKEWATCH_CONTAINER_MOSQUITTO=$MOSQUITTO"
}

build() {
  echo "== building the container images in $DIR (once per recipe)"
  for tool in mmdebstrap buildah podman runc; do
    command -v "$tool" >/dev/null ||
      { echo "container-image: $tool is missing (apt-get install $tool)" >&2; exit 1; }
  done
  local podman=(env CONTAINERS_CONF="$DIR/containers.conf" CONTAINERS_STORAGE_CONF="$DIR/storage.conf")
  # An earlier recipe's images go first: the store holds only what the marker names.
  "${podman[@]}" podman rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$DIR"/.build.* # what an interrupted build left
  local scratch
  scratch=$(mktemp -d "$DIR/.build.XXXXXX")
  mmdebstrap --quiet --variant=minbase "${SLIM[@]}" trixie "$scratch/base.tar" "$MIRROR"
  "${podman[@]}" podman import --quiet "$scratch/base.tar" "$BASE" >/dev/null
  rm -f "$scratch/base.tar"
  local ca=()
  [ ! -f "$HOST_CA" ] || ca=(-v "$HOST_CA:/run/host-ca.crt:ro")
  # --format docker keeps the HEALTHCHECK (the OCI image format has none).
  "${podman[@]}" buildah bud --quiet --isolation chroot --format docker "${ca[@]}" \
    --build-arg BUILD_FROM="$BASE" -t "$IMAGE" addon >/dev/null
  # Debian's Mosquitto laid out as the eclipse-mosquitto image that container/compose.yaml
  # names (its config, data and log folders under /mosquitto).
  cat >"$scratch/Containerfile" <<EOF
FROM $BASE
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /mosquitto/config /mosquitto/data /mosquitto/log \
    && chown -R mosquitto: /mosquitto
ENTRYPOINT ["/usr/sbin/mosquitto"]
CMD ["-c", "/mosquitto/config/mosquitto.conf"]
EOF
  "${podman[@]}" buildah bud --quiet --isolation chroot --format docker -t "$MOSQUITTO" \
    "$scratch" >/dev/null
  rm -rf "$scratch"
  { echo "$KEY"; image_ids; } >"$MARKER.new"
  mv "$MARKER.new" "$MARKER"
}

image_ids() {
  env CONTAINERS_CONF="$DIR/containers.conf" CONTAINERS_STORAGE_CONF="$DIR/storage.conf" \
    podman image inspect --format '{{.Id}}' "$BASE" "$IMAGE" "$MOSQUITTO" 2>/dev/null
}

# Why the images cannot be reused, or nothing when they can.
problem() {
  [ -e "$MARKER" ] || { echo "not built"; return; }
  [ "$(head -n 1 "$MARKER")" = "$KEY" ] || { echo "built by another recipe"; return; }
  local ids
  ids=$(image_ids) || { echo "an image is missing"; return; }
  [ "$ids" = "$(tail -n +2 "$MARKER")" ] || { echo "an image changed since it was built"; return; }
  env CONTAINERS_CONF="$DIR/containers.conf" CONTAINERS_STORAGE_CONF="$DIR/storage.conf" \
    podman run --rm --network=none --health-interval=disable "$IMAGE" --version 2>/dev/null |
    grep -q '^smokewatch ' || echo "the image does not run"
}

recipe_hash() { sha256sum | cut -c1-16; }
KEY="trixie $MIRROR $(
  { declare -f build write_settings; printf '%s\n' "${SLIM[@]}"
    cat addon/Dockerfile addon/requirements.txt addon/wheels/*.whl; } | recipe_hash)"

if [ "${1:-}" = env ]; then
  print_env
  exit 0
fi
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
write_settings
why=$(problem)
if [ -n "$why" ]; then
  [ "$why" = "not built" ] || echo "== the container images: $why: rebuilding them"
  rm -f "$MARKER"
  build
  why=$(problem)
  [ -z "$why" ] || { echo "container-image: the new image does not work: $why" >&2; exit 1; }
fi
