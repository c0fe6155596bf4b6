"""What the service keeps about each camera, and the camera's health status.

The status is what HA's Status sensor shows and what the camera's entities' availability follows:
`online`, `frozen` (frames arrive with the same bytes over and over), `refused` (frames arrive
but none could be scored within the stale window), `stale` (no frame for `stale_after`
intervals) and `offline` (none for `offline_after` intervals, or never). A camera is `online`
once one of its frames was scored (or, while it is disabled, checked): a frame that arrived
but has not been looked at yet says nothing, so the status waits for it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from detector.config import CameraConfig
from detector.service.alerts import CameraAlert
from detector.service.false_alarm import MAX_EVENTS_SHOWN, FalseAlarm
from detector.service.settings import LiveSettings


@dataclass
class CameraWatch:
    """What the service keeps about one camera beside the pipeline's scoring state."""

    config: CameraConfig  # the file's values: never changed at run time
    settings: LiveSettings
    alert: CameraAlert
    status: str = "offline"
    view: str | None = None  # the view state last published (clear, night, frozen, obscured)
    last_jpeg: bytes | None = None
    scored: int = 0  # frames scored (refused ones are not)
    alert_image: bytes | None = None  # kept to publish again to a broker that lost it
    # time.monotonic() of the last frame scored and of the last one refused (health)
    last_good_at: float | None = None
    last_refused_at: float | None = None
    test_timer: threading.Timer | None = None
    false_alarms: deque[FalseAlarm] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS_SHOWN))
    frame_published_at: float | None = None  # monotonic
    # The latest scored frames (capture time, JPEG), as many as the vote's window: the frames
    # of an alert dismissed as "Not smoke" are kept from these (false_alarm_store.py).
    recent: deque[tuple[float, bytes]] = field(default_factory=deque)

    @classmethod
    def of(cls, config: CameraConfig, model: str) -> CameraWatch:
        """A camera as the file configures it, before any frame."""
        return cls(
            config,
            LiveSettings.from_file(config.id, enabled=config.enabled, threshold=config.threshold),
            CameraAlert(model),
            recent=deque(maxlen=config.nb_frames),
        )

    def status_at(self, now: float, last_frame_at: float | None) -> str:
        """The status at monotonic time `now`, given when the last frame arrived."""
        config = self.config
        status = camera_status(
            now,
            last_frame_at,
            window=config.stale_after * config.interval,
            offline_after=config.offline_after * config.interval,
            last_good_at=self.last_good_at,
            last_refused_at=self.last_refused_at,
            frozen=self.view == "frozen",
        )
        return self.status if status is None else status


def camera_status(
    now: float,
    last_frame_at: float | None,
    *,
    window: float,
    offline_after: float,
    last_good_at: float | None,
    last_refused_at: float | None,
    frozen: bool,
) -> str | None:
    """A camera's status from its timings (seconds, all on one monotonic clock); None while
    frames arrive but none was scored or refused yet (the status stays as it was).

    `window` is the stale window (stale_after × interval), `offline_after` the silence after
    which the camera is offline.
    """
    if last_frame_at is None:
        return "offline"
    silence = now - last_frame_at
    if silence > window:
        return "stale" if silence <= offline_after else "offline"
    if last_good_at is None and last_refused_at is None:
        return None  # the first frames have not been looked at yet
    # Frames arrive but none could be scored within the window: the camera sends something,
    # yet the detector sees nothing (a wrong format, a broken encoder).
    refused_lately = last_refused_at is not None and now - last_refused_at <= window
    if refused_lately and (last_good_at is None or now - last_good_at > window):
        return "refused"
    if frozen:  # frames that keep arriving with the same bytes show nothing new
        return "frozen"
    return "online"
