"""An evaluation dataset: a folder of labelled sequences, read and checked before anything runs.

A sequence is a sub-folder holding `label.yaml` and either frames (.jpg/.jpeg/.png, in time order
by name) or one video. The label says when the fire becomes visible, or that there is none:

    fire_start: frame_0012.jpg  # a frame name, an ISO 8601 time, or seconds from the first frame
    # fire: false               # instead of fire_start, for a fire-free sequence
    interval: 30                # seconds between frames (needed when names/EXIF give no time)
    times: auto                 # auto | name | exif | interval

Frame times come from the file names (20240701T120000, 2024-07-01_12-00-00, epoch seconds, or a
signed offset in seconds such as -02400 / +00060, after an epoch or alone), else from EXIF
DateTimeOriginal, else from `interval`; names and EXIF are read as UTC. Frames are in name order,
except signed offsets, which are in numeric order. A video's frames carry the video's own time,
sampled every `interval` seconds (every frame without one).
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from detector.contract import parse_iso
from detector.errors import SmokeWatchError
from detector.replay import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ReplayFrame,
    frame_order,
    iter_frames,
    signed_offset,
)

LABEL_FILE = "label.yaml"
TIME_SOURCES = ("auto", "name", "exif", "interval")
_LABEL_KEYS = {"fire_start", "fire", "interval", "times", "note"}

# 20240701T120000, 20240701_120000, 2024-07-01T12-00-00, 2024-07-01 12:00:00.250 ...
_NAME_TIME = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})[T_ -]?(\d{2})[-:]?(\d{2})[-:]?(\d{2})"
    r"(?:[.,](\d{1,6}))?(?!\d)"
)
# A 10-digit epoch (seconds since 1970; 2001..2286), optionally with a fraction.
_NAME_EPOCH = re.compile(r"(?<!\d)(\d{10})(?:\.(\d{1,6}))?(?!\d)")
_EXIF_IFD = 0x8769
_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_DATETIME = 0x0132


class DatasetError(SmokeWatchError):
    """The dataset or one of its label files cannot be used; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the evaluation dataset has problems:\n  " + "\n  ".join(problems)
            if len(problems) > 1
            else problems[0]
        )
        self.problems = problems


@dataclass(frozen=True)
class Label:
    """A sequence's label: when the fire starts (None: fire-free), and how to time frames."""

    fire_start: str | float | None
    interval: float | None
    times: str


@dataclass(frozen=True)
class Sequence:
    """One labelled sequence, ready to read.

    For a folder, `frames` and `times` (epoch seconds or offsets, one per frame) are known now
    and `fire_time` is resolved; for a video they are known only while reading it.
    """

    name: str
    path: Path
    label: Label
    frames: tuple[Path, ...]
    times: tuple[float, ...]
    video: Path | None
    fire_time: float | None
    frame_seconds: float

    @property
    def has_fire(self) -> bool:
        """True when the label says a fire becomes visible in this sequence."""
        return self.label.fire_start is not None

    def read(self) -> Iterator[ReplayFrame]:
        """The frames with their times (`offset` holds the frame's time, not an offset)."""
        if self.video is not None:
            _, frames = iter_frames(self.video, self.label.interval or 0.0)
            yield from frames
            return
        for path, moment in zip(self.frames, self.times, strict=True):
            yield ReplayFrame(path.name, moment, path.read_bytes())


def _parse_label(path: Path) -> tuple[Label | None, list[str]]:
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        return None, [f"{where}: not valid YAML ({err})".replace("\n", " ")]
    except (OSError, UnicodeDecodeError) as err:
        return None, [f"{where}: cannot read it ({err})"]
    if not isinstance(data, dict):
        return None, [
            f"{where}: expected a mapping such as 'fire_start: frame_0012.jpg' or 'fire: false', "
            f"got {type(data).__name__}"
        ]
    problems: list[str] = []
    unknown = sorted(str(key) for key in data if key not in _LABEL_KEYS)
    if unknown:
        problems.append(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_LABEL_KEYS))}"
        )
    has_start = data.get("fire_start") is not None
    fire = data.get("fire", has_start)
    if not isinstance(fire, bool):
        problems.append(f"{where}: fire must be true or false, got {fire!r}")
    elif fire and not has_start:
        problems.append(
            f"{where}: fire: true needs fire_start (a frame name, an ISO time or seconds from "
            "the first frame)"
        )
    elif not fire and has_start:
        problems.append(f"{where}: fire: false contradicts fire_start {data['fire_start']!r}")
    if "fire" not in data and "fire_start" not in data:
        problems.append(
            f"{where}: say when the fire becomes visible (fire_start: <frame name | ISO time | "
            "seconds>) or that there is none (fire: false)"
        )
    start = data.get("fire_start")
    if start is not None:
        if isinstance(start, bool) or not isinstance(start, str | int | float | datetime):
            problems.append(
                f"{where}: fire_start must be a frame name, an ISO time or seconds, got {start!r}"
            )
        elif isinstance(start, int | float) and start < 0:
            problems.append(f"{where}: fire_start must be >= 0 seconds, got {start}")
        elif isinstance(start, datetime):
            # YAML parses an unquoted ISO time itself; keep it as text for one parser.
            start = start.isoformat()
    interval = data.get("interval")
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0
    ):
        problems.append(f"{where}: interval must be a number of seconds > 0, got {interval!r}")
        interval = None
    times = data.get("times", "auto")
    if times not in TIME_SOURCES:
        problems.append(f"{where}: times must be one of {', '.join(TIME_SOURCES)}, got {times!r}")
    if problems:
        return None, problems
    return Label(
        fire_start=None
        if not fire
        else (float(start) if isinstance(start, int | float) else start),
        interval=None if interval is None else float(interval),
        times=str(times),
    ), []


def name_time(name: str) -> float | None:
    """The time written in a file name (epoch seconds, UTC; or a signed offset), or None."""
    offset = signed_offset(name)
    if offset is not None:
        return offset
    stem = Path(name).stem
    match = _NAME_TIME.search(stem)
    if match:
        year, month, day, hour, minute, second, fraction = match.groups()
        try:
            moment = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
            )
        except ValueError:
            return None
        return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)
    match = _NAME_EPOCH.search(stem)
    if match:
        return float(match.group(1)) + (float(f"0.{match.group(2)}") if match.group(2) else 0.0)
    return None


def exif_time(path: Path) -> float | None:
    """The EXIF DateTimeOriginal (else DateTime) of an image, read as UTC, or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            exif = image.getexif()
            text = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL) or exif.get(_EXIF_DATETIME)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC).timestamp()


def _frame_times(
    where: Path, frames: list[Path], label: Label
) -> tuple[tuple[float, ...] | None, str, list[str]]:
    """Frame times by the label's policy: (times, their source, problems)."""
    order = ("name", "exif", "interval") if label.times == "auto" else (label.times,)
    for source in order:
        if source == "interval":
            if label.interval is None:
                continue
            return tuple(index * label.interval for index in range(len(frames))), source, []
        read = name_time if source == "name" else None
        values = [read(f.name) if read else exif_time(f) for f in frames]
        if all(v is not None for v in values):
            times = tuple(float(v) for v in values if v is not None)
            steps = [b - a for a, b in itertools.pairwise(times)]
            if any(step <= 0 for step in steps):
                bad = next(i for i, step in enumerate(steps) if step <= 0)
                return (
                    None,
                    source,
                    [
                        f"{where}: frame times from the {source} do not increase in name order "
                        f"({frames[bad].name} then {frames[bad + 1].name})"
                    ],
                )
            return times, source, []
        if label.times == source:
            missing = next(f.name for f, v in zip(frames, values, strict=True) if v is None)
            return None, source, [f"{where}: times: {source}, but {missing} has no time there"]
    return (
        None,
        "",
        [
            f"{where}: no frame time: the file names and EXIF carry none, so give "
            "'interval: <seconds between frames>' in label.yaml"
        ],
    )


def _fire_time(
    where: Path, label: Label, frames: list[Path], times: tuple[float, ...], absolute: bool
) -> tuple[float | None, list[str]]:
    """The fire start as a time on the frames' clock."""
    start = label.fire_start
    if start is None:
        return None, []
    if isinstance(start, float):
        moment = times[0] + start
    elif start in {f.name for f in frames}:
        return times[[f.name for f in frames].index(start)], []
    else:
        try:
            moment = parse_iso(start)
        except ValueError:
            names = f"{frames[0].name} … {frames[-1].name}" if len(frames) > 1 else frames[0].name
            return None, [
                f"{where}: fire_start {start!r} is neither a frame of this sequence "
                f"({names}) nor an ISO 8601 time"
            ]
        if not absolute:
            return None, [
                f"{where}: fire_start {start!r} is a clock time, but the frame times come from "
                "'interval' (no clock): give a frame name or seconds from the first frame"
            ]
    if moment > times[-1]:
        return None, [f"{where}: fire_start {start!r} is after the last frame"]
    if moment < times[0] - 1e-6:
        # Every frame would count as after the fire: no fire-free time, and a time to detect
        # from the first frame. Mostly a clock time in another zone than the frames' names.
        return None, [
            f"{where}: fire_start {start!r} is before the first frame ({frames[0].name}, "
            f"{_utc(times[0])}): frame names and EXIF times are read as UTC; if they are local "
            "times, give fire_start in the same local time without a zone, or as a frame name"
        ]
    return moment, []


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_sequence(path: Path) -> tuple[Sequence | None, list[str]]:
    """Read and check one sequence folder: (sequence, problems)."""
    label_path = path / LABEL_FILE
    if not label_path.is_file():
        return None, [
            f"{path}: no {LABEL_FILE} (write 'fire_start: <first frame with visible smoke>' "
            "or 'fire: false')"
        ]
    label, problems = _parse_label(label_path)
    if label is None:
        return None, problems
    files = sorted(p for p in path.iterdir() if p.is_file())
    images = frame_order(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES)
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if (images and videos) or len(videos) > 1:
        return None, [f"{path}: holds both frames and a video, or several videos: keep one source"]
    if videos:
        start = label.fire_start
        if start is not None and not isinstance(start, float):
            return None, [
                f"{label_path}: in a video sequence fire_start is seconds of video time, got "
                f"{start!r}"
            ]
        return Sequence(
            name=path.name,
            path=path,
            label=label,
            frames=(),
            times=(),
            video=videos[0],
            fire_time=start if isinstance(start, float) else None,
            frame_seconds=label.interval or 0.0,
        ), []
    if not images:
        return None, [f"{path}: no frames (.jpg, .jpeg, .png) and no video"]
    times, source, problems = _frame_times(label_path, images, label)
    if times is None:
        return None, problems
    fire_time, problems = _fire_time(label_path, label, images, times, source != "interval")
    if problems:
        return None, problems
    if label.interval is not None:
        frame_seconds = label.interval
    elif len(times) > 1:
        frame_seconds = statistics.median(b - a for a, b in itertools.pairwise(times))
    else:
        return None, [f"{label_path}: a single frame needs 'interval' to count its time"]
    return Sequence(
        name=path.name,
        path=path,
        label=label,
        frames=tuple(images),
        times=times,
        video=None,
        fire_time=fire_time,
        frame_seconds=frame_seconds,
    ), []


def load_dataset(path: Path) -> list[Sequence]:
    """Every sequence of a dataset folder (or the folder itself when it is one sequence).

    Raises DatasetError listing every problem of every label, so one run shows them all.
    """
    if not path.is_dir():
        raise DatasetError([f"{path} is not a folder of sequences"])
    if (path / LABEL_FILE).exists():
        folders = [path]
    else:
        folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(
            [f"{path} holds no sequence: make one sub-folder per sequence with its {LABEL_FILE}"]
        )
    sequences: list[Sequence] = []
    problems: list[str] = []
    for folder in folders:
        sequence, found = load_sequence(folder)
        problems += found
        if sequence is not None:
            sequences.append(sequence)
    if problems:
        raise DatasetError(problems)
    return sequences


def describe_label(sequence: Sequence) -> dict[str, Any]:
    """The label as JSON, for the report."""
    return {
        "fire_start": sequence.label.fire_start,
        "interval": sequence.label.interval,
        "times": sequence.label.times,
    }
