"""Offline mode: run an image, a folder of images or a video through the live pipeline.

Frames get the times they would have had live: images are `interval` seconds apart; a video is
sampled every `interval` seconds of its own time (every frame when the interval is 0).

One photo sent several times (`--repeat`) stands for a live camera watching a still scene: every
copy after the first is the photo captured again, with fresh sensor noise, re-encoded as a
camera's JPEG (`live_copy`). The very same bytes again are what a stuck camera sends, and the
pipeline does not vote on them (`frozen=True` replays that).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from detector.annotate import annotate_jpeg
from detector.contract import iso_utc
from detector.errors import FrameError, SmokeWatchError
from detector.frames import decode_image, restamped
from detector.pipeline import FrameResult, Pipeline
from detector.view import is_grey

_LOGGER = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"}
REPLAY_START = 1_700_000_000.0  # a fixed epoch for frame times, so two replays give equal output
# A live sensor's noise after JPEG, in grey levels (standard deviation): what makes two captures
# of a still scene differ. The development dataset's frames carry the same (EVALUATION.md).
SENSOR_NOISE = 2.5
LIVE_JPEG_QUALITY = 92


@dataclass
class ReplayFrame:
    """One frame to replay: its label, its offset from the start in seconds, its bytes."""

    label: str
    offset: float
    data: bytes


@dataclass
class Alert:
    """An alert seen during a replay."""

    start_frame: int
    start_time: float
    end_frame: int | None = None
    end_time: float | None = None
    max_score: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The alert as a JSON object (times in ISO 8601 UTC)."""
        return {
            "start_frame": self.start_frame,
            "start_time": iso_utc(self.start_time),
            "end_frame": self.end_frame,
            "end_time": None if self.end_time is None else iso_utc(self.end_time),
            "max_score": round(self.max_score, 3),
        }


@dataclass
class DropCount:
    """How often one cause dropped boxes during a replay."""

    frames: int = 0
    boxes: int = 0
    first_frame: int = 0
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The count as a JSON object."""
        return {"frames": self.frames, "boxes": self.boxes, "first_frame": self.first_frame}


@dataclass
class ReplaySummary:
    """What a replay found, and why boxes did not become alerts."""

    frames: int = 0
    scored: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    max_score: float = 0.0
    frames_with_boxes: int = 0
    # Keyed by cause: "score", "max_bbox_width", "mask:<name>", "vote", "max_boxes", "night",
    # "repeat".
    drops: dict[str, DropCount] = field(default_factory=dict)
    views: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON object."""
        return {
            "frames": self.frames,
            "scored": self.scored,
            "frames_with_boxes": self.frames_with_boxes,
            "max_score": round(self.max_score, 3),
            "alerts": [alert.to_json() for alert in self.alerts],
            "dropped": {cause: count.to_json() for cause, count in self.drops.items()},
            "views": self.views,
            "settings": self.settings,
            "errors": self.errors,
        }

    def count_drops(self, index: int, result: FrameResult) -> None:
        """Add one frame's drops and view state."""
        if result.view is not None:
            self.views[result.view.state] = self.views.get(result.view.state, 0) + 1
        seen: set[str] = set()
        for drop in result.dropped:
            cause = drop.reason if drop.mask is None else f"mask:{drop.mask}"
            count = self.drops.setdefault(cause, DropCount(first_frame=index))
            count.boxes += drop.box is not None
            if cause not in seen:
                count.frames += 1
                seen.add(cause)


class ReplaySourceError(SmokeWatchError):
    """The replay path is missing, empty or not something replay can read."""


def live_copy(data: bytes, seed: int) -> bytes:
    """The frame `data` captured again by a live camera: Gaussian sensor noise of SENSOR_NOISE
    levels, re-encoded as JPEG. An infrared (grey) frame stays grey: the same noise goes to
    every channel, so red still equals green on every pixel. FrameError for unusable bytes."""
    image = decode_image(data, rgb=False)
    pixels: NDArray[np.float64] = image.astype(np.float64)
    noise = np.random.default_rng(seed).normal(0.0, SENSOR_NOISE, image.shape[:2])
    if is_grey(image):
        noisy = pixels + noise[..., None]
    else:
        # Each channel has its own noise on a colour sensor.
        extra = np.random.default_rng(seed + 1).normal(0.0, SENSOR_NOISE, (*image.shape[:2], 2))
        noisy = pixels + np.dstack([noise[..., None], extra])
    out = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, LIVE_JPEG_QUALITY])
    if not ok:
        raise FrameError("corrupt", "the frame cannot be re-encoded as JPEG")
    return bytes(encoded.tobytes())


def repeat_frames(
    frames: Iterator[ReplayFrame], times: int, interval: float, *, frozen: bool = False
) -> Iterator[ReplayFrame]:
    """Each frame `times` times in a row, `interval` seconds apart.

    Live (the default): as a camera watching a still scene sends it, the first copy as it is,
    each later copy with fresh sensor noise (`live_copy`, seeded by its position, so two
    replays are equal). `frozen`: the identical bytes, as a stuck camera or an NVR re-serving a
    dead camera's last frame sends them; only the first copy is voted on. A frame that cannot
    be decoded is repeated as it is (the pipeline reports it unreadable).
    """
    for index, frame in enumerate(frames):
        for copy in range(times):
            data = frame.data
            if copy and not frozen:
                with contextlib.suppress(FrameError):  # unreadable: the pipeline says so
                    data = live_copy(frame.data, index * times + copy)
            yield ReplayFrame(f"{frame.label}#{copy + 1}", (index * times + copy) * interval, data)


# A name that is a signed offset in seconds from an event, optionally after its epoch:
# `-02400.jpg`, `+00060.jpg`, FIgLib's `1465065360_+00060.jpg`.
_SIGNED_NAME = re.compile(r"(?:(\d{10})_)?([+-]\d+)")


def signed_offset(name: str) -> float | None:
    """The time a signed-offset name gives (epoch + offset, or the offset alone), or None."""
    match = _SIGNED_NAME.fullmatch(Path(name).stem)
    if match is None:
        return None
    return float(match.group(1) or 0) + float(match.group(2))


def frame_order(files: Iterable[Path]) -> list[Path]:
    """Frames in time order: by name, except when every name is a signed offset, whose order
    is numeric (a plain sort puts `+00060` before `-02400` and reverses the footage)."""
    files = sorted(files)
    offsets = [signed_offset(f.name) for f in files]
    if files and all(offset is not None for offset in offsets):
        return [f for _offset, f in sorted(zip(offsets, files, strict=True), key=_by_offset)]
    return files


def _by_offset(pair: tuple[float | None, Path]) -> tuple[float, str]:
    return (pair[0] or 0.0, pair[1].name)


def iter_frames(path: Path, interval: float) -> tuple[int | None, Iterator[ReplayFrame]]:
    """The frames of a path (count when known beforehand, iterator)."""
    if path.is_dir():
        files = frame_order(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ReplaySourceError(f"{path} holds no .jpg, .jpeg or .png file")
        return len(files), _iter_files(files, interval)
    if not path.exists():
        raise ReplaySourceError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return 1, _iter_files([path], interval)
    if suffix in VIDEO_SUFFIXES:
        return _video_frames(path, interval)
    raise ReplaySourceError(
        f"{path} is neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}), a video "
        f"({', '.join(sorted(VIDEO_SUFFIXES))}) nor a folder"
    )


def _iter_files(files: list[Path], interval: float) -> Iterator[ReplayFrame]:
    for index, file in enumerate(files):
        yield ReplayFrame(file.name, index * interval, file.read_bytes())


def _video_frames(path: Path, interval: float) -> tuple[int | None, Iterator[ReplayFrame]]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ReplaySourceError(f"OpenCV cannot open the video {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    step = max(1, round(interval * fps)) if interval > 0 else 1
    expected = None if total is None else (total + step - 1) // step

    def frames() -> Iterator[ReplayFrame]:
        index = 0
        try:
            while True:
                grabbed = capture.grab()
                if not grabbed:
                    return
                if index % step == 0:
                    ok, image = capture.retrieve()
                    if ok:
                        # A video frame has no JPEG of its own: encode it once so the
                        # pipeline sees what a camera would publish.
                        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    if ok:
                        # Each sampled frame is a capture of its own, stamped with its frame
                        # number as a camera stamps its time: a still scene that the codec
                        # decodes to identical pixels is not a frozen camera's repeat.
                        yield ReplayFrame(
                            f"{path.name}@{index / fps:.2f}s",
                            index / fps,
                            restamped(bytes(encoded.tobytes()), index),
                        )
                index += 1
        finally:
            capture.release()

    return expected, frames()


def replay(
    pipeline: Pipeline,
    camera: str,
    frames: Iterator[ReplayFrame],
    *,
    output: TextIO,
    count: int | None = None,
    label: str = "replay",
    save_alerts: Path | None = None,
    progress: bool = True,
) -> ReplaySummary:
    """Replay `frames` (from iter_frames) on `camera`, one JSON line per frame to `output`."""
    settings = pipeline.camera(camera).settings
    summary = ReplaySummary(
        settings={
            "scene": settings.scene,
            "max_bbox_width": settings.max_bbox_width,
            "night": settings.night,
            "threshold": settings.threshold,
            "nb_frames": settings.nb_frames,
            "conf_thresh": pipeline.conf_thresh,
        }
    )
    current: Alert | None = None
    if save_alerts is not None:
        save_alerts.mkdir(parents=True, exist_ok=True)
    bar = tqdm(frames, total=count, unit="frame", disable=not progress, desc=label)
    for index, frame in enumerate(bar):
        summary.frames += 1
        frame_time = REPLAY_START + frame.offset
        record: dict[str, Any] = {
            "frame": index,
            "source": frame.label,
            "time": iso_utc(frame_time),
        }
        try:
            result = pipeline.process(camera, frame.data, frame_time)
        except FrameError as err:
            _LOGGER.warning("Frame %s skipped: %s", frame.label, err)
            record["error"] = {"reason": err.reason, "message": str(err)}
            summary.errors.append({"frame": index, "source": frame.label, "reason": err.reason})
            output.write(json.dumps(record) + "\n")
            continue
        summary.count_drops(index, result)
        if not result.voted:
            record.update(
                {
                    "paused" if result.paused else "repeat": True,
                    "score": round(result.score, 4),
                    "ongoing": result.vote.ongoing,
                    "view": _view(result),
                    "dropped": _drops(result),
                }
            )
            output.write(json.dumps(record) + "\n")
            continue
        summary.scored += 1
        summary.max_score = max(summary.max_score, result.score)
        if len(result.boxes):
            summary.frames_with_boxes += 1
        if result.vote.event == "start":
            current = Alert(start_frame=index, start_time=frame_time)
            summary.alerts.append(current)
        if current is not None:
            current.max_score = max(current.max_score, result.score)
            if result.vote.event == "end":
                current.end_frame, current.end_time = index, frame_time
                current = None
        record.update(
            {
                "score": round(result.score, 4),
                "ongoing": result.vote.ongoing,
                "event": result.vote.event,
                "boxes": [[round(float(v), 4) for v in box] for box in result.vote.boxes],
                "raw_boxes": [[round(float(v), 4) for v in box] for box in result.raw_boxes],
                "dropped": _drops(result),
                "view": _view(result),
                "detections": len(result.detections),
                "timings_ms": {k: round(v, 2) for k, v in result.timings.items()},
            }
        )
        output.write(json.dumps(record) + "\n")
        if save_alerts is not None and result.vote.ongoing:
            image = annotate_jpeg(frame.data, result.vote.boxes)
            name = f"{camera}_{index:06d}_{round(result.score * 100):03d}.jpg"
            (save_alerts / name).write_bytes(image)
    return summary


def _drops(result: FrameResult) -> list[dict[str, Any]]:
    return [drop.to_json() for drop in result.dropped]


def _view(result: FrameResult) -> dict[str, Any] | None:
    return None if result.view is None else result.view.to_json()


# What each cause means, in words, for the summary.
_CAUSES = {
    "score": "had no model box above conf_thresh {conf_thresh:g} (the model saw nothing)",
    "max_bbox_width": "had smoke boxes dropped by max_bbox_width {max_bbox_width:g} "
    "(boxes at least that wide; scene {scene})",
    "vote": "had boxes the temporal vote did not confirm (it needs {min_count} overlapping boxes "
    "over the last {nb_frames} frames and a vote score above {threshold:g})",
    "still": "had boxes whose content did not change like smoke's over the last frames (the "
    "nearby scene's guard: a still look-alike; a photo held still reads so too)",
    "max_boxes": "had boxes beyond the 5 per frame the Pyronear API takes",
    "night": "were grey (infrared) frames not scored (night: pause)",
    "repeat": "repeated the previous frame's bytes (a frozen camera: no new evidence, not "
    "voted on; replay --repeat without --frozen simulates a live camera)",
}


def explain_drops(summary: ReplaySummary, output_name: str = "the JSON lines") -> list[str]:
    """One sentence per cause that dropped boxes, most frequent first."""
    settings = {**summary.settings, "min_count": -(-summary.settings.get("nb_frames", 6) // 2)}
    lines = []
    for cause, count in sorted(summary.drops.items(), key=lambda item: -item[1].frames):
        if cause.startswith("mask:"):
            words = f"had boxes dropped by mask {cause[5:]!r}"
        else:
            try:
                words = _CAUSES[cause].format(**settings)
            except (KeyError, ValueError, TypeError):
                words = f"had boxes dropped by {cause}"
        plural = "frame" if count.frames == 1 else "frames"
        lines.append(
            f'{count.frames} {plural} {words}; see "dropped" in {output_name}, '
            f"first at frame {count.first_frame}."
        )
    return lines


def format_summary(summary: ReplaySummary, output_name: str = "the JSON lines") -> str:
    """A short human summary of a replay, with the reasons boxes were dropped."""
    lines = [
        f"{summary.frames} frames, {summary.scored} scored, {len(summary.errors)} unreadable, "
        f"{summary.frames_with_boxes} with smoke boxes, max vote score {summary.max_score:.3f}",
    ]
    if not summary.alerts:
        lines.append("No alert.")
    for number, alert in enumerate(summary.alerts, start=1):
        end = (
            "still open at the end"
            if alert.end_frame is None
            else f"ended at frame {alert.end_frame}"
        )
        lines.append(
            f"Alert {number}: started at frame {alert.start_frame}, {end}, "
            f"max score {alert.max_score:.3f}"
        )
    lines += explain_drops(summary, output_name)
    views = {state: n for state, n in summary.views.items() if state != "clear"}
    if views:
        lines.append(
            "View: " + ", ".join(f"{n} frames {state}" for state, n in sorted(views.items()))
        )
    for error in summary.errors:
        lines.append(f"Unreadable frame {error['frame']} ({error['source']}): {error['reason']}")
    return "\n".join(lines)
