"""`smokewatch bench --vs`: two models, each in a process of its own, timed in interleaved rounds.

Two onnxruntime sessions in one process share its allocator, its thread pools' spinning
threads and the caches the other model just filled: timed that way, run by run, the int8
model's gain came out 0.04–0.08 smaller than when each model ran alone. Here each model runs
in a worker process of its own (spawned: a forked onnxruntime session is not safe), with the
same configuration and frame; the parent asks them in turn for a round of runs, changing
which goes first every round, so both see the same machine load without sharing a process.
Each run of the whole path is preceded by a bare `session.run` of the same model on a ready
tensor, so "B's whole path ÷ A's bare run" (int8 SmokeWatch against a bare fp32 model) is
measured within one run, as `smokewatch bench` measures one model's path against its bare run.
"""

from __future__ import annotations

import math
import multiprocessing
import statistics
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tqdm import tqdm

from detector.config import Config
from detector.errors import SmokeWatchError
from detector.frames import restamped


@dataclass
class PairTimes:
    """Per-frame times (ms) of both models, and each round's ratio B / A."""

    a_ms: list[float]
    b_ms: list[float]
    round_ratios: list[float]
    names: tuple[str, str]
    sizes: tuple[tuple[int, int], tuple[int, int]]
    a_bare_ms: list[float]
    b_bare_ms: list[float]

    @property
    def ratio(self) -> float:
        """B's median ÷ A's median."""
        return statistics.median(self.b_ms) / statistics.median(self.a_ms)

    def to_json(self) -> dict[str, Any]:
        """Medians, spreads (min–max) and the ratio."""
        return {
            "a_ms": statistics.median(self.a_ms),
            "b_ms": statistics.median(self.b_ms),
            "a_range_ms": (min(self.a_ms), max(self.a_ms)),
            "b_range_ms": (min(self.b_ms), max(self.b_ms)),
            "ratio": self.ratio,
            "a_bare_ms": statistics.median(self.a_bare_ms),
            "b_bare_ms": statistics.median(self.b_bare_ms),
            "a_bare_range_ms": (min(self.a_bare_ms), max(self.a_bare_ms)),
            "b_bare_range_ms": (min(self.b_bare_ms), max(self.b_bare_ms)),
            # B's whole path ÷ A's bare session.run (e.g. int8 SmokeWatch ÷ a bare fp32 model).
            "b_path_vs_a_bare": statistics.median(self.b_ms) / statistics.median(self.a_bare_ms),
            "round_ratio_range": (min(self.round_ratios), max(self.round_ratios)),
            "rounds": len(self.round_ratios),
        }


def _worker(
    conn: Connection,
    config: Config,
    override: str | None,
    camera: str,
    data: bytes,
    warmup: int,
    cold: bool,
) -> None:
    """One model's process: load, warm up, then time a bare run and the whole path, a round
    at a time (each run cold, after `Chill`, when `cold`)."""
    from detector.assembly import build_pipeline, load_model
    from detector.bench import Chill, time_one
    from detector.frames import letterbox_into

    model = load_model(config.model, override=override, progress=False)
    pipeline = build_pipeline(config, model, [camera])
    for index in range(warmup):
        pipeline.process(camera, restamped(data, index), time.time())
    ready = model.new_input()
    letterbox_into(pipeline.decode(data)[0], ready, bgr=True)
    conn.send((model.name, (model.input_w, model.input_h)))
    index = warmup
    chill = Chill(cold)
    while (runs := _next_round(conn)) is not None:
        times, bare = [], []
        for _ in range(runs):
            bare_ms, whole_ms, _result = time_one(pipeline, ready, camera, data, index, chill)
            bare.append(bare_ms)
            times.append(whole_ms)
            index += 1
        conn.send((times, bare))
    conn.close()


def _next_round(conn: Connection) -> int | None:
    """Runs asked for by the parent; None when it is done (or gone: the other model failed)."""
    try:
        runs: int | None = conn.recv()
    except EOFError:
        return None
    return runs


def measure_pair_apart(
    config: Config,
    overrides: tuple[str | None, str | None],
    camera: str,
    data: bytes,
    runs: int,
    warmup: int,
    *,
    round_runs: int = 5,
    progress: bool = True,
    cold: bool = False,
) -> PairTimes:
    """The whole per-frame path of two models, each in its own process, in rounds of
    `round_runs` runs; `runs` per model in all (rounded up to whole rounds)."""
    context = multiprocessing.get_context("spawn")
    links: list[Connection] = []
    workers = []
    try:
        for override in overrides:
            parent, child = context.Pipe()
            worker = context.Process(
                target=_worker,
                args=(child, config, override, camera, data, warmup, cold),
                daemon=True,
            )
            worker.start()
            child.close()
            links.append(parent)
            workers.append(worker)
        try:
            first, second = (link.recv() for link in links)
        except EOFError:
            raise SmokeWatchError(
                "bench --vs: a model's process stopped before it was ready (its error is above)"
            ) from None
        times: list[list[float]] = [[], []]
        bare: list[list[float]] = [[], []]
        ratios: list[float] = []
        rounds = max(2, math.ceil(runs / round_runs))
        for number in tqdm(range(rounds), desc="bench", unit="round", disable=not progress):
            got: list[list[float]] = [[], []]
            for slot in (0, 1) if number % 2 == 0 else (1, 0):
                links[slot].send(round_runs)
                got[slot], bare_runs = links[slot].recv()
                times[slot] += got[slot]
                bare[slot] += bare_runs
            ratios.append(statistics.median(got[1]) / statistics.median(got[0]))
        for link in links:
            link.send(None)
        return PairTimes(
            times[0],
            times[1],
            ratios,
            (first[0], second[0]),
            (first[1], second[1]),
            bare[0],
            bare[1],
        )
    finally:
        for link in links:
            link.close()
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
