"""Error types shared by every part of SmokeWatch."""

from __future__ import annotations


class SmokeWatchError(Exception):
    """Base of every error SmokeWatch raises on purpose."""


class FrameError(SmokeWatchError):
    """A payload that cannot be turned into a frame.

    `reason` is a short machine-readable word (empty, too_large, not_an_image, corrupt,
    truncated, too_many_pixels, bad_base64, bad_envelope) used for counters; the message is
    for people.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModelError(SmokeWatchError):
    """The model cannot be found, downloaded, loaded or does not have a detector's shape."""


class ConfigError(SmokeWatchError):
    """The configuration is invalid; `errors` lists one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class InferenceError(SmokeWatchError):
    """The model could not score a frame (e.g. the inference server is down or timed out).

    Like FrameError, `reason` is a short word for the camera's error counters.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
