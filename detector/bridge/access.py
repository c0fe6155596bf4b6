"""What the API refuses of a camera's configuration: its token, or its pose.

A refused token (401, 403, 406) or a pose that is not among the camera's active poses
(deactivated, deleted, or another camera's) is never the fault of one detection: the camera's
delivery pauses, nothing is marked failed, and the bridge shows it as a fault (`token of <cam>`
or `pose of <cam>`) until the API accepts it again.

Each call that meets a refusal (detections, heartbeat, last image, ...) reports it under its own
name. A refusal of detections is withdrawn only by delivery itself (a detection delivered, or
`GET poses/` asked again): a heartbeat that works does not hide detections that are refused (the
health flapped 16 times in 33 s when the API refused detections but took heartbeats). A duty
that goes through proves the token works: it withdraws the token refusals of every duty, and
tells delivery to ask again at once if detections were refused for the token. The pose is fine
once `GET poses/` lists it or a detection went through with it. The reason shown is that of the
first call still refused, so it does not change at every call either.

All of this runs on the bridge's event loop (delivery and duties share it).
"""

from __future__ import annotations

from collections.abc import Callable

from detector.supervise import Health

TOKEN, POSE = "token", "pose"
DETECTIONS = "detections"


def access_part(kind: str, camera: str) -> str:
    """The name of a camera's token or pose in the bridge's health."""
    return f"{kind} of {camera}"


def token_reason(camera: str, detail: str) -> str:
    """The fault shown for a refused token."""
    return (
        f"the API refuses the token of camera {camera} ({detail}): its detections wait in the"
        f" outbox (nothing is lost) and go once it is accepted; check bridge.cameras.{camera}"
    )


def pose_reason(camera: str, pose_id: int, detail: str) -> str:
    """The fault shown for a pose the API does not list among the camera's active poses."""
    return (
        f"pose {pose_id} is not among the active poses of camera {camera} at the API"
        f" ({detail}): its detections wait in the outbox (nothing is lost) and go once the pose"
        f" is active again; check bridge.cameras.{camera}.pose_id"
    )


class ApiAccess:
    """Per camera, the calls the API refuses for its token or pose, and the health it shows."""

    def __init__(self, health: Health) -> None:
        self.health = health
        # (kind, camera) -> call -> reason, in the order the calls were refused
        self._refusals: dict[tuple[str, str], dict[str, str]] = {}
        self._token_back: list[Callable[[str], None]] = []

    def on_token_back(self, callback: Callable[[str], None]) -> None:
        """Call `callback(camera)` when a duty finds the camera's token accepted while its
        detections are paused for the token (delivery then asks at once, not after its
        backoff)."""
        self._token_back.append(callback)

    def refused(self, kind: str, camera: str, call: str, reason: str) -> None:
        """`call` of `camera` is refused for its token or pose (`kind`)."""
        calls = self._refusals.setdefault((kind, camera), {})
        calls.setdefault(call, reason)
        self.health.fault(access_part(kind, camera), next(iter(calls.values())))

    def accepted(self, camera: str, call: str, kind: str) -> None:
        """`call` of `camera` went through (or was found fine): its `kind` refusal is over."""
        self._withdraw(kind, camera, lambda refused: refused == call)

    def token_works(self, camera: str) -> None:
        """A duty went through with the camera's token: the token refusals of every duty are
        over; detections are asked again by delivery (told here)."""
        self._withdraw(TOKEN, camera, lambda refused: refused != DETECTIONS)
        if DETECTIONS in self._refusals.get((TOKEN, camera), {}):
            for callback in self._token_back:
                callback(camera)

    def pose_works(self, camera: str) -> None:
        """The API lists the pose among the camera's active ones, or took a detection with it:
        every pose refusal of the camera is over."""
        self._withdraw(POSE, camera, lambda refused: True)

    def _withdraw(self, kind: str, camera: str, which: Callable[[str], bool]) -> None:
        calls = self._refusals.get((kind, camera))
        if calls is None:
            return
        for call in [call for call in calls if which(call)]:
            del calls[call]
        if calls:
            self.health.fault(access_part(kind, camera), next(iter(calls.values())))
        else:
            del self._refusals[(kind, camera)]
            self.health.ok(access_part(kind, camera))

    def refusal(self, camera: str, call: str) -> str | None:
        """Why `call` of `camera` is refused now (None: it is not)."""
        for kind in (TOKEN, POSE):
            reason = self._refusals.get((kind, camera), {}).get(call)
            if reason is not None:
                return reason
        return None
