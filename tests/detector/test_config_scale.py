"""The model backend keys and the instance section: validation, errors, camera assignment."""

from __future__ import annotations

from typing import Any

import pytest

from detector.config import validate
from detector.config.instance import INSTANCE_SCHEMA, instance_config, owner
from detector.errors import ConfigError, ModelError
from detector.model import CPU_PROVIDER, ModelRuntime
from tests.detector.tiny_model import make_tiny_model

CAMERAS = {f"cam{i:02d}": {} for i in range(30)}


def errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate({"cameras": {"a": {}}, **data})
    return caught.value.errors


def test_triton_backend_keys() -> None:
    config = validate(
        {
            "cameras": {"a": {}},
            "model": {"backend": "triton", "url": "triton:8001", "name": "smoke", "version": 2},
        }
    ).model
    assert (config.backend, config.url, config.name, config.protocol) == (
        "triton",
        "triton:8001",
        "smoke",
        "http",
    )
    assert (config.version, config.timeout) == ("2", 10.0)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"backend": "triton", "name": "smoke"}, "model.url: "),
        ({"backend": "triton", "url": "t:8000"}, "model.name: "),
        ({"backend": "tensorrt"}, "model.backend: 'tensorrt' is not allowed: expected onnxruntime"),
        ({"protocol": "ws"}, "model.protocol: 'ws' is not allowed: expected http or grpc"),
        ({"timeout": 0}, "model.timeout: 0"),
        ({"providers": []}, "model.providers: [] is not allowed: expected a non-empty list"),
        ({"version": "latest"}, "model.version: 'latest' is not allowed: expected a version"),
    ],
)
def test_model_key_errors(model: dict[str, Any], expected: str) -> None:
    found = errors({"model": model})
    assert any(line.startswith(expected) for line in found), found


def test_remote_needs_url_error_says_what_to_write() -> None:
    (line,) = errors({"model": {"backend": "triton", "name": "smoke"}})
    assert "required when backend is triton (e.g. url: triton:8000)" in line


def test_providers_short_names_and_cpu_fallback(tmp_path: Any) -> None:
    config = validate({"cameras": {"a": {}}, "model": {"providers": ["CUDA", "CPU"]}}).model
    assert config.providers == ("CUDAExecutionProvider", CPU_PROVIDER)
    # This onnxruntime build has no CUDA: skipped, the CPU runs the model, and it says so.
    runtime = ModelRuntime(make_tiny_model(tmp_path / "tiny.onnx"), providers=config.providers)
    assert runtime.providers == [CPU_PROVIDER]
    assert runtime.describe() == {"backend": "onnxruntime", "providers": [CPU_PROVIDER]}
    assert runtime.health()["healthy"] is True


def test_triton_model_without_its_client_is_a_clear_error(monkeypatch: Any) -> None:
    import sys

    from detector.model_triton import TritonModel

    monkeypatch.setitem(sys.modules, "tritonclient", None)
    with pytest.raises(ModelError, match=r"pip install 'smokewatch\[triton\]'"):
        TritonModel("127.0.0.1:1", "smoke")


def test_one_detector_by_default() -> None:
    config = validate({"cameras": CAMERAS})
    assert (config.instance.id, config.instance.count) == ("", 1)
    assert len(config.cameras) == 30
    assert config.mqtt.detector_topic("available") == "available"


def test_cameras_split_by_hash_without_overlap() -> None:
    seen: dict[str, int] = {}
    for index in range(3):
        config = validate({"cameras": CAMERAS, "instance": {"count": 3, "index": index}})
        assert config.instance.id == str(index)
        assert config.mqtt.detector_topic("stats") == f"instance/{index}/stats"
        assert config.mqtt.client_id == f"smokewatch-detector-{index}"
        for camera in config.cameras:
            assert camera not in seen
            seen[camera] = index
    assert sorted(seen) == sorted(CAMERAS)
    assert all(owner(camera, 3) == index for camera, index in seen.items())


def test_hash_moves_only_the_cameras_of_an_added_instance() -> None:
    before = {camera: owner(camera, 3) for camera in CAMERAS}
    after = {camera: owner(camera, 4) for camera in CAMERAS}
    moved = [camera for camera in CAMERAS if before[camera] != after[camera]]
    assert moved and all(after[camera] == 3 for camera in moved)


def test_a_named_instance_with_its_own_cameras() -> None:
    config = validate({"cameras": {"a": {}, "b": {}}, "instance": {"id": "north"}})
    assert sorted(config.cameras) == ["a", "b"]
    assert config.mqtt.detector_topic("info") == "instance/north/info"


def test_index_auto_from_env_or_statefulset_hostname(monkeypatch: Any) -> None:
    section = INSTANCE_SCHEMA({"count": 4, "index": "auto"})
    monkeypatch.delenv("SMOKEWATCH_INSTANCE_INDEX", raising=False)
    assert instance_config(section, hostname="smokewatch-detector-2").index == 2
    monkeypatch.setenv("SMOKEWATCH_INSTANCE_INDEX", "3")
    assert instance_config(section, hostname="smokewatch-detector-2").index == 3
    monkeypatch.delenv("SMOKEWATCH_INSTANCE_INDEX")
    with pytest.raises(ValueError, match=r"neither \$SMOKEWATCH_INSTANCE_INDEX nor a hostname"):
        instance_config(section, hostname="box")
    with pytest.raises(ValueError, match="index 7 is not allowed: expected 0 to 3"):
        instance_config(section, hostname="pod-7")


def test_instance_errors_are_config_errors(monkeypatch: Any) -> None:
    monkeypatch.setenv("SMOKEWATCH_INSTANCE_INDEX", "x")
    assert errors({"instance": {"count": 2, "index": "auto"}}) == [
        "instance.index: $SMOKEWATCH_INSTANCE_INDEX is 'x': expected a number"
    ]
    assert errors({"instance": {"count": 2, "index": 2}}) == [
        "instance.index: index 2 is not allowed: expected 0 to 1 (count 2)"
    ]
    found = errors({"instance": {"count": 2}, "bridge": {"enabled": True}})
    assert any("expected one bridge for all detectors" in line for line in found), found
