"""Telling a client-id clash from an ordinary MQTT disconnection (service and bridge clients)."""

from __future__ import annotations

import logging
import time

_LOGGER = logging.getLogger(__name__)

# A connection the broker closes this soon after it opened, this many times in a row, is
# almost always a second client with the same client id (each connect kicks the other off;
# MQTT 3.1.1 gives no reason, paho says "Unspecified error").
SHORT_CONNECTION = 10.0
SHORT_CONNECTIONS_HINT = 3


class FlapWatch:
    """Tells a client-id clash from an ordinary disconnection, and says it once."""

    def __init__(self, client_id: str, what: str) -> None:
        self.client_id, self.what = client_id, what
        self.connected_at: float | None = None
        self.short_in_a_row = 0
        self.warned = False

    def connected(self) -> None:
        """A connection opened."""
        self.connected_at = time.monotonic()

    def disconnected(self) -> None:
        """A connection closed (not by us): log the likely cause once when it keeps flapping."""
        if self.connected_at is None:
            return
        lasted = time.monotonic() - self.connected_at
        self.connected_at = None
        self.short_in_a_row = self.short_in_a_row + 1 if lasted < SHORT_CONNECTION else 0
        if self.short_in_a_row >= SHORT_CONNECTIONS_HINT and not self.warned:
            self.warned = True
            _LOGGER.error(
                "%s: the broker closed the connection %d times in a row within %.0f s of"
                " opening it: another client is probably connected with the same client id"
                " %r (two processes with one config?); give each its own client_id",
                self.what,
                self.short_in_a_row,
                SHORT_CONNECTION,
                self.client_id,
            )
