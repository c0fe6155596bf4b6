"""The model runtime on the tiny generated model and, when present, the real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from detector.errors import ModelError
from detector.frames import decode_frame, decode_image, letterbox_into
from detector.model import ModelRuntime, model_name, parse_class_names
from tests.detector.conftest import shared_file
from tests.detector.tiny_model import make_tiny_model, smoke_jpeg


@pytest.fixture(scope="module")
def runtime(tiny: Path) -> ModelRuntime:
    """The tiny model (conftest.py) in onnxruntime."""
    return ModelRuntime(tiny)


def save_graph(
    path: Path,
    inputs: list[tuple[str, int, list[int | str]]],
    output: tuple[int, list[int | str]],
    names: str | None = None,
) -> Path:
    """A model whose output is a constant of the given shape, for checking the I/O rules."""
    dtype, shape = output
    fixed = [dim if isinstance(dim, int) else 1 for dim in shape]
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["output0"],
            value=helper.make_tensor("v", dtype, [1], [0]),
        )
    ]
    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info(name, kind, dims) for name, kind, dims in inputs],
        [helper.make_tensor_value_info("output0", dtype, shape)],
        initializer=[helper.make_tensor("shape", TensorProto.INT64, [len(fixed)], fixed)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if names is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "names", names
    onnx.save(model, str(path))
    return path


FLOAT = TensorProto.FLOAT
IMAGES: tuple[str, int, list[int | str]] = ("images", FLOAT, [1, 3, 32, 32])


def test_reads_size_and_classes(runtime: ModelRuntime) -> None:
    assert (runtime.input_w, runtime.input_h) == (64, 64)
    assert runtime.class_names == ["smoke"]
    assert runtime.smoke_class_ids == [0]
    assert runtime.name == "tiny"
    tensor = runtime.new_input()
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32 and not tensor.any()


@pytest.mark.parametrize("level", [0, 64, 128, 200, 255])
def test_tiny_model_score_follows_grey_level(runtime: ModelRuntime, level: int) -> None:
    tensor = runtime.new_input()
    letterbox_into(decode_image(smoke_jpeg(level)), tensor)
    output = runtime.run(tensor)
    assert output.shape == (5, 1) and output.dtype == np.float32
    np.testing.assert_allclose(output[:4, 0], [32, 32, 16, 16])
    assert output[4, 0] == pytest.approx(level / 255, abs=0.01)
    assert runtime.last_run_ms > 0


def test_tiny_model_scores_only_the_centre(runtime: ModelRuntime) -> None:
    tensor = runtime.new_input()
    tensor[:] = 1.0
    tensor[0, :, 24:40, 24:40] = 0.25  # the centre square S/2 ± S/8
    assert runtime.run(tensor)[4, 0] == pytest.approx(0.25)


def test_tiny_model_other_size(tmp_path: Path) -> None:
    runtime = ModelRuntime(make_tiny_model(tmp_path / "t.onnx", size=128))
    tensor = runtime.new_input()
    letterbox_into(decode_image(smoke_jpeg(255)), tensor)
    output = runtime.run(tensor)
    np.testing.assert_allclose(output[:, 0], [64, 64, 32, 32, 1.0], atol=0.01)
    with pytest.raises(ValueError, match="multiple of 8"):
        make_tiny_model(tmp_path / "u.onnx", size=60)


def test_warmup(runtime: ModelRuntime) -> None:
    assert runtime.warmup(2) > 0


def test_class_names_metadata() -> None:
    assert parse_class_names("{0: 'smoke', 1: 'fire'}", 2) == ["smoke", "fire"]
    assert parse_class_names('{"0": "smoke", "1": "fire"}', 2) == ["smoke", "fire"]
    assert parse_class_names("['a', 'b']", 2) == ["a", "b"]
    assert parse_class_names("{1: 'fire'}", 2) == ["class_0", "fire"]
    assert parse_class_names("{0: 'smoke', 7: 'extra'}", 1) == ["smoke"]
    assert parse_class_names("not python", 2) == ["class_0", "class_1"]
    assert parse_class_names("42", 1) == ["class_0"]
    assert parse_class_names("__import__('os').system('false')", 1) == ["class_0"]
    assert parse_class_names("[" * 100_000, 1) == ["class_0"]
    assert parse_class_names(None, 1) == ["class_0"]


def test_model_name() -> None:
    assert model_name(Path("/m/dfire-yolo11n.onnx")) == "dfire-yolo11n"
    cached = Path("/c/pyronear__yolo11s_rapid-raccoon_v8.1.0/best.onnx")
    assert model_name(cached) == "pyronear/yolo11s_rapid-raccoon_v8.1.0"


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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "classifier.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"expected \[1, 3, H, W\]"):
        ModelRuntime(path)


@pytest.mark.parametrize(
    ("inputs", "output", "match"),
    [
        ([("images", TensorProto.FLOAT, [1, 3, "h", "w"])], (FLOAT, [1, 5, 10]), "fixed H and W"),
        ([("images", TensorProto.FLOAT, [4, 3, 32, 32])], (FLOAT, [1, 5, 10]), r"\[1, 3, H, W\]"),
        ([("images", TensorProto.FLOAT, [1, 1, 32, 32])], (FLOAT, [1, 5, 10]), r"\[1, 3, H, W\]"),
        ([("images", TensorProto.FLOAT16, [1, 3, 32, 32])], (FLOAT, [1, 5, 10]), "half"),
        ([IMAGES, ("extra", TensorProto.FLOAT, [1])], (FLOAT, [1, 5, 10]), "2 inputs"),
        ([IMAGES], (FLOAT, [1, 300, 6]), "nms=False"),  # an end-to-end export
        ([IMAGES], (FLOAT, [1, 8400, 6]), "nms=False"),  # boxes along the wrong axis
        ([IMAGES], (FLOAT, [1, 4, 10]), "4\\+classes"),  # no class row
        ([IMAGES], (FLOAT, [1, 5]), "4\\+classes"),
    ],
)
def test_io_shapes_refused(
    tmp_path: Path,
    inputs: list[tuple[str, int, list[int | str]]],
    output: tuple[int, list[int | str]],
    match: str,
) -> None:
    path = save_graph(tmp_path / "probe.onnx", inputs, output)
    with pytest.raises(ModelError, match=match):
        ModelRuntime(path)


def test_symbolic_batch_is_accepted(tmp_path: Path) -> None:
    path = save_graph(
        tmp_path / "batch.onnx",
        [("images", TensorProto.FLOAT, ["batch", 3, 32, 48])],
        (TensorProto.FLOAT, ["batch", 6, 42]),
        names="{0: 'smoke', 1: 'fire'}",
    )
    runtime = ModelRuntime(path)
    assert (runtime.input_w, runtime.input_h, runtime.class_names) == (48, 32, ["smoke", "fire"])
    assert runtime.run(runtime.new_input()).shape == (6, 42)


@pytest.mark.parametrize(
    ("names", "chosen", "expected"),
    [
        ("{0: 'fire', 1: 'smoke'}", None, [1]),
        ("{0: 'fire', 1: 'smoke'}", ["fire", "smoke"], [0, 1]),
        ("{0: 'fire', 1: 'smoke'}", ["smoke", "smoke"], [1]),
        ("{0: '0'}", ["smoke"], [0]),  # a single-class export naming its class "0"
        ("{0: '0'}", None, [0]),
    ],
)
def test_smoke_class_choice(
    tmp_path: Path, names: str, chosen: list[str] | None, expected: list[int]
) -> None:
    count = names.count(":")
    path = save_graph(tmp_path / "c.onnx", [IMAGES], (FLOAT, [1, 4 + count, 10]), names=names)
    assert ModelRuntime(path, smoke_classes=chosen).smoke_class_ids == expected


def test_unknown_smoke_class(tmp_path: Path) -> None:
    path = make_tiny_model(tmp_path / "tiny.onnx")
    with pytest.raises(ModelError, match="not in the model; it has smoke"):
        ModelRuntime(path, smoke_classes=["flame"])


def test_no_smoke_class_among_several(tmp_path: Path) -> None:
    path = save_graph(tmp_path / "c.onnx", [IMAGES], (FLOAT, [1, 6, 10]), names="{0: 'a', 1: 'b'}")
    with pytest.raises(ModelError, match=r"a, b.*smoke_classes"):
        ModelRuntime(path)


def test_thread_settings(tmp_path: Path) -> None:
    runtime = ModelRuntime(
        make_tiny_model(tmp_path / "tiny.onnx"), intra_op_threads=1, inter_op_threads=1
    )
    assert runtime.run(runtime.new_input()).shape == (5, 1)


@pytest.mark.realmodel
def test_dfire_model_io() -> None:
    runtime = ModelRuntime(shared_file("models/dfire-yolo11n-int8-640.onnx"))
    assert (runtime.input_w, runtime.input_h) == (640, 640)
    assert runtime.class_names == ["smoke", "fire"]
    assert runtime.smoke_class_ids == [0]
    assert runtime.run(runtime.new_input()).shape == (6, 8400)
    both = ModelRuntime(runtime.path, smoke_classes=["smoke", "fire"])
    assert both.smoke_class_ids == [0, 1]


@pytest.mark.realmodel
def test_dfire_model_sees_smoke_through_decode_and_letterbox() -> None:
    # AoF04034 is labelled with smoke, AoF00005 is a negative: the whole preprocessing
    # (reduced decode, BGR folded into the letterbox) must keep the model's view intact.
    runtime = ModelRuntime(shared_file("models/dfire-yolo11n-int8-640.onnx"))
    tensor = runtime.new_input()
    scores = {}
    for name in ("AoF04034", "AoF00005"):
        data = shared_file(f"images/dfire/images/{name}.jpg").read_bytes()
        image, _ = decode_frame(data, target_size=640, rgb=False)
        letterbox_into(image, tensor, bgr=True)
        scores[name] = float(runtime.run(tensor)[4].max())
    assert scores["AoF04034"] > 0.5
    assert scores["AoF00005"] < 0.05


@pytest.mark.realmodel
@pytest.mark.parametrize(
    ("file", "size", "classes", "shape"),
    [
        ("yolo11s-untrained-1024.onnx", 1024, ["0"], (5, 21504)),  # Pyronear's architecture
        ("fire-detector-yolov8-1024.onnx", 1024, ["smoke", "fire"], (6, 21504)),
        ("yolo11n-untrained-640.onnx", 640, ["0"], (5, 8400)),
    ],
)
def test_other_real_models(
    file: str, size: int, classes: list[str], shape: tuple[int, int]
) -> None:
    runtime = ModelRuntime(shared_file(f"models/{file}"), smoke_classes=["smoke"])
    assert (runtime.input_w, runtime.input_h) == (size, size)
    assert runtime.class_names == classes
    assert runtime.smoke_class_ids == [0]
    assert runtime.run(runtime.new_input()).shape == shape
