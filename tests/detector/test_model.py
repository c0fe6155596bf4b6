"""The model runtime on the tiny generated model and, when present, the real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from detector.errors import ModelError
from detector.frames import decode_image, letterbox_into
from detector.model import ModelRuntime, parse_class_names
from tests.detector.conftest import shared_file
from tests.detector.tiny_model import make_tiny_model, smoke_jpeg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    return ModelRuntime(make_tiny_model(tmp_path_factory.mktemp("m") / "tiny.onnx"))


def test_reads_size_and_classes(tiny: ModelRuntime) -> None:
    assert (tiny.input_w, tiny.input_h) == (64, 64)
    assert tiny.class_names == ["smoke"]
    assert tiny.smoke_class_ids == [0]
    assert tiny.new_input().shape == (1, 3, 64, 64)


@pytest.mark.parametrize("level", [0, 64, 128, 200, 255])
def test_tiny_model_score_follows_grey_level(tiny: ModelRuntime, level: int) -> None:
    tensor = tiny.new_input()
    letterbox_into(decode_image(smoke_jpeg(level)), tensor)
    output = tiny.run(tensor)
    assert output.shape == (5, 1)
    np.testing.assert_allclose(output[:4, 0], [32, 32, 16, 16])
    assert output[4, 0] == pytest.approx(level / 255, abs=0.01)


def test_class_names_metadata() -> None:
    assert parse_class_names("{0: 'smoke', 1: 'fire'}", 2) == ["smoke", "fire"]
    assert parse_class_names("['a', 'b']", 2) == ["a", "b"]
    assert parse_class_names("not python", 2) == ["class_0", "class_1"]
    assert parse_class_names(None, 1) == ["class_0"]


def test_missing_file() -> None:
    with pytest.raises(ModelError, match="does not exist"):
        ModelRuntime("/nonexistent/model.onnx")


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match="cannot load"):
        ModelRuntime(path)


def test_not_a_detector(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path = tmp_path / "classifier.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"expected \[1, 3, H, W\]"):
        ModelRuntime(path)


def test_unknown_smoke_class(tmp_path: Path) -> None:
    path = make_tiny_model(tmp_path / "tiny.onnx")
    with pytest.raises(ModelError, match="not in the model; it has smoke"):
        ModelRuntime(path, smoke_classes=["flame"])


def test_thread_settings(tmp_path: Path) -> None:
    runtime = ModelRuntime(
        make_tiny_model(tmp_path / "tiny.onnx"), intra_op_threads=1, inter_op_threads=1
    )
    assert runtime.run(runtime.new_input()).shape == (5, 1)


@pytest.mark.realmodel
def test_dfire_model_io() -> None:
    runtime = ModelRuntime(shared_file("models/dfire-yolo11n-int8-640.onnx"))
    assert runtime.class_names == ["smoke", "fire"]
    assert runtime.smoke_class_ids == [0]
    assert runtime.run(runtime.new_input()).shape == (6, 8400)
    both = ModelRuntime(runtime.path, smoke_classes=["smoke", "fire"])
    assert both.smoke_class_ids == [0, 1]


@pytest.mark.realmodel
def test_pyronear_architecture_io() -> None:
    runtime = ModelRuntime(shared_file("models/yolo11s-untrained-1024.onnx"))
    assert (runtime.input_w, runtime.input_h) == (1024, 1024)
    # A single-class export names its class "0": it is the smoke class.
    assert runtime.smoke_class_ids == [0]
    assert runtime.run(runtime.new_input()).shape == (5, 21504)
