"""A camera's health status (detector/service/cameras.py), from its timings alone."""

from __future__ import annotations

import pytest

from detector.service.cameras import camera_status

WINDOW, OFFLINE = 30.0, 150.0


def status(
    silence: float | None,
    *,
    good: float | None = 1.0,
    refused: float | None = None,
    frozen: bool = False,
) -> str | None:
    """The status at t=1000 after `silence` seconds without a frame; good/refused are ages."""
    now = 1000.0
    return camera_status(
        now,
        None if silence is None else now - silence,
        window=WINDOW,
        offline_after=OFFLINE,
        last_good_at=None if good is None else now - good,
        last_refused_at=None if refused is None else now - refused,
        frozen=frozen,
    )


@pytest.mark.parametrize(
    ("silence", "expected"),
    [(None, "offline"), (0.0, "online"), (30.0, "online"), (30.1, "stale"), (150.0, "stale")],
)
def test_silence(silence: float | None, expected: str) -> None:
    assert status(silence) == expected


def test_long_silence_is_offline() -> None:
    assert status(150.1) == "offline"


def test_frames_that_are_all_refused_make_it_refused() -> None:
    assert status(1.0, good=None, refused=1.0) == "refused"  # never scored one
    assert status(1.0, good=31.0, refused=1.0) == "refused"  # none scored within the window
    assert status(1.0, good=5.0, refused=1.0) == "online"  # some still scored
    assert status(1.0, good=None, refused=31.0) == "online"  # the refusals are old


def test_frames_not_looked_at_yet_leave_the_status_as_it_was() -> None:
    """A blind camera must not show `online` between its first frame's arrival and its
    refusal: until a frame is scored or refused, the status does not change."""
    assert status(0.5, good=None, refused=None) is None
    assert status(40.0, good=None, refused=None) == "stale"  # silence still counts


def test_a_frozen_view_is_not_online_but_refusals_come_first() -> None:
    assert status(1.0, frozen=True) == "frozen"
    assert status(1.0, good=None, refused=1.0, frozen=True) == "refused"
    assert status(40.0, frozen=True) == "stale"  # silence says more than the last view
