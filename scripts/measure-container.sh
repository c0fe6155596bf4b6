#!/usr/bin/env bash
# The figures README.md gives for the container image: its size (no model inside) and the time
# from `podman run` to `online` on smokewatch/available, with a model file mounted.
#
#   bash scripts/measure-container.sh MODEL.onnx [RUNS]      (default 5 runs; needs root)
#
# Uses the image scripts/container-image.sh builds (it is run first), a Mosquitto of its own
# on a free loopback port, and the image's Docker route (a config mounted at
# /config/smokewatch.yaml, two cameras). Prints each run and the median.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$(realpath "${1:?usage: measure-container.sh MODEL.onnx [RUNS]}")
RUNS=${2:-5}

bash scripts/container-image.sh
eval "$(bash scripts/container-image.sh env)"
work=$(mktemp -d /tmp/smokewatch-measure.XXXXXX)
name=smokewatch-measure-$$
port=$(.venv/bin/python -c 'from tests.detector.broker import free_port; print(free_port())')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
broker=$!
cleanup() {
  podman rm --force "$name" >/dev/null 2>&1 || true
  kill "$broker" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
printf 'mqtt: {host: 127.0.0.1, port: %s}\nmodel: {path: /models/model.onnx}\n' "$port" \
  >"$work/smokewatch.yaml"
printf 'cameras:\n  backyard: {}\n  ridge: {scene: horizon}\n' >>"$work/smokewatch.yaml"
mkdir "$work/data"

echo "image size: $(podman image inspect --format '{{.Size}}' "$SMOKEWATCH_CONTAINER_IMAGE") bytes"
times=()
for run in $(seq "$RUNS"); do
  rm -f "$work/subscribed"
  # Subscribed before the start; prints the time of the first live `online`.
  .venv/bin/python - "$port" "$work/subscribed" >"$work/online" <<'EOF' &
import sys, time
from pathlib import Path
import paho.mqtt.client as mqtt
seen = []
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.on_message = lambda c, u, m: m.payload == b"online" and not m.retain and seen.append(time.time())
client.on_subscribe = lambda *_: Path(sys.argv[2]).touch()
client.connect("127.0.0.1", int(sys.argv[1]))
client.subscribe("smokewatch/available", 1)
client.loop_start()
while not seen:
    time.sleep(0.005)
print(f"{seen[0]:.3f}")
EOF
  waiter=$!
  while [ ! -e "$work/subscribed" ]; do sleep 0.02; done
  start=$(date +%s.%N)
  podman run -d --name "$name" --network=host --health-interval=disable \
    -v "$work/smokewatch.yaml:/config/smokewatch.yaml:ro" -v "$work/data:/data" \
    -v "$MODEL:/models/model.onnx:ro" "$SMOKEWATCH_CONTAINER_IMAGE" >/dev/null 2>&1
  wait "$waiter"
  took=$(python3 -c "print(f'{$(cat "$work/online") - $start:.2f}')")
  echo "run $run: online after $took s"
  times+=("$took")
  podman stop --time 30 "$name" >/dev/null 2>&1
  podman rm "$name" >/dev/null 2>&1
done
echo "median: $(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p") s" \
  "($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
