"""Which of the user's frames calibrate `smokewatch optimize` and which prove its result.

The proof is worth something only on frames the calibration never saw: whole sequences are
held back when the input is a folder of sequences (eval's layout, e.g. the frames the detector
keeps of dismissed alerts), every Nth frame otherwise; and a frame to check on whose bytes are a
calibration frame's is dropped from the check, whichever folder it came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from detector.eval_dataset import LABEL_FILE
from detector.eval_dataset import Sequence as EvalSequence
from detector.replay import ReplayFrame

_T = TypeVar("_T")


def is_sequences(path: Path) -> bool:
    """True when `path` is a labelled sequence or a folder of them (eval's dataset layout)."""
    if not path.is_dir():
        return False
    if (path / LABEL_FILE).is_file():
        return True
    return any((child / LABEL_FILE).is_file() for child in path.iterdir() if child.is_dir())


def evenly(frames: Sequence[ReplayFrame], most: int) -> list[ReplayFrame]:
    """At most `most` of `frames`, spread evenly over them (0: all)."""
    if most <= 0 or len(frames) <= most:
        return list(frames)
    return [frames[index * len(frames) // most] for index in range(most)]


def split_frames(
    frames: Iterable[ReplayFrame], holdout_every: int
) -> tuple[list[ReplayFrame], list[ReplayFrame]]:
    """(calibration, held back): every `holdout_every`-th frame is held back (0: none)."""
    return _every_nth(list(frames), holdout_every)


def held_back_only(
    held: Sequence[ReplayFrame], calibration: Sequence[ReplayFrame]
) -> tuple[list[ReplayFrame], int, int]:
    """The held-back frames whose bytes are no calibration frame's, each once; and how many
    were calibration frames, how many repeats."""
    used = {_digest(frame.data) for frame in calibration}
    seen: set[bytes] = set()
    kept: list[ReplayFrame] = []
    calibrated = repeats = 0
    for frame in held:
        digest = _digest(frame.data)
        if digest in used:
            calibrated += 1
        elif digest in seen:
            repeats += 1
        else:
            seen.add(digest)
            kept.append(frame)
    return kept, calibrated, repeats


def sequences_held_back(
    sequences: Sequence[EvalSequence], calibration: Sequence[ReplayFrame]
) -> tuple[list[EvalSequence], int]:
    """The sequences none of whose frames was used for calibration, and how many were not."""
    used = {_digest(frame.data) for frame in calibration}
    kept = [s for s in sequences if not any(_digest(f.data) in used for f in s.read())]
    return kept, len(sequences) - len(kept)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def split_sequences(
    sequences: Sequence[EvalSequence], holdout_every: int
) -> tuple[list[EvalSequence], list[EvalSequence]]:
    """(calibration, held back) whole sequences: every `holdout_every`-th is held back (0:
    none), and at least one whenever there are two or more."""
    calibration, held = _every_nth(sequences, holdout_every)
    if holdout_every > 0 and not held and len(calibration) > 1:
        held.append(calibration.pop())
    return calibration, held


def _every_nth(items: Sequence[_T], every: int) -> tuple[list[_T], list[_T]]:
    """(the rest, every `every`-th item) in order; 0 holds none back."""
    rest: list[_T] = []
    held: list[_T] = []
    for index, item in enumerate(items):
        (held if every > 0 and index % every == every - 1 else rest).append(item)
    return rest, held
