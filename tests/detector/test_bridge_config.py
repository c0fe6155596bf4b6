"""The `bridge:` section: defaults, validation errors, tokens kept out of reprs."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.config import load_config, validate
from detector.errors import ConfigError


def test_defaults() -> None:
    bridge = validate({"cameras": {"a": {}}}).bridge
    assert bridge.enabled is False and bridge.url == "https://api.pyronear.org"
    assert bridge.outbox == "~/.local/share/smokewatch/outbox.sqlite3"
    assert (bridge.client_id, bridge.timeout, bridge.max_items) == ("smokewatch-bridge", 10, 10000)
    assert (bridge.max_bytes, bridge.upload_max_width, bridge.upload_max_height) == (
        2147483648,
        1280,
        720,
    )
    assert (bridge.backoff_initial, bridge.backoff_max) == (1, 300)
    assert (bridge.heartbeat_interval, bridge.last_image_interval, bridge.masks_interval) == (
        30,
        3600,
        3600,
    )
    assert bridge.pose_image_hour == 12 and bridge.send_crops is False and bridge.cameras == {}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"url": "api.pyronear.org"}, "bridge.url"),
        ({"colour": 1}, "bridge.colour: unknown key"),
        ({"cameras": {"a": {"token": "x"}}}, "bridge.cameras.a.pose_id"),
        ({"cameras": {"a": {"token": "x", "pose_id": 1, "extra": 2}}}, "extra: unknown key"),
        ({"backoff_max": 0}, "bridge.backoff_max"),
        ({"pose_image_hour": 24}, "bridge.pose_image_hour"),
    ],
)
def test_errors_name_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate({"bridge": section})
    assert message in str(caught.value)


def test_tokens_from_secrets_never_show(tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text("cam_token: eyJhbGciOi.secret-part.sig\n")
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        "cameras: {ridge: {}}\n"
        "bridge:\n  cameras:\n    ridge: {token: !secret cam_token, pose_id: 42}\n"
    )
    config = load_config(config_file)
    camera = config.bridge.cameras["ridge"]
    assert str(camera.token) == "eyJhbGciOi.secret-part.sig" and camera.pose_id == 42
    assert "secret-part" not in repr(config) and "secret-part" not in repr(camera)
