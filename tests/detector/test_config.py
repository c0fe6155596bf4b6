"""Configuration: validation, errors with key paths, secrets, check-config."""

from __future__ import annotations

import re
import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main
from detector.config import Config, load_config, validate
from detector.errors import ConfigError
from detector.masks import Mask

REPO = Path(__file__).resolve().parents[2]
SECRET = "hunter2-very-secret"
# key.path: value is not allowed: what is allowed
ERROR_LINE = re.compile(r"^[\w.\[\]]+: .+ is not allowed: expected .+$")


def write(tmp_path: Path, text: str, secrets: str | None = None) -> Path:
    path = tmp_path / "smokewatch.yaml"
    path.write_text(textwrap.dedent(text))
    if secrets is not None:
        (tmp_path / "secrets.yaml").write_text(textwrap.dedent(secrets))
    return path


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate(data)
    return caught.value.errors


def load_errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.errors


def with_camera(**sections: Any) -> dict[str, Any]:
    return {"cameras": {"a": {}}, **sections}


def test_example_config_is_valid(tmp_path: Path) -> None:
    shutil.copy(REPO / "config" / "smokewatch.yaml", tmp_path / "smokewatch.yaml")
    shutil.copy(REPO / "config" / "secrets.yaml.example", tmp_path / "secrets.yaml")
    config = load_config(tmp_path / "smokewatch.yaml")
    assert list(config.cameras) == ["backyard", "ridge"]
    backyard, ridge = config.cameras["backyard"], config.cameras["ridge"]
    assert backyard.masks == (
        Mask("chimney", ((0.62, 0.40), (0.70, 0.40), (0.70, 0.55), (0.62, 0.55))),
        Mask(
            "dusty road", ((0.0, 0.85), (1.0, 0.85), (1.0, 1.0), (0.0, 1.0)), "iou", enabled=False
        ),
    )
    assert (backyard.interval, ridge.interval, ridge.threshold, ridge.nb_frames) == (20, 30, 0.3, 8)
    assert ridge.image_topic == "smokewatch/ridge/image"
    assert (backyard.scene, backyard.width_cap, backyard.night_mode) == ("nearby", None, "score")
    assert (ridge.scene, ridge.width_cap, ridge.night_mode) == ("horizon", 0.4, "pause")
    assert config.mqtt.password == "change-me"
    assert config.bridge.enabled is False


def test_scenes_set_the_width_cap_and_night_unless_told_otherwise() -> None:
    config = validate(
        {
            "cameras": {
                "home": None,
                "tower": {"scene": "horizon"},
                "tower_wide": {"scene": "horizon", "max_bbox_width": 0.6, "night": "score"},
                "home_capped": {"max_bbox_width": 0.9, "night": "pause"},
                "uncapped": {"scene": "horizon", "max_bbox_width": 1},
            }
        }
    )
    resolved = {
        name: (camera.scene, camera.width_cap, camera.night_mode)
        for name, camera in config.cameras.items()
    }
    # A config that says nothing is a home camera: no width cap, scored at night.
    assert resolved == {
        "home": ("nearby", None, "score"),
        "tower": ("horizon", 0.4, "pause"),
        "tower_wide": ("horizon", 0.6, "score"),
        "home_capped": ("nearby", 0.9, "pause"),
        # A cap of 1 keeps a full-width plume (the test is strictly narrower than the cap).
        "uncapped": ("horizon", None, "pause"),
    }
    # The detection section sets the default scene of every camera.
    towers = validate({"detection": {"scene": "horizon"}, "cameras": {"a": None}})
    assert towers.cameras["a"].width_cap == 0.4


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"cameras": {"a": {"scene": "forest"}}},
            "cameras.a.scene: 'forest' is not allowed: expected one of nearby, horizon",
        ),
        (
            {"cameras": {"a": {"night": "sleep"}}},
            "cameras.a.night: 'sleep' is not allowed: expected one of score, pause",
        ),
        (
            {"model": {"max_bbox_width": 0.4}, "cameras": {"a": None}},
            "model.max_bbox_width: 0.4 is not allowed: moved to detection (or a camera): set "
            "scene: horizon for Pyronear's 0.4 cap, or max_bbox_width there",
        ),
    ],
)
def test_scene_errors(data: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert info.value.errors == [error]


def test_defaults_and_overrides() -> None:
    config = validate(
        {"detection": {"interval": 10}, "cameras": {"a": None, "b": {"nb_frames": 4}}}
    )
    a, b = config.cameras["a"], config.cameras["b"]
    assert (a.interval, a.threshold, a.nb_frames, a.stale_after, a.offline_after) == (
        10,
        0.25,
        6,
        3,
        10,
    )
    assert (b.interval, b.nb_frames) == (10, 4)
    assert (a.id, a.name, a.image_topic, a.enabled, a.masks) == (
        "a",
        "A",
        "smokewatch/a/image",
        True,
        (),
    )
    assert validate({"cameras": {"back_yard": {}}}).cameras["back_yard"].name == "Back Yard"
    assert config.mqtt.port == 1883 and config.mqtt.password is None
    assert config.model.conf_thresh == 0.05 and config.model.smoke_classes == ("smoke",)
    assert config.detection.max_frame_bytes == 20 * 1024 * 1024
    assert config.mqtt.node_id == "smokewatch"
    assert config.logging_level == "info" and config.bridge.enabled is False


def test_topic_prefix_changes_default_topics() -> None:
    config = validate({"mqtt": {"topic_prefix": "site/a"}, "cameras": {"cam": {}}})
    assert config.cameras["cam"].image_topic == "site/a/cam/image"
    assert config.mqtt.node_id == "site_a"


def test_config_is_frozen() -> None:
    config = validate(with_camera())
    with pytest.raises(AttributeError):
        config.cameras["a"].threshold = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (with_camera(colour=1), "colour: unknown key; allowed keys: bridge, cameras, detection,"),
        (with_camera(model={"pth": "x"}), "model.pth: unknown key (did you mean path?)"),
        (with_camera(detection={"fps": 1}), "detection.fps: unknown key; allowed keys: interval"),
        (with_camera(mqtt={"pasword": "x"}), "mqtt.pasword: unknown key (did you mean password?)"),
        (with_camera(mqtt={"tls": {"ca": 1}}), "mqtt.tls.ca: unknown key; allowed keys: ca_certs"),
        ({"cameras": {"a": {"treshold": 0.3}}}, "cameras.a.treshold: unknown key (did you mean"),
        (
            {"cameras": {"a": {"masks": [{"name": "m", "rect": [0, 0, 1, 1], "colour": 1}]}}},
            "cameras.a.masks[0].colour: unknown key; allowed keys: enabled, name, polygon, rect",
        ),
        (with_camera(bridge={"on": True}), "bridge.on: unknown key"),
        (with_camera(logging={"lvl": "info"}), "logging.lvl: unknown key (did you mean level?)"),
    ],
)
def test_unknown_keys_rejected_with_path(data: dict[str, Any], expected: str) -> None:
    errors = errors_of(data)
    assert len(errors) == 1 and errors[0].startswith(expected), errors


def test_every_error_reported_with_path_value_and_allowed() -> None:
    errors = errors_of(
        {
            "cameras": {
                "a": {
                    "threshold": 1.5,
                    "masks": [{"name": "m", "polygon": [[0, 0], [2, 0], [0, 1]]}],
                },
                "b": {"enabled": "maybe", "interval": 0},
            },
            "mqtt": {"port": 70000, "topic_prefix": "a/+/b"},
            "model": {"conf_thresh": "high"},
            "detection": {"stale_after": 5, "offline_after": 4},
            "logging": {"level": "loud"},
        }
    )
    assert errors == [
        "cameras.a.masks[0].polygon[1]: [2, 0] is not allowed: "
        "expected [x, y] with x and y between 0 and 1",
        "cameras.a.threshold: 1.5 is not allowed: expected a number between 0.05 and 0.95",
        "cameras.b.enabled: 'maybe' is not allowed: expected true or false",
        "cameras.b.interval: 0 is not allowed: expected a number above 0 and at most 86400",
        "detection.offline_after: 4 is not allowed: expected more than stale_after (5)",
        "logging.level: 'loud' is not allowed: expected one of debug, info, warning, error",
        "model.conf_thresh: 'high' is not allowed: expected a number between 0 and 1",
        "mqtt.port: 70000 is not allowed: expected a whole number between 1 and 65535",
        "mqtt.topic_prefix: 'a/+/b' is not allowed: "
        "expected an MQTT topic without wildcards (+, #)",
    ]
    assert all(ERROR_LINE.match(line) for line in errors)


@pytest.mark.parametrize("camera_id", ["Backyard", "back-yard", "back yard", "", "caméra"])
def test_bad_camera_id(camera_id: str) -> None:
    assert errors_of({"cameras": {camera_id: {}}}) == [
        f"cameras.{camera_id}: {camera_id!r} is not allowed: "
        "expected an id of lowercase letters, digits and _ (e.g. backyard_east)"
    ]


def test_cameras_required() -> None:
    assert errors_of({}) == ["cameras: required key missing"]
    assert errors_of({"cameras": {}}) == [
        "cameras: {} is not allowed: expected at least one camera, e.g. cameras: {backyard: {}}"
    ]
    assert errors_of({"cameras": ["a"]}) == ["cameras: ['a'] is not allowed: expected a dictionary"]


def test_duplicate_image_topics() -> None:
    errors = errors_of(
        {"cameras": {"a": {"topic": "cams/x"}, "b": {"topic": "cams/x"}, "c": {}, "d": {}}}
    )
    assert errors == [
        "cameras.b.topic: 'cams/x' is not allowed: expected a topic of its own (camera a uses it)"
    ]
    errors = errors_of({"cameras": {"a": {"topic": "smokewatch/b/image"}, "b": {}}})
    assert errors == [
        "cameras.b.topic: 'smokewatch/b/image' (the default) is not allowed: "
        "expected a topic of its own (camera a uses it)"
    ]


@pytest.mark.parametrize(
    "topic", ["smokewatch/b/smoke", "smokewatch/stats", "smokewatch/a/masks/set"]
)
def test_image_topic_cannot_be_an_output(topic: str) -> None:
    assert errors_of({"cameras": {"a": {"topic": topic}, "b": {}}}) == [
        f"cameras.a.topic: {topic!r} is not allowed: expected a topic SmokeWatch does not "
        "publish itself"
    ]


@pytest.mark.parametrize("topic", ["cams/#", "cams/+/image", "/cams", "cams/", "cams//x", ""])
def test_bad_topics(topic: str) -> None:
    (error,) = errors_of({"cameras": {"a": {"topic": topic}}})
    assert error.startswith(f"cameras.a.topic: {topic!r} is not allowed: expected an MQTT topic")


def test_offline_after_must_exceed_stale_after() -> None:
    # Reported once for the detection defaults, and for a camera only where it overrides.
    errors = errors_of(
        {
            "detection": {"stale_after": 4, "offline_after": 4},
            "cameras": {"a": {}, "b": {"offline_after": 2, "stale_after": 3}, "c": {}},
        }
    )
    assert errors == [
        "cameras.b.offline_after: 2 is not allowed: expected more than stale_after (3)",
        "detection.offline_after: 4 is not allowed: expected more than stale_after (4)",
    ]
    errors = errors_of({"cameras": {"a": {"stale_after": 10}}})
    assert errors == [
        "cameras.a.offline_after: 10 is not allowed: expected more than stale_after (10)"
    ]


def test_cross_checks_reported_with_schema_errors() -> None:
    errors = errors_of(
        {
            "mqtt": {"port": 0},
            "cameras": {"a": {"topic": "x/y"}, "b": {"topic": "x/y"}, "c": {"nb_frames": 0}},
        }
    )
    assert len(errors) == 3
    assert any(e.startswith("mqtt.port: 0 is not allowed") for e in errors)
    assert any(e.startswith("cameras.c.nb_frames: 0 is not allowed") for e in errors)
    assert any(e.startswith("cameras.b.topic: 'x/y' is not allowed") for e in errors)


def test_masks() -> None:
    config = validate(
        {
            "cameras": {
                "a": {
                    "masks": [
                        {"name": "tree", "polygon": [[0.1, 0.2], [0.3, 0.2], [0.3, 0.5]]},
                        {"name": "road", "rect": [0, 0.8, 1, 1], "rule": "iou", "enabled": False},
                    ]
                }
            }
        }
    )
    assert config.cameras["a"].masks == (
        Mask("tree", ((0.1, 0.2), (0.3, 0.2), (0.3, 0.5))),
        Mask("road", ((0, 0.8), (1, 0.8), (1, 1), (0, 1)), "iou", enabled=False),
    )


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (
            {"name": "m", "polygon": [[0, 0], [1.2, 0], [1, 1]]},
            "masks[0].polygon[1]: [1.2, 0] is not allowed: expected [x, y] with x and y between",
        ),
        (
            {"name": "m", "polygon": [[0, 0], [1, 1]]},
            "masks[0].polygon: [[0, 0], [1, 1]] is not allowed: "
            "expected between 3 and 100 [x, y] points",
        ),
        (
            {"name": "m", "polygon": [[0, 0], [0.5, 0.5], [1, 1]]},
            "masks[0].polygon: [[0, 0], [0.5, 0.5], [1, 1]] is not allowed: expected a polygon "
            "with an area",
        ),
        (
            {"name": "m", "rect": [0.5, 0, 0.2, 1]},
            "masks[0].rect: [0.5, 0, 0.2, 1] is not allowed: expected [x1, y1, x2, y2] between",
        ),
        ({"name": "m"}, "masks[0]: {'name': 'm'} is not allowed: expected exactly one of polygon"),
        (
            {"name": "m", "rect": [0, 0, 1, 1], "rule": "over"},
            "masks[0].rule: 'over' is not allowed: expected one of inside, iou",
        ),
        ({"rect": [0, 0, 1, 1]}, "masks[0].name: required key missing"),
    ],
)
def test_bad_mask(mask: dict[str, Any], expected: str) -> None:
    (error,) = errors_of({"cameras": {"a": {"masks": [mask]}}})
    assert error.startswith(f"cameras.a.{expected}"), error


def test_every_bad_mask_reported_and_names_unique() -> None:
    errors = errors_of(
        {
            "cameras": {
                "a": {
                    "masks": [
                        {"name": "m", "rect": [0, 0, 2, 1]},
                        {"name": "n", "rect": [0, 0, 1, 1]},
                        {"name": "o", "polygon": [[0, 0]]},
                    ]
                },
                "b": {"masks": [{"name": "m", "rect": [0, 0, 1, 1]}] * 2},
            }
        }
    )
    assert [e.split(":")[0] for e in errors] == [
        "cameras.a.masks[0].rect",
        "cameras.a.masks[2].polygon",
        "cameras.b.masks[1].name",
    ]
    assert errors[2].endswith("expected a name no other mask of the camera has")


def test_secret_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_HOST", "broker.lan")
    monkeypatch.delenv("SW_PORT", raising=False)
    path = write(
        tmp_path,
        """
        mqtt:
          host: !env SW_HOST
          port: !env SW_PORT:1884
          username: !env SW_USER:detector
          password: !secret mqtt_password
          tls: {enabled: !env SW_TLS:true}
        cameras: {a: {}}
        """,
        secrets=f"mqtt_password: {SECRET}\n",
    )
    config = load_config(path)
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.username) == (
        "broker.lan",
        1884,
        "detector",
    )
    assert config.mqtt.tls.enabled is True
    assert config.mqtt.password == SECRET
    assert str(config.mqtt.password) == SECRET
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert SECRET not in repr(config.mqtt.password)


def test_env_overrides_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_PORT", "1999")
    path = write(tmp_path, "mqtt: {port: !env SW_PORT:1884}\ncameras: {a: {}}\n")
    assert load_config(path).mqtt.port == 1999


def test_secret_never_in_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        mqtt: {port: !secret port, host: !secret host}
        cameras: {a: {topic: !secret topic}}
        """,
        secrets=f"port: {SECRET}\nhost: ''\ntopic: {SECRET}/#\n",
    )
    errors = load_errors(path)
    assert errors == [
        "cameras.a.topic: <secret> is not allowed: expected an MQTT topic without wildcards (+, #)",
        "mqtt.host: <secret> is not allowed: expected a non-empty string",
        "mqtt.port: <secret> is not allowed: expected a whole number between 1 and 65535",
    ]


def test_missing_secrets_file(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt: {password: !secret mqtt_password}\ncameras: {a: {}}\n")
    assert load_errors(path) == [
        f"{path}, line 1, column 18: !secret mqtt_password: {tmp_path / 'secrets.yaml'} "
        "does not exist (create it with a line `mqtt_password: <value>`)"
    ]


def test_missing_secrets_all_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mqtt:\n  username: !secret user\n  password: !secret nope\ncameras: {a: {}}\n",
        secrets=f"user: me\nother: {SECRET}\n",
    )
    errors = load_errors(path)
    assert errors == [
        f"{path}, line 3, column 13: !secret nope: no such secret in {tmp_path / 'secrets.yaml'}"
    ]


def test_invalid_secrets_file_shows_no_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mqtt: {password: !secret p}\ncameras: {a: {}}\n",
        secrets=f"p: {SECRET}\nq: [unclosed {SECRET}\n",
    )
    (error,) = load_errors(path)
    assert "secrets.yaml, line 3" in error and "invalid YAML" in error
    assert SECRET not in error


def test_missing_env_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SW_UNSET", raising=False)
    path = write(tmp_path, "mqtt: {host: !env SW_UNSET}\ncameras: {a: {}}\n")
    assert load_errors(path) == [
        f"{path}, line 1, column 14: !env SW_UNSET: environment variable not set "
        "(give a default with !env SW_UNSET:value)"
    ]


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cameras:\n  a: {}\n\tb: {}\n")
    assert load_errors(path) == [
        f"{path}, line 3, column 1: invalid YAML: found character '\\t' that cannot start any token"
    ]


def test_duplicate_key_in_yaml(tmp_path: Path) -> None:
    # YAML itself keeps the last of two equal keys silently, hiding a camera.
    path = write(tmp_path, "cameras:\n  a: {}\n  a: {threshold: 0.5}\n")
    assert load_errors(path) == [f"{path}, line 3, column 3: 'a' is given twice"]


def test_missing_file(tmp_path: Path) -> None:
    assert load_errors(tmp_path / "absent.yaml") == [
        f"{tmp_path / 'absent.yaml'}: no such configuration file"
    ]


def test_not_a_mapping() -> None:
    assert errors_of([1, 2]) == [
        "(top level): expected a mapping of sections (model, mqtt, cameras, ...)"
    ]


def test_relative_files_resolve_against_config_folder(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.onnx").write_bytes(b"")
    path = write(
        tmp_path,
        """
        model: {path: models/mine.onnx, cache_dir: cache}
        mqtt: {tls: {enabled: true, ca_certs: ca.pem, certfile: /etc/c.pem, keyfile: k.pem}}
        cameras: {a: {}}
        """,
    )
    config: Config = load_config(path)
    assert config.model.path == str(tmp_path / "models" / "mine.onnx")
    assert config.model.cache_dir == str(tmp_path / "cache")
    assert (config.mqtt.tls.ca_certs, config.mqtt.tls.certfile, config.mqtt.tls.keyfile) == (
        str(tmp_path / "ca.pem"),
        "/etc/c.pem",
        str(tmp_path / "k.pem"),
    )
    # A repo id stays a repo id.
    assert validate(with_camera()).model.path == "pyronear/yolo11s_rapid-raccoon_v8.1.0"


def test_tls_certificate_needs_its_key() -> None:
    assert errors_of(with_camera(mqtt={"tls": {"certfile": "c.pem"}})) == [
        "mqtt.tls.keyfile: null is not allowed: expected the key file of certfile"
    ]


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(
        tmp_path,
        f"model: {{cache_dir: {tmp_path / 'cache'}}}\n"
        "cameras: {backyard: {masks: [{name: m, rect: [0, 0, 1, 0.1]}]}}\n",
    )
    assert main(["check-config", str(good)]) == 0
    cache = tmp_path / "cache" / "pyronear__yolo11s_rapid-raccoon_v8.1.0"
    assert capsys.readouterr().out.splitlines() == [
        f"{good}: OK",
        "  camera backyard (Backyard): smokewatch/backyard/image, every 30 s, threshold 0.25, "
        "scene nearby (no width cap, night: score), 1 mask",
        "  model: pyronear/yolo11s_rapid-raccoon_v8.1.0 (smoke classes: smoke)",
        "  broker: localhost:1883, topic prefix smokewatch",
        "  bridge: disabled",
        "  note: model pyronear/yolo11s_rapid-raccoon_v8.1.0 is not downloaded yet: `smokewatch"
        f" run` fetches it once into {cache}"
        " (network needed then)",
    ]


def test_check_config_opens_what_run_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each of these passed check-config and then stopped `run` or `bridge` at start.
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_bytes(b"not a model")
    corrupt = tmp_path / "outbox.sqlite3"
    corrupt.write_bytes(b"not a database" * 100)
    (tmp_path / "secrets.yaml").write_text("t: abc\n")
    path = write(
        tmp_path,
        f"""\
        model: {{path: {not_onnx}}}
        mqtt: {{tls: {{ca_certs: {tmp_path / "missing-ca.pem"}}}}}
        cameras: {{a: {{threshold: 1.0}}}}
        bridge: {{outbox: {corrupt}, cameras: {{a: {{token: !secret t, pose_id: 1}}}}}}
        """,
    )
    assert main(["check-config", str(path)]) == 1
    out = capsys.readouterr().out
    # The camera's error does not hide those of the model, mqtt and bridge sections.
    assert out.startswith(f"{path}: 4 errors")
    assert "cameras.a.threshold: 1.0 is not allowed" in out
    assert f"model.path: {not_onnx} cannot be used" in out
    assert f"mqtt.tls.ca_certs: '{tmp_path / 'missing-ca.pem'}' is not allowed" in out
    assert "bridge.outbox: cannot open the outbox" in out


def test_check_config_loads_a_real_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.detector.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny.onnx")
    path = write(tmp_path, f"model: {{path: {model}}}\ncameras: {{a: {{}}}}\n")
    assert main(["check-config", str(path)]) == 0
    assert "note: model tiny.onnx loads" in capsys.readouterr().out


def test_check_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(
        tmp_path,
        "cameras: {a: {threshold: 2, colour: red}}\nmqtt: {port: 0, password: !secret pw}\n",
        secrets=f"pw: {SECRET}\n",
    )
    assert main(["check-config", str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{bad}: 3 errors",
        "cameras.a.colour: unknown key; allowed keys: enabled, frigate_events, interval, masks, "
        "max_bbox_width, name, nb_frames, night, offline_after, scene, source, stale_after, "
        "threshold, topic",
        "cameras.a.threshold: 2 is not allowed: expected a number between 0.05 and 0.95",
        "mqtt.port: 0 is not allowed: expected a whole number between 1 and 65535",
    ]
    assert main(["check-config", str(tmp_path / "absent.yaml")]) == 1
    assert "no such configuration file" in capsys.readouterr().out


@pytest.mark.parametrize("value", [0, 1.0, 0.04, 0.96])
def test_threshold_range_is_the_one_of_commands(value: float) -> None:
    # A threshold of 1.0 silenced the alarm for good and 0 flooded it; the command refused
    # both (0.05..0.95) while the config took them.
    errors = errors_of({"cameras": {"a": {"threshold": value}}})
    assert errors == [
        f"cameras.a.threshold: {value} is not allowed: expected a number between 0.05 and 0.95"
    ]


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append("cameras: {a: {name: *a9}}")
    path = write(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    errors = load_errors(path)
    # Generous for a loaded 2-core machine; the bomb itself took over 120 s and 1.3 GB.
    assert time.monotonic() - started < 10
    assert len(errors) == 1
    assert "more than 100000 values once its aliases are expanded" in errors[0]


def test_deep_yaml_nesting_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "cameras: " + "[" * 50_000 + "]" * 50_000 + "\n")
    errors = load_errors(path)
    assert len(errors) == 1
    assert "nested deeper than" in errors[0]


@pytest.mark.parametrize(
    "topic",
    [
        "smokewatch/a/frame",
        "smokewatch/a/settings",
        "smokewatch/a/smoke/event",
        "smokewatch/a/masks/attributes",
        "smokewatch/a/false_alarm/set",
        "smokewatch/a/file_settings/set",
        "smokewatch/a/detection",
        "smokewatch/probe",
    ],
)
def test_a_camera_may_not_read_another_camera_s_output(topic: str) -> None:
    """The reserved topics come from the contract: every leaf the detector publishes or
    obeys (the old copy in the config missed frame, settings, smoke/event...)."""
    with pytest.raises(ConfigError) as caught:
        validate({"cameras": {"a": {}, "b": {"topic": topic}}})
    assert "cameras.b.topic" in str(caught.value)


@pytest.mark.parametrize("camera", ["detector", "bridge", "instance", "detector_north"])
def test_camera_ids_of_smokewatch_s_own_devices_are_refused(camera: str) -> None:
    """A camera named `detector` got the detector's device id: HA merged the two devices."""
    with pytest.raises(ConfigError) as caught:
        validate({"cameras": {camera: {}}})
    assert f"cameras.{camera}:" in str(caught.value)
    validate({"cameras": {"detectors": {}, "bridge_cam": {}}})  # near names are fine


def test_config_masks_have_the_limits_of_a_masks_command(tmp_path: Path) -> None:
    """A 10k-point polygon delayed start-up by 35 s; 1M points took 73 s and 2.26 GB before
    failing with a misleading message. The limits of masks/set apply, checked before the
    points, and a file too large for any valid config is refused before it is parsed."""
    from detector.config.loader import MAX_FILE_BYTES
    from detector.masks import MAX_MASKS, MAX_POINTS

    points = [[0.1 + 0.8 * (i % 2), 0.1 + 0.8 * (i // 2 % 2)] for i in range(10_000)]
    with pytest.raises(ConfigError) as caught:
        validate({"cameras": {"a": {"masks": [{"name": "big", "polygon": points}]}}})
    assert f"between 3 and {MAX_POINTS}" in str(caught.value)
    many = [{"name": f"m{i}", "rect": [0, 0, 0.1, 0.1]} for i in range(MAX_MASKS + 1)]
    with pytest.raises(ConfigError) as caught:
        validate({"cameras": {"a": {"masks": many}}})
    assert f"at most {MAX_MASKS} masks" in str(caught.value)
    huge = tmp_path / "huge.yaml"
    huge.write_text(
        "cameras: {a: {masks: [{name: x, polygon: [" + "[0.5, 0.5], " * 200_000 + "]}]}}"
    )
    assert huge.stat().st_size > MAX_FILE_BYTES
    with pytest.raises(ConfigError) as caught:
        load_config(huge)
    assert "refused" in str(caught.value) and "bytes" in str(caught.value)
