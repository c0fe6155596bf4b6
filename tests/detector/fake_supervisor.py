"""A stand-in for the Home Assistant Supervisor's HTTP API: only `GET /services/mqtt`.

The real Supervisor cannot run here; the add-on asks it for one thing, the MQTT broker, and
this server answers as the Supervisor does (supervisor/api/services.py, services/modules/
mqtt.py, api/utils.py of home-assistant/supervisor):

- the add-on's token is required (`Authorization: Bearer <SUPERVISOR_TOKEN>`): without it the
  security middleware answers 401 in plain text;
- `{"result": "ok", "data": {"host", "port", "ssl", "protocol", "username", "password",
  "addon"}}` when an add-on provides MQTT (the data the provider registered, with its slug);
- `{"result": "error", "message": "Service not enabled"}` with status 400 when none does;
- 404 `{"result": "error", "message": "Service does not exist"}` for another service name.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeSupervisor:
    """Serves the MQTT service's data (or none) on `host:port` until stopped."""

    def __init__(
        self,
        token: str,
        mqtt: dict[str, Any] | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.mqtt = mqtt
        self.requests: list[tuple[str, str | None]] = []
        supervisor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                supervisor.requests.append((self.path, auth))
                if auth != f"Bearer {supervisor.token}":
                    # aiohttp's HTTPUnauthorized, raised by the security middleware: plain text.
                    self._text(401, "401: Unauthorized")
                elif self.path.rstrip("/") != "/services/mqtt":
                    self._answer(404, {"result": "error", "message": "Service does not exist"})
                elif supervisor.mqtt is None:
                    self._answer(400, {"result": "error", "message": "Service not enabled"})
                else:
                    self._answer(200, {"result": "ok", "data": supervisor.mqtt})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _text(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.host, self.port = host, int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL of the API."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeSupervisor:
        """Serve in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def mosquitto_service(host: str, port: int, username: str, password: str) -> dict[str, Any]:
    """The MQTT service data as the Mosquitto add-on registers it (its slug beside it)."""
    return {
        "host": host,
        "port": port,
        "ssl": False,
        "protocol": "3.1.1",
        "username": username,
        "password": password,
        "addon": "core_mosquitto",
    }
