"""Configuration: validation, errors with key paths, secrets, check-config."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from detector.cli import main
from detector.config import check_config_main, load_config, validate
from detector.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, secrets: str | None = None) -> Path:
    path = tmp_path / "smokewatch.yaml"
    path.write_text(textwrap.dedent(text))
    if secrets is not None:
        (tmp_path / "secrets.yaml").write_text(textwrap.dedent(secrets))
    return path


def errors_of(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate(data)
    return caught.value.errors


def test_example_config_is_valid(tmp_path: Path) -> None:
    shutil.copy(REPO / "config" / "smokewatch.yaml", tmp_path / "smokewatch.yaml")
    shutil.copy(REPO / "config" / "secrets.yaml.example", tmp_path / "secrets.yaml")
    config = load_config(tmp_path / "smokewatch.yaml")
    assert list(config.cameras) == ["backyard", "ridge"]
    assert [mask.name for mask in config.cameras["backyard"].masks] == ["chimney", "dusty road"]
    assert config.mqtt.password == "change-me"


def test_defaults_and_overrides() -> None:
    config = validate(
        {"detection": {"interval": 10}, "cameras": {"a": None, "b": {"nb_frames": 4}}}
    )
    a, b = config.cameras["a"], config.cameras["b"]
    assert (a.interval, a.threshold, a.nb_frames) == (10, 0.25, 6)
    assert (b.interval, b.nb_frames) == (10, 4)
    assert a.name == "A" and a.image_topic == "smokewatch/a/image"
    assert config.mqtt.port == 1883 and config.model.conf_thresh == 0.05
    assert config.mqtt.node_id == "smokewatch"


def test_topic_prefix_changes_default_topics() -> None:
    config = validate({"mqtt": {"topic_prefix": "site/a"}, "cameras": {"cam": {}}})
    assert config.cameras["cam"].image_topic == "site/a/cam/image"
    assert config.mqtt.node_id == "site_a"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"cameras": {"a": {}}, "colour": 1}, "colour: unknown key; allowed keys: bridge,"),
        ({"cameras": {"a": {}}, "model": {"pth": "x"}}, "model.pth: unknown key"),
        ({"cameras": {"a": {"treshold": 0.3}}}, "cameras.a.treshold: unknown key"),
        ({"cameras": {"a": {}}, "mqtt": {"tls": {"ca": 1}}}, "mqtt.tls.ca: unknown key"),
        ({"cameras": {"a": {}}, "bridge": {"on": True}}, "bridge.on: unknown key"),
    ],
)
def test_unknown_keys_rejected_with_path(data: object, expected: str) -> None:
    assert any(line.startswith(expected) for line in errors_of(data)), errors_of(data)


def test_every_error_reported_with_value_and_allowed() -> None:
    errors = errors_of(
        {
            "cameras": {"a": {"threshold": 1.5}, "Bad Name": {}},
            "mqtt": {"port": 70000},
            "model": {"conf_thresh": "high"},
        }
    )
    assert (
        "cameras.a.threshold: 1.5 is not allowed: expected a number between 0.01 and 0.99" in errors
    )
    assert "mqtt.port: 70000 is not allowed: expected a whole number between 1 and 65535" in errors
    assert any(
        e.startswith("model.conf_thresh: 'high' is not allowed: expected a number") for e in errors
    )
    assert any(e.startswith("cameras.Bad Name: 'Bad Name' is not allowed") for e in errors)
    assert len(errors) == 4


def test_cross_field_checks() -> None:
    errors = errors_of(
        {
            "cameras": {
                "a": {"stale_after": 5, "offline_after": 5},
                "b": {"topic": "cams/x"},
                "c": {"topic": "cams/x"},
            }
        }
    )
    assert any("cameras.a.offline_after: 5 is not allowed" in e for e in errors)
    assert any("camera b already uses it" in e for e in errors)


def test_masks_validated() -> None:
    errors = errors_of(
        {"cameras": {"a": {"masks": [{"name": "m", "polygon": [[0, 0], [1.2, 0], [1, 1]]}]}}}
    )
    assert errors[0].startswith("cameras.a.masks.0:")
    assert "lies outside 0..1" in errors[0]


def test_cameras_required() -> None:
    assert errors_of({}) == ["cameras: required key missing"]
    assert errors_of({"cameras": {}})[0].startswith("cameras: {} is not allowed: expected at least")


def test_secret_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_HOST", "broker.lan")
    path = write(
        tmp_path,
        """
        mqtt:
          host: !env SW_HOST
          port: !env SW_PORT:1884
          password: !secret mqtt_password
        cameras: {a: {}}
        """,
        secrets="mqtt_password: hunter2-very-secret\n",
    )
    config = load_config(path)
    assert (config.mqtt.host, config.mqtt.port) == ("broker.lan", 1884)
    assert config.mqtt.password == "hunter2-very-secret"
    assert "hunter2" not in repr(config)


def test_secret_never_in_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        mqtt: {port: !secret port}
        cameras: {a: {}}
        """,
        secrets="port: hunter2-not-a-port\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [
        "mqtt.port: <secret> is not allowed: expected a whole number between 1 and 65535"
    ]
    assert "hunter2" not in str(caught.value)


def test_missing_secret_and_missing_secrets_file(tmp_path: Path) -> None:
    text = "mqtt: {password: !secret nope}\ncameras: {a: {}}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"secrets\.yaml does not exist"):
        load_config(path)
    path = write(tmp_path, text, secrets="other: 1\n")
    with pytest.raises(
        ConfigError, match=r"line 1: !secret nope: no such secret in .*secrets\.yaml"
    ):
        load_config(path)


def test_missing_env_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SW_UNSET", raising=False)
    path = write(tmp_path, "mqtt: {host: !env SW_UNSET}\ncameras: {a: {}}\n")
    with pytest.raises(ConfigError, match="SW_UNSET: environment variable not set"):
        load_config(path)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cameras:\n  a: {\n  b: [\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: invalid YAML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.yaml")


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "cameras: {backyard: {}}\n")
    assert check_config_main(good) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: {a: {threshold: 2, colour: red}}\nmqtt: {port: 0}\n")
    assert main(["check-config", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "3 error(s)" in out
    assert "cameras.a.threshold: 2 is not allowed" in out
    assert "cameras.a.colour: unknown key" in out
    assert "mqtt.port: 0 is not allowed" in out
