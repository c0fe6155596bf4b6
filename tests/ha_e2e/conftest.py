"""The end-to-end tests talk to real processes over loopback sockets."""

from __future__ import annotations

import pytest
import pytest_socket


@pytest.fixture(autouse=True)
def loopback_sockets() -> None:
    """Undo pytest-homeassistant-custom-component's socket guard (loopback stays the only host).

    The guard protects in-process tests from the network; these tests drive HA, the broker
    and the detector as processes on 127.0.0.1.
    """
    pytest_socket.enable_socket()
