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


# userinfo the old check (`[^/\s]*@` after the scheme) and the log redaction both missed: a
# password holding '/' or a space passed, and then showed in 7 log lines, the retained stats
# and the outbox.
ODD_USERINFO = [
    "http://buser:pa/Secr3t@api.example:8080/",
    "http://buser:pa Secr3t@api.example",
    "https://buser:pa\tSecr3t@api.example",
    "https://buser:Secr3t/@api.example/api",
    "https://:Secr3t@api.example",
    "https://buser:p%2FSecr3t@api.example",
    "https://buser:pa#Secr3t@api.example",
    "https://buser:pa?Secr3t@api.example",
    "https://buser:pa\\Secr3t@api.example",
    "https://api.example@evil.example/Secr3t",
]


@pytest.mark.parametrize("url", ODD_USERINFO)
def test_credentials_in_the_url_are_refused_whatever_they_hold(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate({"bridge": {"url": url}})
    message = str(caught.value)
    assert "bridge.url" in message and "without user:password@" in message, message
    assert "Secr3t" not in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://api.example/?token=1", "without ?query or #fragment"),
        ("https://api.example#top", "without ?query or #fragment"),
        ("https://api.example?", "without ?query or #fragment"),
        ("https://api example.org", "spaces"),
        ("https://api.example:99999", "port"),
        ("https://api.example:http", "port"),
        ("https://[::1", "host"),
        ("https://", "http:// or https:// URL"),
        ("ftp://api.example", "http:// or https:// URL"),
        ("https://api_ex$ample.org", "host"),
    ],
)
def test_a_url_that_can_never_work_is_refused(url: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate({"bridge": {"url": url}})
    assert "bridge.url" in str(caught.value) and reason in str(caught.value)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://api.pyronear.org", "https://api.pyronear.org"),
        ("https://api.pyronear.org/", "https://api.pyronear.org"),
        ("http://127.0.0.1:5050", "http://127.0.0.1:5050"),
        ("http://[::1]:5050/pyronear/", "http://[::1]:5050/pyronear"),
        ("HTTPS://API.example.org:443", "HTTPS://API.example.org:443"),
    ],
)
def test_plain_base_urls_are_kept(url: str, kept: str) -> None:
    config = validate({"cameras": {"a": {}}, "bridge": {"url": url}})
    assert config.bridge.url == kept


def test_check_config_and_bridge_refuse_odd_credentials_without_printing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detector.cli import main

    config = tmp_path / "c.yaml"
    config.write_text(
        "cameras: {a: {}}\n"
        "bridge:\n  url: 'http://buser:pa/Secr3t@api.example'\n"
        "  cameras: {a: {token: t, pose_id: 1}}\n"
    )
    assert main(["check-config", str(config)]) == 1
    assert main(["bridge", "-c", str(config)]) == 1
    assert main(["bridge", "status", "-c", str(config)]) == 1
    captured = capsys.readouterr()
    assert "bridge.url" in captured.out + captured.err
    assert "Secr3t" not in captured.out + captured.err
