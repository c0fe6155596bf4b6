"""int8 vs fp32, measured in one run: the figures of BENCHMARKS.md ("int8").

    python bench/int8.py [--data ../shared/data] [--cache /tmp/smokewatch-int8] [--json out.json]
    python bench/int8.py --markdown out.json     # the tables again, from a saved report

1. The real smoke model (`fire-detector-yolov8-1024.onnx`) quantised with each calibration
   method and each choice of float nodes, in two folds over the D-Fire frames (calibrate on the
   even frames and compare on the odd ones, then the other way round), so every frame is
   compared on a model that never saw it. Box agreement, score differences, alerts, speed-up.
2. yolo11s@1024 (Pyronear's architecture, untrained): speed-up only (its scores stay < 0.02).
3. Per-frame cost at 720p / 1080p / 4K: SmokeWatch's whole path with int8 and with fp32, and a
   bare fp32 `session.run`, interleaved, medians (int8: the default recipe, percentile
   calibration with the head in float; for the real model, the fold-0 calibration).

Quantised models are cached in --cache (quantising yolo11s@1024 is CPU-heavy); delete it to redo.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import onnxruntime as ort  # noqa: E402

from detector.bench import generated_frame  # noqa: E402
from detector.frames import letterbox_into  # noqa: E402
from detector.model import ModelRuntime  # noqa: E402
from detector.optimize import quantize  # noqa: E402
from detector.optimize_proof import compare  # noqa: E402
from detector.optimize_split import split_frames  # noqa: E402
from detector.pipeline import Pipeline, ScoringSettings  # noqa: E402
from detector.replay import iter_frames  # noqa: E402

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}
SETTINGS = ScoringSettings(name="bench")


def cpu() -> str:
    """The CPU model and the instruction sets onnxruntime's int8 kernels care about."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = sorted(set(re.findall(r"\b(avx2|avx512_vnni|avx_vnni|amx_int8)\b", text)))
    cores = text.count("processor\t:")
    name = model.group(1) if model else platform.processor()
    return f"{name}, {cores} vCPU, {' '.join(flags) or 'no AVX2'}, onnxruntime {ort.__version__}"


def quantized(
    model: ModelRuntime, frames: list[Any], path: Path, method: str, scope: str
) -> tuple[ModelRuntime, dict[str, Any]]:
    """The cached int8 model, made once."""
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        record = json.loads(meta.read_text())
    else:
        start = time.perf_counter()
        record = quantize(model, frames, path, method=method, scope=scope, progress=False)
        record["seconds"] = round(time.perf_counter() - start, 1)
        meta.write_text(json.dumps(record))
    return ModelRuntime(path, smoke_classes=model.class_names[:1]), record


def agreement_table(data: Path, cache: Path, runs: int) -> list[dict[str, Any]]:
    """Section 1: every recipe on the real model, both folds."""
    path = data / "models/fire-detector-yolov8-1024.onnx"
    fp32 = ModelRuntime(path, smoke_classes=["smoke"])
    frames = list(iter_frames(data / "images/dfire/images", 0.0)[1])
    folds = [split_frames(frames, 2), tuple(reversed(split_frames(frames, 2)))]
    rows = []
    recipes = [(m, "head") for m in ("minmax", "entropy", "percentile")]
    recipes += [("minmax", "output"), ("minmax", "none")]
    for method, scope in recipes:
        total: dict[str, Any] = {"method": method, "float": scope, "folds": []}
        for index, (calibration, held) in enumerate(folds):
            target = cache / f"fire-{method}-{scope}-fold{index}.onnx"
            int8, record = quantized(fp32, list(calibration), target, method, scope)
            result = compare(
                Pipeline(fp32), Pipeline(int8), SETTINGS, list(held), speed_runs=runs,
                progress=False,
            )  # fmt: skip
            total["folds"].append({"record": record, **result.to_json()})
            print(f"  {method}/{scope} fold {index}: {json.dumps(result.to_json())}", flush=True)
        rows.append(total)
    return rows


def speed_rows(models: dict[str, tuple[Path, Path]], runs: int) -> list[dict[str, Any]]:
    """Section 3: whole path int8 and fp32, bare fp32 run, at each size, interleaved."""
    rows = []
    for label, (fp32_path, int8_path) in models.items():
        fp32 = ModelRuntime(fp32_path, smoke_classes=["smoke"])
        int8 = ModelRuntime(int8_path, smoke_classes=["smoke"])
        for size, (width, height) in SIZES.items():
            data = generated_frame(width, height)
            pipes = {"fp32": Pipeline(fp32), "int8": Pipeline(int8)}
            for pipe in pipes.values():
                pipe.add_camera(SETTINGS)
            ready = fp32.new_input()
            letterbox_into(pipes["fp32"].decode(data)[0], ready, bgr=True)
            feed = {fp32.input_name: ready}
            calls: dict[str, Callable[[], object]] = {
                "bare_fp32": partial(fp32.session.run, [fp32.output_name], feed),
                "fp32": partial(pipes["fp32"].process, "bench", data),
                "int8": partial(pipes["int8"].process, "bench", data),
            }
            names = list(calls)
            times: dict[str, list[float]] = {name: [] for name in names}
            for index in range(runs + 2):
                # The order rotates every round: whichever call follows another model's run
                # starts with colder caches, so a fixed order would favour one of them.
                for name in names[index % 3 :] + names[: index % 3]:
                    start = time.perf_counter()
                    calls[name]()
                    if index >= 2:  # two warm-up rounds
                        times[name].append((time.perf_counter() - start) * 1000)
            row = {
                "model": label,
                "size": size,
                **{f"{k}_ms": statistics.median(v) for k, v in times.items()},
                "int8_over_bare_fp32": statistics.median(
                    a / b for a, b in zip(times["int8"], times["bare_fp32"], strict=True)
                ),
                "int8_over_fp32_path": statistics.median(
                    a / b for a, b in zip(times["int8"], times["fp32"], strict=True)
                ),
                "fp32_path_over_bare": statistics.median(
                    a / b for a, b in zip(times["fp32"], times["bare_fp32"], strict=True)
                ),
            }
            print(f"  {json.dumps(row)}", flush=True)
            rows.append(row)
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The report as the tables of BENCHMARKS.md."""
    lines = [
        f"CPU: {report['cpu']}",
        "",
        "| calibration | kept in float | boxes > 0.25 fp32 / int8 | matched (IoU > 0.5) | lost | "
        "gained | score diff median / max | alerts fp32 / int8 / lost | sequence alerts lost | "
        "speed-up (per fold) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["recipes"]:
        folds = row["folds"]

        def total(key: str, folds: list[dict[str, Any]] = folds) -> int:
            return sum(len(f[key]) if isinstance(f[key], list) else f[key] for f in folds)

        diffs = [d for f in folds for d in f["score_diffs"]]
        median = statistics.median(diffs) if diffs else 0.0
        lines.append(
            f"| {row['method']} | {row['float']} | {total('fp32_boxes')} / {total('int8_boxes')} "
            f"| {total('matched')} | {total('lost')} | {total('gained')} | {median:.3f} / "
            f"{max(diffs, default=0.0):.3f} | {total('fp32_alerts')} / {total('int8_alerts')} / "
            f"{total('alerts_lost')} | {total('sequence_alerts_lost')} | "
            + ", ".join(f"{f['speedup']:.2f}x" for f in folds)
            + " |"
        )
    yolo = report["yolo11s"]
    lines += [
        "",
        f"yolo11s-untrained-1024 ({yolo['record']['method']}, head in float): bare run fp32 "
        f"{yolo['fp32_ms']:.0f} ms, int8 {yolo['int8_ms']:.0f} ms, speed-up {yolo['speedup']:.2f}x",
        "",
        "| model | frame | bare fp32 run | fp32 path | int8 path | fp32 path / bare fp32 run | "
        "int8 path / fp32 path | int8 path / bare fp32 run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["sizes"]:
        lines.append(
            f"| {row['model']} | {row['size']} | {row['bare_fp32_ms']:.0f} ms | "
            f"{row['fp32_ms']:.0f} ms | {row['int8_ms']:.0f} ms | "
            f"{row['fp32_path_over_bare']:.3f} | {row['int8_over_fp32_path']:.3f} | "
            f"{row['int8_over_bare_fp32']:.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run every section and print the results (and write them as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/smokewatch-int8"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path, help="only print the tables of a saved report")
    args = parser.parse_args()
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    args.cache.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"cpu": cpu()}
    print(f"CPU: {report['cpu']}", flush=True)

    print("1. fire-detector-yolov8-1024: recipes, two folds over the D-Fire frames", flush=True)
    report["recipes"] = agreement_table(args.data, args.cache, args.runs)

    print("2. yolo11s-untrained-1024: percentile, head in float", flush=True)
    yolo = args.data / "models/yolo11s-untrained-1024.onnx"
    frames = list(iter_frames(args.data / "images/dfire/images", 0.0)[1])
    calibration, held = split_frames(frames, 2)
    yolo_fp32 = ModelRuntime(yolo)
    yolo_int8, record = quantized(
        yolo_fp32, calibration, args.cache / "yolo11s-percentile-head.onnx", "percentile", "head"
    )
    result = compare(
        Pipeline(yolo_fp32), Pipeline(yolo_int8), SETTINGS, held, speed_runs=args.runs,
        progress=False,
    )  # fmt: skip
    report["yolo11s"] = {"record": record, **result.to_json()}
    print(f"  {json.dumps(report['yolo11s'])}", flush=True)

    print("3. per-frame cost by frame size", flush=True)
    models = {
        "fire-detector-yolov8-1024": (
            args.data / "models/fire-detector-yolov8-1024.onnx",
            args.cache / "fire-percentile-head-fold0.onnx",
        ),
        "yolo11s-untrained-1024": (yolo, args.cache / "yolo11s-percentile-head.onnx"),
    }
    report["sizes"] = speed_rows(models, args.runs)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
