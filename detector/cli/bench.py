"""`smokewatch bench` (the measurements: detector/bench.py)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the command functions import the library themselves
    from detector.config import Config, ModelConfig


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
        help="a second model (e.g. the int8 copy from `smokewatch optimize`): each is timed "
        "in its own process, in rounds taken in turn, on the same frame",
    )
    bench.add_argument(
        "--round-runs",
        type=int,
        default=5,
        help="with --vs: runs of one model before the other's turn (default 5)",
    )
    bench.add_argument("--frame", type=Path, help="a JPEG/PNG of your camera (default: generated)")
    bench.add_argument(
        "--resolution", default="1920x1080", help="size of the generated frame (default 1920x1080)"
    )
    bench.add_argument("--runs", type=int, default=20, help="timed runs (default 20)")
    bench.add_argument(
        "--cold",
        action="store_true",
        help="time each run as a live frame arrives: caches evicted by other work and "
        "onnxruntime's threads asleep (default: runs back to back, warm)",
    )
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


_COLD = ", each run cold (caches evicted, threads asleep)"


def _parse_resolution(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--resolution {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    return width, height


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
    camera: str,
    data: bytes,
    source: str,
    size: tuple[int, int],
) -> int:
    """`smokewatch bench --model A --vs B`: per-frame time and cameras per box of each, each
    model in its own process (detector/bench_pair.py)."""
    from detector.bench import capacity
    from detector.bench_pair import measure_pair_apart

    timed = measure_pair_apart(
        config,
        (args.model, args.vs),
        camera,
        data,
        args.runs,
        args.warmup,
        round_runs=args.round_runs,
        progress=not args.no_progress,
        cold=args.cold,
    )
    results = timed.to_json()
    print(f"Frame: {source} ({size[0]}x{size[1]}, {len(data) / 1024:.0f} KiB)")
    print(
        f"Whole per-frame path, each model in its own process, {results['rounds']} rounds of "
        f"{args.round_runs} runs taken in turn{_COLD if args.cold else ''}: medians (min–max)"
    )
    report: dict[str, Any] = {"frame": source, "size": size, "cold": args.cold, **results}
    for slot, key in enumerate(("a", "b")):
        per_frame = results[f"{key}_ms"]
        low, high = results[f"{key}_range_ms"]
        cameras = capacity(per_frame, args.interval, args.headroom)
        width, height = timed.sizes[slot]
        print(
            f"  {key.upper()} {timed.names[slot]} ({width}x{height}): "
            f"{per_frame:8.2f} ms ({low:.2f}–{high:.2f}), {cameras} camera(s) at one frame "
            f"every {args.interval:g} s"
        )
        report[key] = {"model": timed.names[slot], "ms": per_frame, "capacity": cameras}
    for key in ("a", "b"):
        low, high = results[f"{key}_bare_range_ms"]
        print(
            f"  {key.upper()} bare session.run: {results[f'{key}_bare_ms']:8.2f} ms "
            f"({low:.2f}–{high:.2f})"
        )
    low, high = results["round_ratio_range"]
    print(
        f"B / A per frame: {results['ratio']:.3f} (ratio of the medians; per round "
        f"{low:.3f}–{high:.3f}); B carries {1 / results['ratio']:.2f}x the cameras of A"
    )
    print(
        f"B's whole path / A's bare run: {results['b_path_vs_a_bare']:.3f}; A's whole path / "
        f"A's bare run: {results['a_ms'] / results['a_bare_ms']:.3f}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def bench_main(args: argparse.Namespace) -> int:
    """`smokewatch bench`."""
    from detector.assembly import build_pipeline, load_model
    from detector.bench import STAGES, capacity, generated_frame, measure
    from detector.config import load_config, validate
    from detector.errors import ModelError
    from detector.frames import decode_frame

    if args.config is not None:
        config = load_config(args.config, offline=True)
    else:
        config = validate({"cameras": {"bench": {}}})
    # The frame is always scored, as in the day: a grey frame on a camera that pauses at night
    # would time no model at all.
    camera_config = dataclasses.replace(next(iter(config.cameras.values())), night="score")
    config = dataclasses.replace(config, cameras={camera_config.id: camera_config})
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
    if args.vs is not None:
        config = dataclasses.replace(config, model=model_config)
        _, size = decode_frame(data)
        return _bench_pair(args, config, camera_config.id, data, source, size)
    try:
        model = load_model(model_config, override=args.model, progress=not args.no_progress)
    except ModelError as err:
        raise SystemExit(f"bench: {err}") from None
    pipeline = build_pipeline(config, model, [camera_config.id])
    _, size = decode_frame(data)
    results = measure(
        pipeline,
        camera_config.id,
        data,
        args.runs,
        args.warmup,
        not args.no_progress,
        cold=args.cold,
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
    print(f"Medians of {args.runs} runs{_COLD if args.cold else ''} (min–max):")
    for name in (stage for stage in STAGES if stage in results["stages_ms"]):
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
    print(
        f"Peak RSS: {peak_mib:.0f} MiB"
        + (" (with --cold's cache-sized buffer: measure memory without it)" if args.cold else "")
    )
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
            "cold": args.cold,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
