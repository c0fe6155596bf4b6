"""`smokewatch bench`: per-stage costs on the user's model and frame, and cameras per box.

Every figure is a median over interleaved runs in one process, so the ratio of the whole
per-frame path to a bare `session.run` on the same ready tensor is measured under the same
machine load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from detector.assembly import build_pipeline, load_model
from detector.config import Config, ModelConfig, load_config, validate
from detector.contract import Detection, iso_utc
from detector.errors import ModelError
from detector.frames import decode_frame, letterbox_into
from detector.masks import apply_masks
from detector.pipeline import Pipeline
from detector.postprocess import postprocess

STAGES = ("decode", "preprocess", "model", "postprocess", "masks", "vote", "publish")


def register(subparsers: Any) -> None:
    """Add `bench` to the command line."""
    bench = subparsers.add_parser(
        "bench",
        help="measure the per-frame cost and how many cameras this machine can score",
        description="Time every stage of the per-frame path on your model and a frame, compare "
        "the whole path with a bare onnxruntime session.run on the same tensor, and tell how "
        "many cameras this machine can score at a given interval.",
    )
    bench.add_argument("-c", "--config", type=Path, help="use this configuration's model")
    bench.add_argument("--model", help="model file or repo id (default: the configured one)")
    bench.add_argument(
        "--vs",
        metavar="MODEL_B",
        help="a second model (e.g. the int8 copy from `smokewatch optimize`): both are timed "
        "in the same run, alternately, on the same frame",
    )
    bench.add_argument("--frame", type=Path, help="a JPEG/PNG of your camera (default: generated)")
    bench.add_argument(
        "--resolution", default="1920x1080", help="size of the generated frame (default 1920x1080)"
    )
    bench.add_argument("--runs", type=int, default=20, help="timed runs (default 20)")
    bench.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    bench.add_argument(
        "--interval",
        type=float,
        default=30.0,
        help="seconds between frames per camera (default 30)",
    )
    bench.add_argument(
        "--headroom",
        type=float,
        default=0.2,
        help="share of the CPU time kept free when counting cameras (default 0.2)",
    )
    bench.add_argument(
        "--backend",
        choices=["onnxruntime", "triton"],
        help="where the model runs (default: the configured backend)",
    )
    bench.add_argument("--url", help="backend triton: the server, e.g. localhost:8000")
    bench.add_argument("--name", help="backend triton: the model's name on the server")
    bench.add_argument("--protocol", choices=["http", "grpc"], help="backend triton: http or grpc")
    bench.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    bench.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    bench.set_defaults(func=bench_main)


def generated_frame(width: int, height: int) -> bytes:
    """A camera-like JPEG: sky gradient, textured hills, noise (so JPEG size is realistic)."""
    rng = np.random.default_rng(7)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(
        np.array([200, 170, 120], np.float32) * (1 - 0.4 * ys), (height, width, 3)
    )
    # Mild sensor noise and a repeating texture: compressed sizes like a real camera's
    # (about 0.25 MB at 1280x720, 1 MB at 3840x2160, quality 90).
    image = image + rng.normal(0, 4, (height, width, 3)).astype(np.float32)
    image = image + 10 * np.sin(np.arange(width, dtype=np.float32) / 7)[None, :, None]
    horizon = (0.55 + 0.05 * np.sin(np.linspace(0, 9, width))) * height
    mask = np.arange(height)[:, None] > horizon[None, :]
    image = np.where(mask[..., None], image * 0.35, image)
    ok, encoded = cv2.imencode(
        ".jpg", image.clip(0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    assert ok
    return bytes(encoded.tobytes())


def _parse_resolution(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--resolution {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    return width, height


def measure(
    pipeline: Pipeline, camera: str, data: bytes, runs: int, warmup: int, progress: bool
) -> dict[str, Any]:
    """Time each stage, the whole path and a bare session.run, interleaved."""
    model = pipeline.model
    state = pipeline.camera(camera)
    target = max(model.input_w, model.input_h)
    ready = model.new_input()
    letterbox_into(decode_frame(data, target_size=target, rgb=False)[0], ready, bgr=True)
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    whole: list[float] = []
    bare: list[float] = []
    for index in tqdm(range(warmup + runs), desc="bench", unit="run", disable=not progress):
        timed = index >= warmup
        start = time.perf_counter()
        model.run(ready)
        bare_ms = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        result = pipeline.process(camera, data, time.time())
        whole_ms = (time.perf_counter() - start) * 1000

        # The stages once more, one at a time, for the breakdown.
        t0 = time.perf_counter()
        image, _size = decode_frame(
            data, target_size=target, max_bytes=pipeline.max_frame_bytes, rgb=False
        )
        t1 = time.perf_counter()
        tensor = model.new_input()
        letterbox = letterbox_into(image, tensor, bgr=True)
        t2 = time.perf_counter()
        output = model.run(tensor)
        t3 = time.perf_counter()
        boxes = postprocess(
            output,
            letterbox,
            model.smoke_class_ids,
            conf_thresh=pipeline.conf_thresh,
            max_bbox_width=state.settings.max_bbox_width,
        )
        t4 = time.perf_counter()
        kept = apply_masks(boxes, state.masks())
        t5 = time.perf_counter()
        state.vote.update(kept)
        t6 = time.perf_counter()
        attributes = {
            "score": result.score,
            "boxes": result.vote.boxes.tolist(),
            "frame_time": iso_utc(time.time()),
        }
        detection = Detection("bench", camera, time.time(), result.vote.boxes, data)
        json.dumps(attributes)
        json.dumps(detection.to_json())
        t7 = time.perf_counter()
        if timed:
            bare.append(bare_ms)
            whole.append(whole_ms)
            for name, (a, b) in zip(
                STAGES,
                [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6), (t6, t7)],
                strict=True,
            ):
                stages[name].append((b - a) * 1000)
    return {
        "stages_ms": {name: statistics.median(values) for name, values in stages.items()},
        "stage_ranges_ms": {name: (min(v), max(v)) for name, v in stages.items()},
        "whole_ms": statistics.median(whole),
        "whole_range_ms": (min(whole), max(whole)),
        "bare_ms": statistics.median(bare),
        "bare_range_ms": (min(bare), max(bare)),
        "ratio": statistics.median(w / b for w, b in zip(whole, bare, strict=True)),
    }


def measure_pair(
    first: Pipeline,
    second: Pipeline,
    camera: str,
    data: bytes,
    runs: int,
    warmup: int,
    progress: bool,
) -> dict[str, Any]:
    """The whole per-frame path of two pipelines (two models) on one frame, alternately.

    Alternating run by run puts both models under the same machine load, so their ratio holds
    even on a busy machine; the medians of each are also given.
    """
    times: list[list[float]] = [[], []]
    for index in tqdm(range(warmup + runs), desc="bench", unit="run", disable=not progress):
        # Alternate which model goes first: the second starts with colder caches.
        for slot in (0, 1) if index % 2 == 0 else (1, 0):
            pipeline = (first, second)[slot]
            start = time.perf_counter()
            pipeline.process(camera, data, time.time())
            if index >= warmup:
                times[slot].append((time.perf_counter() - start) * 1000)
    return {
        "a_ms": statistics.median(times[0]),
        "b_ms": statistics.median(times[1]),
        "a_range_ms": (min(times[0]), max(times[0])),
        "b_range_ms": (min(times[1]), max(times[1])),
        "ratio": statistics.median(b / a for a, b in zip(times[0], times[1], strict=True)),
    }


def capacity(per_frame_ms: float, interval: float, headroom: float) -> int:
    """Cameras one worker can score every `interval` seconds, keeping `headroom` free."""
    return max(0, math.floor(interval * 1000 * (1 - headroom) / per_frame_ms))


def _model_options(model: ModelConfig, args: argparse.Namespace) -> ModelConfig:
    """The configured model section with the command line's backend options on top."""
    changes = {
        key: getattr(args, key)
        for key in ("backend", "url", "name", "protocol")
        if getattr(args, key) is not None
    }
    updated = dataclasses.replace(model, **changes)
    if updated.backend == "triton" and (not updated.url or not updated.name):
        raise SystemExit("bench --backend triton needs --url and --name (or a config with them)")
    return updated


def _bench_pair(
    args: argparse.Namespace,
    config: Config,
    first: Pipeline,
    camera: str,
    data: bytes,
    source: str,
    size: tuple[int, int],
) -> int:
    """`smokewatch bench --model A --vs B`: per-frame time and cameras per box of each."""
    other = load_model(config.model, override=args.vs, progress=not args.no_progress)
    second = build_pipeline(config, other, [camera])
    results = measure_pair(
        first, second, camera, data, args.runs, args.warmup, not args.no_progress
    )
    print(f"Frame: {source} ({size[0]}x{size[1]}, {len(data) / 1024:.0f} KiB)")
    print(f"Whole per-frame path, medians of {args.runs} alternating runs (min–max):")
    report: dict[str, Any] = {"frame": source, "size": size, "runs": args.runs}
    for key, pipeline in (("a", first), ("b", second)):
        model = pipeline.model
        per_frame = results[f"{key}_ms"]
        low, high = results[f"{key}_range_ms"]
        cameras = capacity(per_frame, args.interval, args.headroom)
        print(
            f"  {key.upper()} {model.name} ({model.input_w}x{model.input_h}): "
            f"{per_frame:8.2f} ms ({low:.2f}–{high:.2f}), {cameras} camera(s) at one frame "
            f"every {args.interval:g} s"
        )
        report[key] = {"model": model.name, "ms": per_frame, "capacity": cameras}
    print(
        f"B / A per frame: {results['ratio']:.3f} (median of the run-by-run ratios); "
        f"B carries {1 / results['ratio']:.2f}x the cameras of A"
    )
    if args.json is not None:
        args.json.write_text(json.dumps({**report, "ratio": results["ratio"]}, indent=2) + "\n")
    return 0


def bench_main(args: argparse.Namespace) -> int:
    """`smokewatch bench`."""
    if args.config is not None:
        config = load_config(args.config)
    else:
        config = validate({"cameras": {"bench": {}}})
    camera_config = next(iter(config.cameras.values()))
    if args.frame is not None:
        if not args.frame.is_file():
            raise SystemExit(f"--frame {args.frame}: no such file")
        data = args.frame.read_bytes()
        source = str(args.frame)
    else:
        width, height = _parse_resolution(args.resolution)
        data = generated_frame(width, height)
        source = f"generated {width}x{height} JPEG"
    model_config = _model_options(config.model, args)
    try:
        model = load_model(model_config, override=args.model, progress=not args.no_progress)
    except ModelError as err:
        raise SystemExit(f"bench: {err}") from None
    pipeline = build_pipeline(config, model, [camera_config.id])
    _, size = decode_frame(data)
    if args.vs is not None:
        return _bench_pair(args, config, pipeline, camera_config.id, data, source, size)
    results = measure(
        pipeline, camera_config.id, data, args.runs, args.warmup, not args.no_progress
    )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cameras = capacity(results["whole_ms"], args.interval, args.headroom)
    print(
        f"Model {model.name} ({model.input_w}x{model.input_h}), frame: {source} "
        f"({size[0]}x{size[1]}, {len(data) / 1024:.0f} KiB)"
    )
    described = model.describe()
    if described["backend"] == "triton":
        print(
            f"Backend: triton, model {described['model']!r} on {described['protocol']} "
            f"{described['url']} (the model stage is the round trip)"
        )
    else:
        print(f"Backend: onnxruntime, providers {', '.join(described['providers'])}")
    print(f"Medians of {args.runs} runs (min–max):")
    for name in STAGES:
        low, high = results["stage_ranges_ms"][name]
        print(f"  {name:<12} {results['stages_ms'][name]:8.2f} ms  ({low:.2f}–{high:.2f})")
    low, high = results["whole_range_ms"]
    print(f"  whole path   {results['whole_ms']:8.2f} ms  ({low:.2f}–{high:.2f})")
    low, high = results["bare_range_ms"]
    print(
        f"  bare run     {results['bare_ms']:8.2f} ms  ({low:.2f}–{high:.2f})"
        "  (the model alone on a ready tensor)"
    )
    print(f"Whole path / bare model run: {results['ratio']:.3f}")
    print(f"Peak RSS: {peak_mib:.0f} MiB")
    print(
        f"Capacity: {cameras} camera(s) per detector at one frame every {args.interval:g} s, "
        f"keeping {args.headroom:.0%} of the time free ({results['whole_ms']:.0f} ms per frame)"
    )
    if args.json is not None:
        report = {
            **results,
            "model": model.name,
            "backend": described,
            "frame": source,
            "size": size,
            "peak_rss_mib": peak_mib,
            "capacity": cameras,
            "interval": args.interval,
            "headroom": args.headroom,
            "runs": args.runs,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
