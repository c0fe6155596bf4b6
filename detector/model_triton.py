"""The model on an inference server: `TritonModel`, for NVIDIA Triton and any server that speaks
the KServe v2 / Open Inference Protocol (OpenVINO Model Server, KServe), over HTTP or gRPC,
through NVIDIA's tritonclient (`pip install 'smokewatch[triton]'`).

The pipeline sends it the letterboxed tensor it would give onnxruntime; input size and class
names come from the server's metadata. A request the server does not answer is an
`InferenceError` (a camera error, `inference_unavailable`), and detection resumes when it
answers again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detector.errors import InferenceError, ModelError
from detector.model import ModelBackend, parse_class_names

_LOGGER = logging.getLogger(__name__)


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
