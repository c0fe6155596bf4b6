#!/usr/bin/env bash
# The one test command: lint, type-check and test the detector/bridge (Python >= 3.11 venv),
# the zone card, then the Home Assistant integration (scripts/test-ha.sh: HA on Python 3.14
# in a chroot of its own).
#
#   bash scripts/test.sh [PYTEST ARGS...]     (the args go to the detector's pytest)
#
# Environment:
#   SMOKEWATCH_HA_CACHE=DIR     where the HA environments are built and kept (default
#                               /var/cache/smokewatch-ci); a brand-new directory proves that
#                               nothing depends on an earlier run: SMOKEWATCH_HA_CACHE=$(mktemp -d)
#   SMOKEWATCH_SKIP_HA=1        no Home Assistant part; SMOKEWATCH_SKIP_E2E=1 no end-to-end part
#   SMOKEWATCH_SKIP_CONTAINER=1 no container part (the add-on's image built and run in podman)
#   SMOKEWATCH_REQUIRE_ALL=1    a skipped test is a failure (CI: .ci/run sets it)
#   SMOKEWATCH_TEST_WORKERS=N   pytest-xdist workers for the detector suite (default 4: its
#                               tests mostly wait on processes and brokers, so 4 on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
stage_started=$SECONDS
stage_name=""
timings=()
stage() {
  [ -z "$stage_name" ] || timings+=("$(printf '%4ss  %s' $((SECONDS - stage_started)) "$stage_name")")
  stage_name=$1
  stage_started=$SECONDS
  [ -z "$1" ] || echo "== $1"
}
summary() {
  stage ""
  echo "== stage times (wall, seconds)"
  printf '%s\n' "${timings[@]}"
  echo "   total $((SECONDS - started)) s"
}
trap summary EXIT

PYTEST_PLUGINS=()
if [ "${SMOKEWATCH_REQUIRE_ALL:-0}" = "1" ]; then
  PYTEST_PLUGINS=(-p tests.require_all)
fi
export SMOKEWATCH_REQUIRE_ALL=${SMOKEWATCH_REQUIRE_ALL:-0}

# The Home Assistant environments (a root filesystem and three venvs) build in the background
# while the detector's own tests run: the build is mostly downloads and unpacking.
ha_build_pid=""
ha_build_log=$(mktemp /tmp/smokewatch-ha-build.XXXXXX)
if [ "${SMOKEWATCH_SKIP_HA:-0}" != "1" ] && [ "$(id -u)" = 0 ]; then
  bash scripts/test-ha.sh build >"$ha_build_log" 2>&1 &
  ha_build_pid=$!
fi
# So do the container images (the add-on's Dockerfile on a Debian base, built by buildah into
# a podman store in the same cache): scripts/container-image.sh, reused while its recipe holds.
container_build_pid=""
container_build_log=$(mktemp /tmp/smokewatch-container-build.XXXXXX)
container_missing=""
for tool in buildah podman runc podman-compose mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || container_missing+=" $tool"
done
if [ "${SMOKEWATCH_SKIP_CONTAINER:-0}" != "1" ] && [ "$(id -u)" = 0 ] && [ -z "$container_missing" ]; then
  bash scripts/container-image.sh >"$container_build_log" 2>&1 &
  container_build_pid=$!
fi

stage "detector venv (.venv) and Triton venv (.venv-triton)"
# A real Triton server for tests/detector/test_triton.py: PyPI's nvidia-pytriton ships
# tritonserver, whose Python backend loads the system libpython, so its venv is built from the
# system Python 3 (Debian's /usr/bin/python3; apt: python3-venv libpython3.11) and kept apart
# from .venv (pytriton pins its own numpy and protobuf). Built once, then reused.
TRITON_PY=${SMOKEWATCH_TRITON_PYTHON:-/usr/bin/python3}
triton_pid=""
if [ ! -x .venv-triton/bin/python ] && [ -x "$TRITON_PY" ]; then
  (
    rm -rf .venv-triton.tmp
    if "$TRITON_PY" -m venv .venv-triton.tmp &&
      .venv-triton.tmp/bin/pip install -q 'nvidia-pytriton==0.7.0' 'onnxruntime>=1.17'; then
      mv .venv-triton.tmp .venv-triton
    else
      rm -rf .venv-triton.tmp
      echo "warning: .venv-triton could not be built: the Triton tests will skip" >&2
    fi
  ) &
  triton_pid=$!
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
.venv/bin/pip install -q -e '.[test]'
[ -z "$triton_pid" ] || wait "$triton_pid"

stage "ruff"
.venv/bin/ruff check detector tests bench custom_components scripts
.venv/bin/ruff format --check detector tests bench custom_components scripts
stage "mypy"
.venv/bin/mypy
stage "pytest (detector, bridge)"
.venv/bin/python -m pytest -q -n "${SMOKEWATCH_TEST_WORKERS:-4}" --dist loadgroup \
  "${PYTEST_PLUGINS[@]}" tests/detector "$@"

stage "zone card (npm: typecheck, unit tests, the committed bundle is up to date)"
# Skipped only where Node is absent (a detector-only machine); CI installs it (.ci/run).
if command -v npm >/dev/null 2>&1; then
  (cd card && npm ci --no-audit --no-fund --loglevel=error && npm test)
  if [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    stage "zone card in headless Chromium"
    (cd card && npm run test:browser)
  elif [ "$SMOKEWATCH_REQUIRE_ALL" = "1" ]; then
    echo "no Chromium at ${CHROMIUM:-/usr/bin/chromium}, and SMOKEWATCH_REQUIRE_ALL=1" >&2
    exit 1
  else
    echo "zone card browser test skipped: no Chromium at ${CHROMIUM:-/usr/bin/chromium} (apt-get install chromium)"
  fi
elif [ "$SMOKEWATCH_REQUIRE_ALL" = "1" ]; then
  echo "npm not found, and SMOKEWATCH_REQUIRE_ALL=1 (apt-get install nodejs npm)" >&2
  exit 1
else
  echo "zone card tests skipped: npm not found (apt-get install nodejs npm)"
fi

if [ "${SMOKEWATCH_SKIP_HA:-0}" != "1" ]; then
  if [ -n "$ha_build_pid" ]; then
    stage "Home Assistant environments (built in the background since the start)"
    build_status=0
    wait "$ha_build_pid" || build_status=$?
    cat "$ha_build_log"
    rm -f "$ha_build_log"
    [ "$build_status" = 0 ] || { echo "test: the Home Assistant environments did not build" >&2; exit 1; }
  fi
  stage "Home Assistant integration"
  bash scripts/test-ha.sh "${PYTEST_PLUGINS[@]}"
elif [ "$SMOKEWATCH_REQUIRE_ALL" = "1" ]; then
  echo "SMOKEWATCH_SKIP_HA=1 and SMOKEWATCH_REQUIRE_ALL=1 contradict each other" >&2
  exit 1
fi

if [ -n "$container_build_pid" ]; then
  stage "container images (built in the background since the start)"
  build_status=0
  wait "$container_build_pid" || build_status=$?
  cat "$container_build_log"
  rm -f "$container_build_log"
  [ "$build_status" = 0 ] || { echo "test: the container images did not build" >&2; exit 1; }
  stage "container: the add-on and the compose example in podman, Home Assistant reading them"
  eval "$(bash scripts/container-image.sh env)"
  # Home Assistant's newest tested release, from the chroot scripts/test-ha.sh built.
  ha_newest=$(sed -n 's/^HA_NEWEST=\([^ ]*\).*/\1/p' scripts/test-ha.sh)
  ha_command=""
  [ "${SMOKEWATCH_SKIP_HA:-0}" = "1" ] ||
    ha_command="bash $PWD/scripts/ha-chroot.sh /opt/smokewatch-ha/ha-$ha_newest/bin/python"
  SMOKEWATCH_E2E_HA_COMMAND=$ha_command .venv/bin/python -m pytest -q -p no:cacheprovider \
    "${PYTEST_PLUGINS[@]}" tests/container
else
  rm -f "$container_build_log"
  why="SMOKEWATCH_SKIP_CONTAINER=1"
  [ "${SMOKEWATCH_SKIP_CONTAINER:-0}" = "1" ] || why="not root"
  [ "$(id -u)" != 0 ] || [ -z "$container_missing" ] ||
    why="missing:$container_missing (apt-get install$container_missing)"
  if [ "$SMOKEWATCH_REQUIRE_ALL" = "1" ]; then
    echo "the container part did not run ($why), and SMOKEWATCH_REQUIRE_ALL=1" >&2
    exit 1
  fi
  echo "container tests skipped: $why"
fi
