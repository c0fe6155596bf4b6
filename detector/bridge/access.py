"""What the API refuses of a camera's configuration: its token, or its pose.

A refused token (401, 403, 406) or a pose that is not among the camera's active poses
(deactivated, deleted, or another camera's) is never the fault of one detection: the camera's
delivery pauses, nothing is marked failed, and the bridge shows it as a fault (`token of <cam>`
or `pose of <cam>`) until the API accepts it again.

Each call that meets a refusal (detections, heartbeat, last image, ...) reports it under its own
name, and only a success of that same call withdraws it: the fault shows while any call still
meets it. So a heartbeat that works does not hide detections that are refused (the health
flapped 16 times in 33 s when the API refused detections but took heartbeats). The reason shown
is that of the first call still refused, so it does not change at every call either.

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
        """Call `callback(camera)` when a call other than detections finds the camera's token
        accepted again after refusing it (delivery then tries at once, not after its backoff)."""
        self._token_back.append(callback)

    def refused(self, kind: str, camera: str, call: str, reason: str) -> None:
        """`call` of `camera` is refused for its token or pose (`kind`)."""
        calls = self._refusals.setdefault((kind, camera), {})
        calls.setdefault(call, reason)
        self.health.fault(access_part(kind, camera), next(iter(calls.values())))

    def accepted(self, camera: str, call: str, kinds: tuple[str, ...] = (TOKEN, POSE)) -> None:
        """`call` of `camera` went through: it no longer reports a refusal of these kinds."""
        for kind in kinds:
            calls = self._refusals.get((kind, camera))
            if calls is None or call not in calls:
                continue
            del calls[call]
            if calls:
                self.health.fault(access_part(kind, camera), next(iter(calls.values())))
            else:
                del self._refusals[(kind, camera)]
                self.health.ok(access_part(kind, camera))
            if kind == TOKEN and call != DETECTIONS:
                for callback in self._token_back:
                    callback(camera)

    def refusal(self, camera: str, call: str) -> str | None:
        """Why `call` of `camera` is refused now (None: it is not)."""
        for kind in (TOKEN, POSE):
            reason = self._refusals.get((kind, camera), {}).get(call)
            if reason is not None:
                return reason
        return None
