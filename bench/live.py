"""Live benchmarks against a real Mosquitto and the real `smokewatch run` process.

    python bench/live.py latency  --model M [--resolution 1920x1080 | --frame F] [--frames 20]
                                  [--latency-cameras 1]
    python bench/live.py overload --model M --cameras 6 --load 3 --duration 600

`latency`: one frame at a time, idle machine: time from publishing the snapshot to receiving
its scored state (the smoke attributes), against the model time the service reports. With
--latency-cameras N the service has N cameras and the frames go to each in turn (still one in
flight), to compare the latency of one camera with several's.
`overload`: N cameras whose snapshots together offer LOAD times what the detector can score
(its capacity measured first with the same frame), for DURATION seconds: latency and staleness
percentiles, per-camera scored/dropped counts, scoring gaps, RSS over time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detector.bench import generated_frame  # noqa: E402
from detector.contract import parse_iso  # noqa: E402
from detector.frames import restamped  # noqa: E402
from tests.detector.broker import Broker  # noqa: E402

PREFIX = "smokewatch"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Listener:
    """Records when each camera's scored state arrives, with the frame time it refers to."""

    def __init__(self, port: int) -> None:
        self.scored: list[tuple[str, float, float]] = []  # camera, received, frame time
        self.stats: dict[str, Any] = {}
        self.cond = threading.Condition()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [
                (f"{PREFIX}/+/smoke/attributes", 0),
                (f"{PREFIX}/stats", 0),
                (f"{PREFIX}/available", 0),
            ]
        )
        self.client.on_message = self._message
        self.online = threading.Event()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        if message.topic.endswith("/available"):
            if message.payload == b"online":
                self.online.set()
            return
        data = json.loads(message.payload)
        with self.cond:
            if message.topic.endswith("/stats"):
                self.stats = data
            elif not message.retain:
                camera = message.topic.split("/")[1]
                self.scored.append((camera, now, parse_iso(data["frame_time"])))
            self.cond.notify_all()


def start_service(
    port: int, model: str, cameras: dict[str, float], workdir: Path
) -> subprocess.Popen[bytes]:
    """`smokewatch run` with one entry per camera (id: interval)."""
    lines = [
        f"model: {{path: {Path(model).resolve() if Path(model).exists() else model}}}",
        f"mqtt: {{host: 127.0.0.1, port: {port}}}",
        "detection: {stale_after: 100, offline_after: 1000, nb_frames: 6}",
        "cameras:",
        *(f"  {camera}: {{interval: {interval}}}" for camera, interval in cameras.items()),
    ]
    config = workdir / "bench.yaml"
    config.write_text("\n".join(lines) + "\n")
    log = (workdir / "service.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "detector", "run", "-c", str(config), "--stats-interval", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def rss_mib(pid: int) -> float:
    """Resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def latency(args: argparse.Namespace, port: int, workdir: Path) -> dict[str, Any]:
    """Publish → scored state at idle, one frame at a time."""
    if args.frame is not None:
        frame = Path(args.frame).read_bytes()
        image = cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR)
        height, width = image.shape[:2]
    else:
        width, height = (int(v) for v in args.resolution.split("x"))
        frame = generated_frame(width, height)
    cameras = [f"cam{i}" for i in range(args.latency_cameras)]
    service = start_service(port, args.model, dict.fromkeys(cameras, 0.01), workdir)
    listener = Listener(port)
    try:
        if not listener.online.wait(120):
            raise SystemExit("the service did not come online; see " + str(workdir / "service.log"))
        time.sleep(2)
        publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()
        samples, intake = [], []
        # Every camera is warmed up (its first frame sets up its state), not only the first.
        warmup = args.warmup * len(cameras)
        for index in range(warmup + args.frames):
            count = len(listener.scored)
            camera = cameras[index % len(cameras)]
            sent = time.time()
            # New bytes each time (restamped): the same bytes again are a frozen camera's.
            publisher.publish(f"{PREFIX}/{camera}/image", restamped(frame, index), qos=0)
            with listener.cond:
                if not listener.cond.wait_for(lambda c=count: len(listener.scored) > c, 60):
                    log = (workdir / "service.log").read_text()[-2000:]
                    raise SystemExit(f"no scored state within 60 s; service log:\n{log}")
            _camera, received, frame_time = listener.scored[-1]
            samples.append((received - sent) * 1000)
            # frame_time is when the service took the snapshot in (its wall clock, this box's).
            intake.append((frame_time - sent) * 1000)
            time.sleep(0.3)
        samples, intake = samples[warmup:], intake[warmup:]
        time.sleep(2.5)
        model_ms = listener.stats.get("inference_ms")
        publisher.loop_stop()
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    p50 = statistics.median(samples)
    return {
        "frame": f"{width}x{height}",
        "cameras": len(cameras),
        "frames": len(samples),
        "latency_ms_p50": round(p50, 1),
        "latency_ms_p90": round(percentile(samples, 90), 1),
        "latency_ms_range": [round(min(samples), 1), round(max(samples), 1)],
        # Publish → the service's intake (broker, client thread), and intake → scored state.
        "intake_ms_p50": round(statistics.median(intake), 1),
        "scoring_ms_p50": round(
            statistics.median(s - i for s, i in zip(samples, intake, strict=True)), 1
        ),
        "service_model_ms_median": model_ms,
        "overhead_ms_p50": None if model_ms is None else round(p50 - model_ms, 1),
    }


def overload(args: argparse.Namespace, port: int, workdir: Path) -> dict[str, Any]:
    """N cameras offering LOAD × capacity for DURATION seconds."""
    width, height = (int(v) for v in args.resolution.split("x"))
    frame = generated_frame(width, height)
    # Capacity: per-frame time measured by the bench command on the same frame and model.
    per_frame_ms = args.per_frame_ms
    interval = args.cameras * per_frame_ms / 1000  # each camera's fair share at 1x
    cameras = {f"cam{i}": interval for i in range(args.cameras)}
    service = start_service(port, args.model, cameras, workdir)
    listener = Listener(port)
    stop = threading.Event()
    rss: list[tuple[float, float]] = []
    try:
        if not listener.online.wait(120):
            raise SystemExit("the service did not come online")
        time.sleep(2)
        start = time.time()
        period = interval / args.load  # each camera publishes LOAD times per interval

        def publish(camera: str, offset: float) -> None:
            client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
            client.connect("127.0.0.1", port)
            client.loop_start()
            next_at = time.time() + offset
            while not stop.is_set():
                time.sleep(max(0.0, next_at - time.time()))
                client.publish(f"{PREFIX}/{camera}/image", frame, qos=0)
                next_at += period
            client.loop_stop()

        threads = [
            threading.Thread(target=publish, args=(camera, i * period / len(cameras)), daemon=True)
            for i, camera in enumerate(cameras)
        ]
        for thread in threads:
            thread.start()
        while time.time() - start < args.duration:
            rss.append((time.time() - start, rss_mib(service.pid)))
            time.sleep(5)
        stop.set()
        for thread in threads:
            thread.join(10)
        time.sleep(3)
        stats = listener.stats
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    scored = [s for s in listener.scored if s[1] - start > 10]  # skip the first 10 s
    staleness = [(received - frame_time) * 1000 for _, received, frame_time in scored]
    gaps: dict[str, float] = {}
    for camera in cameras:
        times = [received for cam, received, _ in scored if cam == camera]
        gaps[camera] = max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))
    settled = [value for t, value in rss if t >= 30] or [value for _, value in rss]
    return {
        "cameras": args.cameras,
        "load": args.load,
        "duration_s": args.duration,
        "interval_s": round(interval, 3),
        "per_frame_ms": per_frame_ms,
        "scored_per_camera": {c: sum(1 for s in scored if s[0] == c) for c in cameras},
        "dropped_per_camera": {c: v["dropped"] for c, v in stats.get("cameras", {}).items()},
        "max_gap_intervals": round(max(gaps.values()) / interval, 2),
        "staleness_ms_p50": round(percentile(staleness, 50), 1),
        "staleness_ms_p95": round(percentile(staleness, 95), 1),
        "staleness_bound_ms": round(interval * 1000 + per_frame_ms, 1),
        "scored_per_second": round(len(scored) / max(1.0, args.duration - 10), 3),
        "rss_mib_first_settled": round(settled[0], 1),
        "rss_mib_last": round(settled[-1], 1),
        "rss_growth_pct": round(100 * (settled[-1] - settled[0]) / settled[0], 2),
    }


def main() -> int:
    """Parse arguments, start a Mosquitto, run one benchmark, print JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["latency", "overload"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--resolution", default="1920x1080")
    parser.add_argument("--frame", help="latency: this JPEG instead of a generated frame")
    parser.add_argument("--latency-cameras", type=int, default=1)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--load", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--per-frame-ms", type=float, help="whole-path ms from `smokewatch bench`")
    args = parser.parse_args()
    if shutil.which("mosquitto") is None and not os.path.exists("/usr/sbin/mosquitto"):
        raise SystemExit("these benchmarks need Mosquitto (apt-get install mosquitto)")
    broker = Broker(kind="mosquitto").start()
    try:
        with tempfile.TemporaryDirectory(prefix="smokewatch-bench-") as scratch:
            if args.kind == "latency":
                result = latency(args, broker.port, Path(scratch))
            else:
                if args.per_frame_ms is None:
                    raise SystemExit("--per-frame-ms is required (run smokewatch bench first)")
                result = overload(args, broker.port, Path(scratch))
    finally:
        broker.close()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
