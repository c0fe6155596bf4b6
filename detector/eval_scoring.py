"""`smokewatch eval`, the model pass: every frame of every sequence once through the live pipeline.

Each sequence runs on a fresh camera (empty vote history, empty alert window), exactly as `replay`
builds it (`assembly.build_pipeline`), with the configuration's camera: its scene, width cap,
masks and guard apply. The boxes left for the vote are kept per frame, so that every vote setting
of a grid replays only the vote over them (detector/evaluate.py). Sequences run in worker
processes, each loading the model once.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import multiprocessing
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from detector.assembly import build_pipeline, load_model
from detector.config import Config
from detector.errors import FrameError, SmokeWatchError
from detector.eval_dataset import Sequence, describe_label
from detector.model import ModelBackend

Boxes = NDArray[np.float32]


@dataclass
class ScoredFrame:
    """What the model pass kept of one frame: its time, raw and masked boxes, or its error.

    `paused`: a night frame the camera does not score; `repeat`: the previous frame's bytes
    again (a frozen camera). Neither reaches the vote, as live.
    """

    name: str
    time: float
    raw_boxes: Boxes
    boxes: Boxes
    error: str | None = None
    paused: bool = False
    repeat: bool = False

    @property
    def voted(self) -> bool:
        """True when the frame reached the vote (readable, not paused, not a repeat)."""
        return self.error is None and not self.paused and not self.repeat


@dataclass
class ScoredSequence:
    """A sequence after the model pass (independent of the vote settings)."""

    name: str
    has_fire: bool
    fire_time: float | None
    frame_seconds: float
    frames: list[ScoredFrame]
    label: dict[str, Any]
    pipeline_scores: list[float] = field(default_factory=list)

    @property
    def fire_index(self) -> int | None:
        """Index of the first frame at or after the labelled fire start (None: fire-free)."""
        if self.fire_time is None:
            return None
        for index, frame in enumerate(self.frames):
            if frame.time >= self.fire_time - 1e-9:
                return index
        return None


def score_sequence(
    sequence: Sequence,
    config: Config,
    model: ModelBackend,
    camera: str,
    on_frame: Callable[[], None] | None = None,
) -> ScoredSequence:
    """Run a sequence through the live pipeline on a fresh camera; keep each frame's boxes.

    The pipeline's own vote runs too, at the camera's configured settings: its scores are kept
    so that the vote replay can be checked against the live path.
    """
    # A pipeline per sequence: a fresh camera state (vote history, alert window), as replay has.
    pipeline = build_pipeline(config, model, [camera])
    frames: list[ScoredFrame] = []
    pipeline_scores: list[float] = []
    empty = np.zeros((0, 5), dtype=np.float32)
    for frame in sequence.read():
        try:
            result = pipeline.process(camera, frame.data, frame.offset)
        except FrameError as err:
            frames.append(ScoredFrame(frame.label, frame.offset, empty, empty, err.reason))
        else:
            # A night frame the camera pauses on, or a repeat, never reaches the vote, as live.
            frames.append(
                ScoredFrame(
                    frame.label,
                    frame.offset,
                    result.raw_boxes,
                    result.boxes,
                    paused=result.paused,
                    repeat=result.repeat,
                )
            )
            pipeline_scores.append(result.score)
        if on_frame is not None:
            on_frame()
    if not frames:
        raise SmokeWatchError(f"{sequence.path}: no frame could be read")
    frame_seconds = sequence.frame_seconds
    if frame_seconds <= 0:
        steps = [b.time - a.time for a, b in itertools.pairwise(frames)]
        frame_seconds = statistics.median(steps) if steps else 0.0
    if sequence.fire_time is not None and sequence.fire_time > frames[-1].time:
        raise SmokeWatchError(
            f"{sequence.path}: fire_start {sequence.fire_time:g} s is after the last frame "
            f"({frames[-1].time:g} s)"
        )
    return ScoredSequence(
        name=sequence.name,
        has_fire=sequence.has_fire,
        fire_time=sequence.fire_time,
        frame_seconds=frame_seconds,
        frames=frames,
        label=describe_label(sequence),
        pipeline_scores=pipeline_scores,
    )


# Worker-process state: the model is loaded once per worker, not once per sequence.
_WORKER: dict[str, Any] = {}


def _worker_init(config: Config, model_override: str | None, camera: str) -> None:
    _WORKER["config"] = config
    _WORKER["camera"] = camera
    _WORKER["model"] = load_model(config.model, override=model_override, progress=False)


def _worker_score(sequence: Sequence) -> ScoredSequence:
    return score_sequence(sequence, _WORKER["config"], _WORKER["model"], _WORKER["camera"])


def score_dataset(
    sequences: list[Sequence],
    config: Config,
    camera: str,
    *,
    model_override: str | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> tuple[list[ScoredSequence], str]:
    """The model pass over every sequence (in `jobs` processes); also the model's name."""
    total = sum(len(s.frames) for s in sequences) or None
    has_video = any(s.video is not None for s in sequences)
    bar = tqdm(total=None if has_video else total, unit="frame", desc="eval", disable=not progress)
    try:
        if jobs <= 1 or len(sequences) == 1:
            model = load_model(config.model, override=model_override, progress=progress)
            scored = [
                score_sequence(s, config, model, camera, on_frame=lambda: bar.update(1))
                for s in sequences
            ]
            return scored, model.name
        # Spawned workers: a forked onnxruntime session is not safe to reuse.
        context = multiprocessing.get_context("spawn")
        results: dict[int, ScoredSequence] = {}
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_worker_init,
            initargs=(config, model_override, camera),
        ) as pool:
            futures = {pool.submit(_worker_score, s): i for i, s in enumerate(sequences)}
            for future in concurrent.futures.as_completed(futures):
                result = future.result()
                results[futures[future]] = result
                bar.update(len(result.frames))
        name = load_model(config.model, override=model_override, progress=False).name
        return [results[i] for i in range(len(sequences))], name
    finally:
        bar.close()


def default_jobs(sequences: int) -> int:
    """Worker processes: one per two cores (onnxruntime uses two threads each), at most one per
    sequence, one on a small box."""
    return max(1, min(sequences, (os.cpu_count() or 1) // 2))


def with_threads(config: Config, jobs: int) -> Config:
    """Split the cores among workers unless the config pins onnxruntime's threads."""
    if jobs <= 1 or config.model.intra_op_threads:
        return config
    threads = max(1, (os.cpu_count() or 1) // jobs)
    return dataclasses.replace(
        config, model=dataclasses.replace(config.model, intra_op_threads=threads)
    )
