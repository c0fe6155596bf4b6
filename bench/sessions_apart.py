"""Bare `session.run` of several models or session options, each in a process of its own.

    python bench/sessions_apart.py --rounds 12 --runs 3 [--cold] \\
        fp32=../shared/data/models/yolo11s-untrained-1024.onnx \\
        int8=/tmp/y11s-int8.onnx \\
        "int8 no spin=/tmp/y11s-int8.onnx?session.intra_op.allow_spinning=0" \\
        "int8 pinned=/tmp/y11s-int8.onnx?session.intra_op_thread_affinities=2&pin_main=1"

Each NAME=PATH[?KEY=VALUE&...] is one session (KEY: an onnxruntime session config entry;
`pin_main=1` also pins the calling thread to CPU 0) in a spawned process, so sessions never
share a process's thread pools or caches. The parent asks each in turn for `--runs` runs, the
order rotated every round. Prints each one's median (min–max), its ratio to the first's median,
and the median of its per-round ratios to the second (the pairing that cancels the machine's
drift). `--cold` evicts the caches and pauses before each run, as `smokewatch bench --cold`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def worker(conn: Connection, path: str, entries: dict[str, str], cold: bool) -> None:
    """One session: time `n` runs each time the parent asks."""
    import numpy as np
    import onnxruntime as ort

    from detector.bench import Chill

    if entries.pop("pin_main", None) == "1":
        os.sched_setaffinity(0, {0})
    options = ort.SessionOptions()
    options.enable_mem_pattern = False
    for key, value in entries.items():
        options.add_session_config_entry(key, value)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in meta.shape]
    feed = {meta.name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    for _ in range(3):
        session.run(None, feed)
    chill = Chill(cold)
    conn.send("ready")
    while (runs := conn.recv()) is not None:
        times = []
        for _ in range(runs):
            chill()
            start = time.perf_counter()
            session.run(None, feed)
            times.append((time.perf_counter() - start) * 1000)
        conn.send(times)


def parse(spec: str) -> tuple[str, str, dict[str, str]]:
    """NAME=PATH[?KEY=VALUE&...]"""
    name, _, rest = spec.partition("=")
    path, _, query = rest.partition("?")
    entries = dict(item.split("=", 1) for item in query.split("&") if item)
    return name, path, entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sessions", nargs="+", help="NAME=PATH[?KEY=VALUE&...]")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3, help="runs per session per round")
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    specs = [parse(spec) for spec in args.sessions]
    links = []
    for _name, path, entries in specs:
        parent, child = context.Pipe()
        process = context.Process(target=worker, args=(child, path, entries, args.cold))
        process.start()
        links.append((parent, process))
    for parent, _process in links:
        parent.recv()
    names = [name for name, _path, _entries in specs]
    times: dict[str, list[float]] = {name: [] for name in names}
    paired: dict[str, list[float]] = {name: [] for name in names}
    for number in range(args.rounds):
        order = list(range(len(specs)))
        order = order[number % len(order) :] + order[: number % len(order)]
        got = {}
        for index in order:
            links[index][0].send(args.runs)
            got[names[index]] = links[index][0].recv()
            times[names[index]] += got[names[index]]
        second = statistics.median(got[names[min(1, len(names) - 1)]])
        for name in names:
            paired[name].append(statistics.median(got[name]) / second)
    for parent, process in links:
        parent.send(None)
        process.join()
    first = statistics.median(times[names[0]])
    for name in names:
        values = times[name]
        print(
            f"{name:<24} {statistics.median(values):8.1f} ms ({min(values):.1f}–{max(values):.1f})"
            f"  ÷ {names[0]} {statistics.median(values) / first:.3f}"
            f"  per round ÷ {names[min(1, len(names) - 1)]} {statistics.median(paired[name]):.3f}"
        )


if __name__ == "__main__":
    main()
