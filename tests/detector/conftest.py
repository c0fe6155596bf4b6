"""Shared fixtures: a real broker, the tiny test model, paths to the development data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.detector.broker import Broker
from tests.detector.fake_pyronear import FakePyronear
from tests.detector.tiny_model import make_tiny_model

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test model (its score is the centre's grey level), made once per run."""
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A real MQTT broker on a free loopback port, removed after the test."""
    b = Broker().start()
    try:
        yield b
    finally:
        b.close()


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"development data {path} is absent (it lives in ../shared/data)")
    return path


@pytest.fixture
def api() -> Iterator[FakePyronear]:
    """The contract-enforcing fake Pyronear API on a free loopback port."""
    server = FakePyronear().start()
    try:
        yield server
    finally:
        server.stop()
