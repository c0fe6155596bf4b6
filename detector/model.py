"""The model backends: any YOLOv8/YOLO11-style detector with output [1, 4+nc, N].

`ModelRuntime` runs the ONNX file in this process with onnxruntime (execution providers in the
configured order, CPU last); `TritonModel` sends the letterboxed tensor to an inference server
that speaks the KServe v2 / Open Inference Protocol (NVIDIA Triton, OpenVINO Model Server,
KServe) over HTTP or gRPC. Everything around the model (decode, letterbox, post-processing,
masks, vote) stays in the pipeline, identical for both.
"""

from __future__ import annotations

import ast
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from detector.errors import InferenceError, ModelError

_LOGGER = logging.getLogger(__name__)

SMOKE = "smoke"
CPU_PROVIDER = "CPUExecutionProvider"
_CACHE_SEPARATOR = "__"  # model_fetch keeps "owner/repo" in "<cache>/owner__repo/best.onnx"
_MAX_NAMES_LENGTH = 100_000  # literal_eval of a huge metadata string could exhaust the stack


def parse_class_names(text: str | None, count: int) -> list[str]:
    """Class names from the ONNX `names` metadata ("{0: 'smoke', 1: 'fire'}"), else class_<i>.

    The metadata is parsed as a Python literal (never evaluated as code); a dict keyed by
    index (int or digit string) or a list is accepted, anything else falls back to class_<i>.
    """
    names = [f"class_{index}" for index in range(count)]
    if not text:
        return names
    try:
        if len(text) > _MAX_NAMES_LENGTH:
            raise ValueError("too long")
        parsed = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        _LOGGER.warning("Model metadata 'names' is unreadable: %s", text[:200])
        return names
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            index = int(key) if isinstance(key, str) and key.isdigit() else key
            if isinstance(index, int) and 0 <= index < count:
                names[index] = str(value)
    elif isinstance(parsed, list | tuple):
        for index, value in enumerate(parsed[:count]):
            names[index] = str(value)
    else:
        _LOGGER.warning("Model metadata 'names' is neither a dict nor a list: %s", text[:200])
    return names


def model_name(path: Path) -> str:
    """A readable name: the file's stem, or the repo id of a downloaded `best.onnx`."""
    if path.stem != "best":
        return path.stem
    return path.parent.name.replace(_CACHE_SEPARATOR, "/", 1)


class ModelBackend:
    """What the pipeline needs of a model, whichever runs it.

    Subclasses set `name`, `input_h`, `input_w`, `class_names` and `smoke_class_ids` and
    implement `_infer`. Not thread-safe by design: the pipeline calls `run` from one worker.
    """

    backend = "base"
    name: str
    input_h: int
    input_w: int
    class_names: list[str]
    smoke_class_ids: list[int]
    last_run_ms: float = 0.0

    def _choose_classes(self, smoke_classes: Sequence[str] | None) -> list[int]:
        """Indices of the classes that count as smoke."""
        available = ", ".join(self.class_names)
        if not smoke_classes:
            if SMOKE in self.class_names:
                return [self.class_names.index(SMOKE)]
            if len(self.class_names) == 1:
                return [0]
            raise ModelError(
                f"{self.name} has classes {available} and none is named '{SMOKE}': "
                "list the ones that mean smoke in model: smoke_classes: in the config"
            )
        unknown = [name for name in smoke_classes if name not in self.class_names]
        if unknown:
            if len(self.class_names) == 1 and list(smoke_classes) == [SMOKE]:
                # A single-class export may name its class "0" (Pyronear's do): it is smoke.
                return [0]
            raise ModelError(
                f"smoke class(es) {', '.join(unknown)} not in the model; it has {available}"
            )
        return sorted({self.class_names.index(name) for name in smoke_classes})

    def new_input(self) -> NDArray[np.float32]:
        """A zeroed input tensor [1, 3, H, W] to letterbox frames into."""
        return np.zeros((1, 3, self.input_h, self.input_w), dtype=np.float32)

    def _infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        raise NotImplementedError

    def run(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Run the model on [1, 3, H, W]; returns the output without its batch axis, [4+nc, N].

        `last_run_ms` holds the time the call took. A remote backend raises InferenceError
        when the server cannot answer.
        """
        start = time.perf_counter()
        output = self._infer(tensor)
        self.last_run_ms = (time.perf_counter() - start) * 1000
        return output

    def warmup(self, runs: int = 1) -> float:
        """Run `runs` blank frames (the first run allocates); returns the last run's ms."""
        tensor = self.new_input()
        for _ in range(max(1, runs)):
            self.run(tensor)
        return self.last_run_ms

    def describe(self) -> dict[str, Any]:
        """What runs the model, for `<prefix>/info` and `bench`."""
        return {"backend": self.backend}

    def health(self) -> dict[str, Any]:
        """The backend's health, for `<prefix>/stats`."""
        return {"backend": self.backend, "healthy": True}

    def close(self) -> None:
        """Release connections (nothing to do for a local model)."""


class ModelRuntime(ModelBackend):
    """An onnxruntime session with the input size and class names read from the model.

    `providers` are onnxruntime execution providers in order of preference (e.g.
    CUDAExecutionProvider, OpenVINOExecutionProvider); those this onnxruntime build lacks are
    skipped with a warning, and the CPU provider always comes last as the fallback.
    """

    backend = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        *,
        smoke_classes: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        memory_pattern: bool = False,
        memory_arena: bool = True,
        providers: Sequence[str] = (CPU_PROVIDER,),
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads > 0:
            options.intra_op_num_threads = intra_op_threads
        if inter_op_threads > 0:
            options.inter_op_num_threads = inter_op_threads
        options.enable_mem_pattern = memory_pattern
        options.enable_cpu_mem_arena = memory_arena
        self.requested_providers = list(providers)
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=choose_providers(providers)
            )
        except Exception as err:  # onnxruntime raises several unrelated types
            raise ModelError(f"onnxruntime cannot load {self.path}: {err}") from err
        # onnxruntime silently drops a provider that fails to initialise (no GPU, no driver).
        self.providers = [str(p) for p in self.session.get_providers()]
        for provider in self.requested_providers:
            if provider not in self.providers and provider in ort.get_available_providers():
                _LOGGER.warning(
                    "onnxruntime could not start %s (see its log above); running on %s",
                    provider,
                    ", ".join(self.providers),
                )

        self.name = model_name(self.path)
        self.input_name, self.input_h, self.input_w = self._check_input()
        self.output_name, classes = self._check_output()
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.class_names = parse_class_names(metadata.get("names"), classes)
        self.smoke_class_ids = self._choose_classes(smoke_classes)
        self.last_run_ms = 0.0

    def _check_input(self) -> tuple[str, int, int]:
        """The input's name, H and W; it must be one float [1, 3, H, W] with a fixed H and W."""
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"{self.path.name} is not a detector: it has {len(inputs)} inputs, expected one"
            )
        shape = inputs[0].shape
        # A symbolic batch axis ("batch") is fine: frames are always fed one at a time.
        if (
            len(shape) != 4
            or (isinstance(shape[0], int) and shape[0] != 1)
            or shape[1] != 3
            or not all(isinstance(v, int) and v > 0 for v in shape[2:])
        ):
            raise ModelError(
                f"{self.path.name}: input {inputs[0].name} has shape {shape}; "
                "expected [1, 3, H, W] with a fixed H and W (export with dynamic=False)"
            )
        if inputs[0].type != "tensor(float)":
            raise ModelError(
                f"{self.path.name}: input {inputs[0].name} is {inputs[0].type}; expected "
                "tensor(float) (export without half=True)"
            )
        return str(inputs[0].name), int(shape[2]), int(shape[3])

    def _check_output(self) -> tuple[str, int]:
        """The first output's name and class count; it must be [1, 4+nc, N] with N > 4+nc."""
        outputs = self.session.get_outputs()
        if not outputs:
            raise ModelError(f"{self.path.name} is not a detector: it has no output")
        shape = outputs[0].shape
        rows = shape[1] if len(shape) == 3 else None
        boxes = shape[2] if len(shape) == 3 else None
        if (
            not isinstance(rows, int)
            or rows < 5
            # [1, N, 6] (end-to-end/NMS exports) or [1, N, 4+nc]: boxes along the wrong axis
            or (isinstance(boxes, int) and 6 <= boxes < rows)
            or outputs[0].type != "tensor(float)"
        ):
            raise ModelError(
                f"{self.path.name}: output {outputs[0].name} is {outputs[0].type} {shape}; "
                "expected float [1, 4+classes, N] as YOLOv8/YOLO11 detectors exported with "
                "nms=False give"
            )
        return str(outputs[0].name), rows - 4

    def _infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        # A view of onnxruntime's output (no copy).
        output = self.session.run([self.output_name], {self.input_name: tensor})[0]
        return np.asarray(output[0], dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """The backend and the execution providers actually in use, in order."""
        return {"backend": self.backend, "providers": self.providers}

    def health(self) -> dict[str, Any]:
        """A local model is healthy once loaded."""
        return {"backend": self.backend, "healthy": True, "providers": self.providers}


def choose_providers(requested: Sequence[str]) -> list[str]:
    """The requested execution providers this onnxruntime build has, in order, CPU last."""
    available = ort.get_available_providers()
    chosen: list[str] = []
    for provider in requested:
        if provider == CPU_PROVIDER or provider in chosen:
            continue
        if provider in available:
            chosen.append(provider)
        else:
            _LOGGER.warning(
                "onnxruntime execution provider %s is not in this build (it has %s): skipped; "
                "install the onnxruntime package that provides it (e.g. onnxruntime-gpu)",
                provider,
                ", ".join(available),
            )
    return [*chosen, CPU_PROVIDER]


PROTOCOLS = ("http", "grpc")
_SCHEMES = {"http://": False, "https://": True, "grpc://": False, "grpcs://": True}


def split_url(url: str) -> tuple[str, bool]:
    """`host:port` as tritonclient wants it, and whether to use TLS (https://, grpcs://)."""
    for scheme, tls in _SCHEMES.items():
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/"), tls
    return url.rstrip("/"), False


def _dims(shape: Sequence[Any]) -> list[int]:
    """A metadata shape as ints (gRPC's JSON gives strings; -1 is a variable axis)."""
    return [int(v) for v in shape]


class TritonModel(ModelBackend):
    """A model served by Triton (or any KServe v2 server), through NVIDIA's tritonclient.

    Input size and output classes come from the server's model metadata; class names from
    the model config's `names` parameter when the server has one (Triton), else class_<i>.
    A failed request raises InferenceError (the frame counts as a camera error) and the next
    request tries again, so detection resumes by itself when the server returns.
    """

    backend = "triton"

    def __init__(
        self,
        url: str,
        name: str,
        *,
        protocol: str = "http",
        version: str = "",
        timeout: float = 10.0,
        smoke_classes: Sequence[str] | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ModelError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        self.url = url
        self.address, self.tls = split_url(url)
        self.protocol = protocol
        self.model = name
        self.version = version
        self.timeout = timeout
        self.name = f"{name}@triton"
        self._local = threading.local()
        self._lock = threading.Lock()
        self.requests = 0
        self.failures = 0
        self.last_error: str | None = None
        self.healthy = True
        try:
            import tritonclient  # noqa: F401
        except ImportError as err:
            raise ModelError(
                "model: backend: triton needs NVIDIA's client: pip install 'smokewatch[triton]'"
            ) from err
        metadata, config = self._read_model()
        self.input_name, self.input_h, self.input_w = self._check_input(metadata)
        self.output_name, classes = self._check_output(metadata)
        names = (config.get("parameters") or {}).get("names") or {}
        self.class_names = parse_class_names(names.get("string_value"), classes)
        self.smoke_class_ids = self._choose_classes(smoke_classes)
        self._drop_client()  # the loading thread is done; the worker connects on its own

    # -- the client ------------------------------------------------------------------------

    def _client(self) -> Any:
        """This thread's client: geventhttpclient's connections belong to the thread that
        made them, so each thread (the loader, the worker) has its own."""
        client = getattr(self._local, "client", None)
        if client is None:
            if self.protocol == "grpc":
                import tritonclient.grpc as grpcclient

                client = grpcclient.InferenceServerClient(self.address, ssl=self.tls)
            else:
                import tritonclient.http as httpclient

                client = httpclient.InferenceServerClient(
                    self.address,
                    ssl=self.tls,
                    connection_timeout=self.timeout,
                    network_timeout=self.timeout,
                )
            self._local.client = client
        return client

    def _drop_client(self) -> None:
        """Forget this thread's client after a failure: the next request reconnects."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            try:
                client.close()
            except Exception:  # a broken connection may fail to close; it is dropped anyway
                _LOGGER.debug("Closing the Triton client failed", exc_info=True)

    def _where(self) -> str:
        return f"model {self.model!r} on {self.protocol} {self.url}"

    def _read_model(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The model's metadata and config; ModelError says what is wrong."""
        from tritonclient.utils import InferenceServerException

        client = self._client()
        grpc = self.protocol == "grpc"
        try:
            if not client.is_server_live(**self._timeout_kw()):
                raise ModelError(f"the inference server at {self.url} is not live")
            if not client.is_model_ready(self.model, self.version, **self._timeout_kw()):
                raise ModelError(
                    f"the inference server at {self.url} has no ready model {self.model!r}"
                    f"{self._available()}: check model: name (and version)"
                )
            kw: dict[str, Any] = {"as_json": True} if grpc else {}
            metadata = client.get_model_metadata(self.model, self.version, **kw)
            try:
                config = client.get_model_config(self.model, self.version, **kw)
            except InferenceServerException:
                config = {}  # KServe servers other than Triton have no model config
        except ModelError:
            self._drop_client()
            raise
        except Exception as err:  # unreachable, refused, TLS, timeout: all say the same
            self._drop_client()
            raise ModelError(f"cannot reach the inference server at {self.url}: {err}") from err
        if grpc:
            config = config.get("config", {})
        return metadata, config

    def _timeout_kw(self) -> dict[str, Any]:
        return {"client_timeout": self.timeout} if self.protocol == "grpc" else {}

    def _available(self) -> str:
        """ ", it serves: a, b" from the server's repository index, when it answers."""
        try:
            client = self._client()
            if self.protocol == "grpc":
                index = client.get_model_repository_index(as_json=True).get("models", [])
            else:
                index = client.get_model_repository_index()
            names = sorted({str(entry.get("name")) for entry in index if entry.get("name")})
        except Exception:  # the index is a courtesy in an error message
            return ""
        # Servers that load models by API (pytriton) list none: say nothing rather than "none".
        return f" (it serves: {', '.join(names)})" if names else ""

    def _check_input(self, metadata: dict[str, Any]) -> tuple[str, int, int]:
        inputs = metadata.get("inputs", [])
        if len(inputs) != 1:
            raise ModelError(
                f"{self._where()} is not a detector: it has {len(inputs)} inputs, expected one"
            )
        shape = _dims(inputs[0]["shape"])
        if len(shape) != 4 or shape[0] not in (-1, 1) or shape[1] != 3 or min(shape[2:]) <= 0:
            raise ModelError(
                f"{self._where()}: input {inputs[0]['name']} has shape {shape}; expected "
                "[-1 or 1, 3, H, W] with a fixed H and W"
            )
        if inputs[0]["datatype"] != "FP32":
            raise ModelError(
                f"{self._where()}: input {inputs[0]['name']} is {inputs[0]['datatype']}; "
                "expected FP32"
            )
        return str(inputs[0]["name"]), shape[2], shape[3]

    def _check_output(self, metadata: dict[str, Any]) -> tuple[str, int]:
        outputs = metadata.get("outputs", [])
        if not outputs:
            raise ModelError(f"{self._where()} is not a detector: it has no output")
        shape = _dims(outputs[0]["shape"])
        if len(shape) != 3 or shape[1] < 5 or outputs[0]["datatype"] != "FP32":
            raise ModelError(
                f"{self._where()}: output {outputs[0]['name']} is {outputs[0]['datatype']} "
                f"{shape}; expected FP32 [-1, 4+classes, N] (YOLOv8/YOLO11, nms=False)"
            )
        return str(outputs[0]["name"]), shape[1] - 4

    # -- inference -------------------------------------------------------------------------

    def _infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        try:
            output = self._request(tensor)
        except Exception as err:  # every failure of the remote call is the server's state
            self._failed(err)
            raise InferenceError(
                "inference_unavailable", f"{self._where()} did not answer: {err}"
            ) from err
        if output is None or output.ndim != 3 or output.shape[0] != 1:
            shape = None if output is None else output.shape
            self._failed(ValueError(f"output shape {shape}"))
            raise InferenceError(
                "inference_unavailable", f"{self._where()} returned an output of shape {shape}"
            )
        self._succeeded()
        return np.asarray(output[0], dtype=np.float32)

    def _request(self, tensor: NDArray[np.float32]) -> NDArray[np.float32] | None:
        client = self._client()
        if self.protocol == "grpc":
            import tritonclient.grpc as grpcclient

            grpc_input = grpcclient.InferInput(self.input_name, list(tensor.shape), "FP32")
            grpc_input.set_data_from_numpy(tensor)
            result = client.infer(
                self.model,
                [grpc_input],
                model_version=self.version,
                outputs=[grpcclient.InferRequestedOutput(self.output_name)],
                client_timeout=self.timeout,
            )
        else:
            import tritonclient.http as httpclient

            http_input = httpclient.InferInput(self.input_name, list(tensor.shape), "FP32")
            http_input.set_data_from_numpy(tensor, binary_data=True)
            result = client.infer(
                self.model,
                [http_input],
                model_version=self.version,
                outputs=[httpclient.InferRequestedOutput(self.output_name, binary_data=True)],
            )
        output = result.as_numpy(self.output_name)
        return None if output is None else np.asarray(output)

    def _failed(self, err: Exception) -> None:
        self._drop_client()
        with self._lock:
            self.requests += 1
            self.failures += 1
            self.last_error = str(err)[:300]
            was_healthy, self.healthy = self.healthy, False
        if was_healthy:
            _LOGGER.warning(
                "Inference server: %s failed (%s); frames count as camera errors until it "
                "answers again",
                self._where(),
                self.last_error,
            )

    def _succeeded(self) -> None:
        with self._lock:
            self.requests += 1
            was_healthy, self.healthy = self.healthy, True
        if not was_healthy:
            _LOGGER.warning("Inference server: %s answers again", self._where())

    def describe(self) -> dict[str, Any]:
        """The server, protocol and model name (never credentials: the URL has none)."""
        return {
            "backend": self.backend,
            "url": self.url,
            "protocol": self.protocol,
            "model": self.model,
            "version": self.version or None,
        }

    def health(self) -> dict[str, Any]:
        """Whether the last request succeeded, request and failure counts, the last error."""
        with self._lock:
            return {
                **self.describe(),
                "healthy": self.healthy,
                "requests": self.requests,
                "failures": self.failures,
                "last_error": self.last_error,
            }

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop_client()
