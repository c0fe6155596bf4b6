"""Choose the nearby guard's numbers from evidence: every variant on the same model pass.

    python bench/guard_calibration.py --model ../shared/data/models/dfire-yolo11n-int8-640.onnx \
        /tmp/smokewatch-lookalikes /tmp/smokewatch-evalset

One model pass per frame (the pipeline's own decode and model, nearby scene: no width cap), kept
in a cache beside the output; then for each guard variant the guard and the default vote
(threshold 0.25, nb_frames 6) run over the cached boxes, and the script prints, per variant, the
false alerts on fire-free sequences, the fire sequences detected and their time to detect, and
the distribution of the change the guard measures on boxes of fire-free sequences and on boxes
of fire sequences from their fire frame on.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.assembly import load_model
from detector.config import validate
from detector.eval_dataset import load_dataset
from detector.guard import GuardSettings, box_changes, guard_thumbnail
from detector.pipeline import Pipeline
from detector.vote import TemporalVote


@dataclass
class Frame:
    """A frame's model boxes (normalised, after NMS) and its guard thumbnail."""

    time: float
    boxes: np.ndarray
    thumb: np.ndarray


def model_pass(datasets: list[Path], model_path: str, cache: Path) -> dict[str, list[Frame]]:
    """The boxes and thumbnails of every frame, from the cache when it is there."""
    if cache.exists():
        return pickle.loads(cache.read_bytes())  # type: ignore[no-any-return]
    config = validate({"model": {"path": model_path}, "cameras": {"cal": {}}})
    pipeline = Pipeline(load_model(config.model, progress=False))
    out: dict[str, list[Frame]] = {}
    for dataset in datasets:
        for sequence in load_dataset(dataset):
            frames = []
            for frame in sequence.read():
                image, _ = pipeline.decode(frame.data)
                boxes, _best = pipeline.infer(image, {})
                frames.append(Frame(frame.offset, boxes, guard_thumbnail(image)))
            key = f"{dataset.name}/{sequence.name}"
            out[key] = frames
            fire = sequence.fire_time
            out[key + "#fire"] = [Frame(-1.0 if fire is None else fire, np.zeros(0), np.zeros(0))]
    cache.write_bytes(pickle.dumps(out))
    return out


def run(frames: list[Frame], guard: GuardSettings | None, min_width: float) -> list[bool]:
    """The alert state per frame with this guard (None: no guard)."""
    vote = TemporalVote(6, 0.25)
    history: list[np.ndarray] = []
    ongoing = []
    for frame in frames:
        boxes = frame.boxes
        if guard is not None and len(boxes) and history:
            then = history[-guard.lookback] if len(history) >= guard.lookback else history[0]
            change = box_changes(frame.thumb, then, boxes, guard.percentile)
            wide = (boxes[:, 2] - boxes[:, 0]) >= min_width
            boxes = boxes[(change >= guard.min_change) | ~wide]
        if guard is not None:
            history.append(frame.thumb)
        ongoing.append(vote.update(boxes).ongoing)
    return ongoing


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", type=Path, nargs="+")
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    cache = args.cache or Path(f"/tmp/guard-cache-{Path(args.model).stem}.pkl")
    data = model_pass(args.datasets, args.model, cache)
    sequences = {k: v for k, v in data.items() if not k.endswith("#fire")}
    fire_at = {k: data[k + "#fire"][0].time for k in sequences}

    # The change the guard sees (5 frames back, 90th percentile) on every boxed frame.
    lookalike_changes, smoke_changes = [], []
    for key, frames in sequences.items():
        fire = fire_at[key]
        for index in range(1, len(frames)):
            then = frames[max(0, index - 5)].thumb
            changes = box_changes(frames[index].thumb, then, frames[index].boxes)
            scores = frames[index].boxes[:, 4] if len(frames[index].boxes) else []
            for change, score in zip(changes, scores, strict=True):
                if score <= 0.15:
                    continue
                if fire < 0:
                    lookalike_changes.append((change, key))
                elif frames[index].time >= fire:
                    smoke_changes.append((change, key))
    for name, values in (("fire-free", lookalike_changes), ("fire", smoke_changes)):
        ranked = sorted(v for v, _ in values)
        if ranked:
            cuts = [ranked[int(q * (len(ranked) - 1))] for q in (0.0, 0.05, 0.25, 0.5, 0.9, 1.0)]
            print(f"{name} boxes (score > 0.15): {len(ranked)}; change min/5/25/50/90/max % "
                  f"{' '.join(f'{c:.1f}' for c in cuts)}")  # fmt: skip
    print("fire-free boxes with the most change:", sorted(lookalike_changes)[-5:])
    print("fire boxes with the least change:", sorted(smoke_changes)[:5])

    variants: list[tuple[str, GuardSettings | None, float]] = [("no guard", None, 0.0)]
    for change, lookback, percentile, width in itertools.product(
        (2.0, 3.0, 4.0, 6.0), (3, 5), (75.0, 90.0), (0.0, 0.1, 0.25, 0.4)
    ):
        settings = GuardSettings(change, lookback, percentile)
        variants.append((f"change>={change:g} back {lookback} p{percentile:g} w>={width:g}",
                         settings, width))  # fmt: skip
    for label, guard, width in variants:
        false_alerts, detected, times, missed = [], 0, [], []
        fires = 0
        for key, frames in sequences.items():
            ongoing = run(frames, guard, width)
            fire = fire_at[key]
            if fire < 0:
                starts = sum(1 for a, b in itertools.pairwise([False, *ongoing]) if b and not a)
                if starts:
                    false_alerts.append(key.split("/")[-1])
                continue
            fires += 1
            first = next((i for i, f in enumerate(frames) if f.time >= fire), None)
            hit = next((i for i in range(first or 0, len(frames)) if ongoing[i]), None)
            if hit is None:
                missed.append(key.split("/")[-1])
            else:
                detected += 1
                times.append(hit - (first or 0))
        median = statistics.median(times) if times else None
        print(f"{label:40s} false alerts {len(false_alerts):2d} {false_alerts} | detected "
              f"{detected}/{fires}, median {median} fr, worst {max(times) if times else None} "
              f"fr, missed {missed}")  # fmt: skip


if __name__ == "__main__":
    main()
