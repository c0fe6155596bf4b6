"""The Home Assistant Supervisor's side of the add-on: the MQTT broker it hands out.

An add-on that declares `services: ["mqtt:need"]` asks the Supervisor for the broker with the
token the Supervisor put in its environment (SUPERVISOR_TOKEN): `GET http://supervisor/services/
mqtt` answers the host, port, credentials and TLS flag of the Mosquitto add-on (or whichever
add-on provides MQTT).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from detector.errors import SmokeWatchError

_LOGGER = logging.getLogger(__name__)

SUPERVISOR_TOKEN_ENV = "SUPERVISOR_TOKEN"
SUPERVISOR_URL = "http://supervisor"
SUPERVISOR_ATTEMPTS = 5
SUPERVISOR_RETRY_DELAY = 2.0


@dataclass(frozen=True)
class Broker:
    """The MQTT broker the Supervisor hands to add-ons that need one."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False


class SupervisorError(SmokeWatchError):
    """The Supervisor did not hand out an MQTT broker."""


def supervisor_broker(
    token: str,
    url: str = SUPERVISOR_URL,
    *,
    attempts: int = SUPERVISOR_ATTEMPTS,
    retry_delay: float = SUPERVISOR_RETRY_DELAY,
) -> Broker:
    """The broker of the Supervisor's MQTT service (`GET <url>/services/mqtt`).

    The Supervisor answers `{"result": "ok", "data": {"host", "port", "ssl", "protocol",
    "username", "password", "addon"}}`, or `{"result": "error", "message"}` with an HTTP error
    status (400 "Service not enabled" when no add-on provides MQTT). A Supervisor that cannot
    be reached is asked again a few times (it may be starting); an answer is final.
    """
    request = urllib.request.Request(
        f"{url.rstrip('/')}/services/mqtt",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    last: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(retry_delay)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.loads(response.read())
            break
        except urllib.error.HTTPError as err:
            message = _error_message(err)
            raise SupervisorError(
                f"the Supervisor gave no MQTT broker (HTTP {err.code}: {message}): install and"
                " start the Mosquitto broker add-on (or another that provides MQTT)"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            last = err
            _LOGGER.warning("The Supervisor at %s does not answer (%s): asking again", url, err)
    else:
        raise SupervisorError(f"the Supervisor at {url} cannot be reached: {last}")
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict) or answer.get("result") != "ok":
        raise SupervisorError(f"the Supervisor's MQTT answer is not understood: {answer!r:.200}")
    try:
        return Broker(
            host=str(data["host"]),
            port=int(data["port"]),
            username=None if data.get("username") is None else str(data["username"]),
            password=None if data.get("password") is None else str(data["password"]),
            ssl=bool(data.get("ssl", False)),
        )
    except (KeyError, TypeError, ValueError):
        raise SupervisorError("the Supervisor's MQTT answer has no usable host and port") from None


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(err.read())
    except (OSError, ValueError):
        return str(err.reason)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(err.reason)
