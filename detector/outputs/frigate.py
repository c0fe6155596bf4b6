"""Frigate events: one per alert, created when it starts and ended when it ends.

The HTTP calls run on an asyncio loop the caller already runs (the built-in poller's, with its
HTTP session), never on the scoring path; a failure is reported, counted and logged, and
changes nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import aiohttp

from detector.config.sources import FrigateEventsConfig

_LOGGER = logging.getLogger(__name__)

Report = Callable[[str, str, str], None]  # camera, reason, message


class HttpLoop(Protocol):
    """An asyncio loop run in a thread of its own, with a shared HTTP session on it."""

    loop: asyncio.AbstractEventLoop

    def session(self) -> aiohttp.ClientSession:
        """The shared HTTP session (created on the loop)."""
        ...


class FrigateError(Exception):
    """Frigate answered, but not with what the events API promises."""


class FrigateEvents:
    """Creates a Frigate event when an alert starts and ends it when the alert ends."""

    def __init__(self, http: HttpLoop, report: Report) -> None:
        self.http = http
        self.report = report
        self._events: dict[str, str] = {}

    def alert(self, camera: str, config: FrigateEventsConfig, started: bool, score: float) -> None:
        """Called from the service on alert start/end; the HTTP call runs on the HTTP loop."""
        asyncio.run_coroutine_threadsafe(self._call(camera, config, started, score), self.http.loop)

    async def _call(
        self, camera: str, config: FrigateEventsConfig, started: bool, score: float
    ) -> None:
        base = config.url.rstrip("/")
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        timeout = aiohttp.ClientTimeout(total=config.timeout)
        session = self.http.session()
        try:
            if started:
                url = f"{base}/api/events/{config.camera}/{config.label}/create"
                body = {
                    "score": round(score, 3),
                    "sub_label": "SmokeWatch",
                    "duration": None,
                    "include_recording": True,
                }
                async with session.post(
                    url, json=body, headers=headers, timeout=timeout
                ) as response:
                    answer = await response.json(content_type=None)
                    if (
                        response.status != 200
                        or not isinstance(answer, dict)
                        or "event_id" not in answer
                    ):
                        raise FrigateError(f"HTTP {response.status}: {str(answer)[:200]}")
                    self._events[camera] = str(answer["event_id"])
                    _LOGGER.info("Camera %s: Frigate event %s created", camera, answer["event_id"])
            else:
                event = self._events.pop(camera, None)
                if event is None:
                    return
                url = f"{base}/api/events/{event}/end"
                async with session.put(url, json={}, headers=headers, timeout=timeout) as response:
                    if response.status != 200:
                        raise FrigateError(f"HTTP {response.status} ending event {event}")
                _LOGGER.info("Camera %s: Frigate event %s ended", camera, event)
        except (FrigateError, aiohttp.ClientError, TimeoutError, ValueError) as err:
            self.report(camera, "frigate_event", f"camera {camera}: Frigate event failed: {err}")
