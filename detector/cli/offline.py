"""`smokewatch check-config` and `smokewatch replay`."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detector.config.detection import SCENES
from detector.errors import ConfigError

DEFAULT_REPLAY_CAMERA = "replay"

if TYPE_CHECKING:  # the command functions import the library themselves
    from detector.config import Config


def add_camera_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the configuration, its camera and the model (replay, eval)."""
    parser.add_argument("-c", "--config", type=Path, help="configuration (model, camera, masks)")
    parser.add_argument(
        "--camera", help="camera of the configuration whose settings and masks apply"
    )
    parser.add_argument("--model", help="model file or Hugging Face repo id (overrides the config)")


def register(subparsers: Any) -> None:
    """Add `check-config` and `replay` to the command line."""
    check = subparsers.add_parser(
        "check-config",
        help="validate a configuration file",
        description="Validate a configuration file: every error is printed with its key path, "
        "the bad value and what is allowed.",
    )
    check.add_argument("file", type=Path, help="the YAML configuration file")
    check.set_defaults(func=check_config_main)

    rep = subparsers.add_parser(
        "replay",
        help="run an image, a folder of images or a video through the pipeline",
        description="Offline mode: run an image, a folder of images (sorted by name) or a video "
        "through the same pipeline as the live service; write one JSON line per frame and print "
        "a summary of the alerts.",
    )
    rep.add_argument("path", type=Path, help="image, folder of images, or video file")
    add_camera_options(rep)
    rep.add_argument(
        "--interval",
        type=float,
        help="seconds between frames: images are this far apart, a video is sampled every S "
        "seconds of its time (default: the camera's interval for images, every frame for videos)",
    )
    rep.add_argument("--threshold", type=float, help="vote threshold (0..1)")
    rep.add_argument("--nb-frames", type=int, help="temporal vote window")
    rep.add_argument(
        "--scene",
        choices=sorted(SCENES),
        help="what the camera watches (nearby: no width cap; horizon: Pyronear's settings); "
        "also resets max_bbox_width and night to the scene's",
    )
    rep.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="send each image N times in a row, as a live camera watching a still scene "
        "would at every interval: each copy after the first with fresh sensor noise",
    )
    rep.add_argument(
        "--frozen",
        action="store_true",
        help="with --repeat: send the identical bytes instead, as a stuck camera (or an NVR "
        "re-serving a dead camera's last frame) does; only the first copy is voted on",
    )
    rep.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("replay.jsonl"),
        help="per-frame results as JSON Lines (default: replay.jsonl; '-' for stdout)",
    )
    rep.add_argument("--summary", type=Path, help="also write the summary as JSON to this file")
    rep.add_argument("--save-alerts", type=Path, metavar="DIR", help="write annotated alert images")
    rep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rep.set_defaults(func=replay_main)


def check_config_main(args: argparse.Namespace) -> int:
    """`smokewatch check-config FILE`: print every error, or a short summary; 0 when valid."""
    from detector.config_check import check_config

    path: Path = args.file
    try:
        config, notes = check_config(path)
    except ConfigError as err:
        count = len(err.errors)
        print(f"{path}: {count} error{'s' if count != 1 else ''}")
        for line in err.errors:
            print(line)
        return 1
    print(f"{path}: OK")
    if config.instance.id:
        print(
            f"  instance {config.instance.id} (index {config.instance.index} of "
            f"{config.instance.count}): {len(config.cameras)} camera(s) of this config"
        )
    for camera in config.cameras.values():
        masks = len(camera.masks)
        cap = "no width cap" if camera.width_cap is None else f"width cap {camera.width_cap:g}"
        print(
            f"  camera {camera.id} ({camera.name}): {camera.image_topic}, every "
            f"{camera.interval:g} s, threshold {camera.threshold:g}, scene {camera.scene} "
            f"({cap}, night: {camera.night_mode}), {masks} "
            f"mask{'s' if masks != 1 else ''}{'' if camera.enabled else ', disabled'}"
        )
    print(f"  model: {config.model.path} (smoke classes: {', '.join(config.model.smoke_classes)})")
    tls = ", TLS" if config.mqtt.tls.enabled else ""
    print(
        f"  broker: {config.mqtt.host}:{config.mqtt.port}{tls}, "
        f"topic prefix {config.mqtt.topic_prefix}"
    )
    print(f"  bridge: {'enabled' if config.bridge.enabled else 'disabled'}")
    for note in notes:
        print(f"  note: {note}")
    return 0


def camera_config(args: argparse.Namespace, default_camera: str) -> tuple[Config, str, bool]:
    """The configuration of `--config` (or a default one), the camera of `--camera` (else the
    first), and whether the configuration came from a file."""
    from detector.config import load_config, validate

    if args.config is None:
        camera = args.camera or default_camera
        return validate({"cameras": {camera: {}}}), camera, False
    config = load_config(args.config, offline=True)
    camera = args.camera or next(iter(config.cameras))
    if camera not in config.cameras:
        raise ConfigError(
            [f"--camera {camera}: no such camera; the config has {', '.join(config.cameras)}"]
        )
    return config, camera, True


def _replay_config(args: argparse.Namespace) -> tuple[Config, str]:
    """The configuration a replay runs with, and the camera whose settings apply."""
    config, camera, _from_file = camera_config(args, DEFAULT_REPLAY_CAMERA)
    overrides: dict[str, Any] = {}
    if args.threshold is not None:
        overrides["threshold"] = args.threshold
    if args.nb_frames is not None:
        overrides["nb_frames"] = args.nb_frames
    if args.scene is not None:
        overrides.update(scene=args.scene, max_bbox_width=None, night=None)
    if overrides:
        cameras = dict(config.cameras)
        cameras[camera] = dataclasses.replace(cameras[camera], **overrides)
        config = dataclasses.replace(config, cameras=cameras)
    return config, camera


def replay_main(args: argparse.Namespace) -> int:
    """`smokewatch replay`: returns 0, or 1 when the source cannot be read at all."""
    from detector.assembly import build_pipeline, load_model
    from detector.replay import (
        IMAGE_SUFFIXES,
        ReplaySourceError,
        format_summary,
        iter_frames,
        repeat_frames,
        replay,
    )

    config, camera = _replay_config(args)
    model = load_model(config.model, override=args.model, progress=not args.no_progress)
    pipeline = build_pipeline(config, model, [camera])
    is_video = args.path.is_file() and args.path.suffix.lower() not in IMAGE_SUFFIXES
    interval = args.interval
    if interval is None:
        interval = 0.0 if is_video else config.cameras[camera].interval
    # The source is checked before any output file is created.
    count, frames = iter_frames(args.path, interval)
    if args.repeat < 1:
        raise ReplaySourceError(f"--repeat {args.repeat}: expected 1 or more")
    if args.repeat > 1:
        frames = repeat_frames(frames, args.repeat, interval, frozen=args.frozen)
        count = None if count is None else count * args.repeat
    to_stdout = str(args.output) == "-"
    if not to_stdout:
        args.output.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.nullcontext(sys.stdout)
        if to_stdout
        else args.output.open("w", encoding="utf-8") as output
    ):
        summary = replay(
            pipeline,
            camera,
            frames,
            count=count,
            label=f"replay {args.path.name}",
            output=output,
            save_alerts=args.save_alerts,
            progress=not args.no_progress,
        )
    if not to_stdout:
        print(f"Per-frame results: {args.output}", file=sys.stderr)
    if args.summary is not None:
        args.summary.write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
    stream = sys.stderr if to_stdout else sys.stdout
    print(format_summary(summary, "stdout" if to_stdout else str(args.output)), file=stream)
    return 0
