"""Parity of the vote with a reference written from DESIGN.md §5, on fuzzed box sequences.

The sequences are built to hit every rule where Pyronear's code decides a tie: boxes on a
coarse grid (shared edges, duplicates, zero-area boxes) and confidences on a dyadic grid
(exactly equal scores, and sums that are exact whatever the summation order, so that every
comparison can be exact). A second run uses continuous values, as a real model gives.
"""

from __future__ import annotations

import numpy as np
import pytest

from detector.vote import TemporalVote
from tests.detector.pyronear_reference import ReferenceVote

SEQUENCES = 400
FRAMES = 14


def _frame(rng: np.random.Generator, *, grid: bool) -> np.ndarray:
    count = int(rng.integers(0, 6))
    if grid:
        x1 = rng.integers(0, 8, count) / 8
        y1 = rng.integers(0, 4, count) / 8
        # Width and height 0..3 cells: a zero width or height is a box without area.
        x2 = np.minimum(x1 + rng.integers(0, 4, count) / 8, 1.0)
        y2 = np.minimum(y1 + rng.integers(0, 4, count) / 8, 1.0)
        conf = rng.integers(1, 17, count) / 16
    else:
        x1, y1 = rng.random(count) * 0.8, rng.random(count) * 0.8
        x2 = x1 + rng.random(count) * 0.3
        y2 = y1 + rng.random(count) * 0.3
        conf = 0.05 + rng.random(count) * 0.9
    return np.stack([x1, y1, x2, y2, conf], axis=1).astype(np.float32).reshape(-1, 5)


def _compare(seed: int, *, grid: bool) -> int:
    """Run one sequence through both votes; return the number of frames compared."""
    rng = np.random.default_rng(seed)
    nb = int(rng.integers(1, 8))
    thresh = float(rng.choice([0.0625, 0.125, 0.25, 0.375])) if grid else float(rng.random() / 2)
    ours, reference = TemporalVote(nb, thresh), ReferenceVote(nb, thresh)
    for index in range(FRAMES):
        frame = _frame(rng, grid=grid)
        result = ours.update(frame)
        conf, boxes, ongoing = reference.update([[float(v) for v in row] for row in frame])
        where = f"seed {seed}, nb {nb}, frame {index}"
        assert result.ongoing == ongoing, where
        if grid:
            assert result.score == conf, where
            assert result.boxes.tolist() == np.asarray(boxes, dtype=np.float32).tolist(), where
        else:
            assert result.score == pytest.approx(conf, abs=1e-12), where
            np.testing.assert_allclose(
                result.boxes, np.asarray(boxes, dtype=np.float32).reshape(-1, 5), atol=1e-6
            )
    return FRAMES


def test_vote_matches_reference_on_tie_heavy_sequences() -> None:
    compared = sum(_compare(seed, grid=True) for seed in range(SEQUENCES))
    assert compared == SEQUENCES * FRAMES


def test_vote_matches_reference_on_continuous_sequences() -> None:
    compared = sum(_compare(10_000 + seed, grid=False) for seed in range(SEQUENCES // 2))
    assert compared == SEQUENCES // 2 * FRAMES


def test_fuzz_reaches_the_tie_rules() -> None:
    """The fuzzed sequences do exercise ties and alerts, else parity would prove little."""
    alerts = ties = degenerate = 0
    for seed in range(SEQUENCES):
        rng = np.random.default_rng(seed)
        nb = int(rng.integers(1, 8))
        thresh = float(rng.choice([0.0625, 0.125, 0.25, 0.375]))
        vote = TemporalVote(nb, thresh)
        for _ in range(FRAMES):
            frame = _frame(rng, grid=True)
            alerts += vote.update(frame).event == "start"
            ties += len(frame) != len(np.unique(frame[:, 4]))
            degenerate += int(((frame[:, 2] <= frame[:, 0]) | (frame[:, 3] <= frame[:, 1])).sum())
    assert alerts > 100 and ties > 500 and degenerate > 500
