"""Fetching the default model once into the cache, tested against a local HTTP server."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from detector.errors import ModelError
from detector.model import ModelRuntime
from detector.model_fetch import BASE_URL_ENV, resolve_model
from tests.detector.broker import free_port
from tests.detector.tiny_model import make_tiny_model

REPO_ID = "pyronear/yolo11s_rapid-raccoon_v8.1.0"


def tarball(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, target in (links or {}).items():
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def leftovers(cache: Path) -> list[Path]:
    """Anything a failed download left in the cache (scratch directories, partial files)."""
    return [p for p in cache.rglob("*") if p.is_file() or p.name.startswith(".download")]


HF_PATH = f"/{REPO_ID}/resolve/main/onnx_cpu.tar.gz"


class Server:
    """Serves one archive and counts requests: at the Hugging Face path (404 elsewhere), or at
    every path when `path` is None. `redirect_to` answers with a redirect to that base plus the
    request's path (as Hugging Face sends a file to its CDN); `location`, settable between
    requests, answers with a redirect to exactly that."""

    def __init__(
        self,
        body: bytes,
        status: int = 200,
        declared: int | None = None,
        *,
        host: str = "127.0.0.1",
        redirect_to: str | None = None,
        path: str | None = HF_PATH,
    ) -> None:
        self.body, self.status, self.requests = body, status, 0
        self.declared = len(body) if declared is None else declared
        self.location = ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                target = server.location
                if not target and redirect_to is not None:
                    target = redirect_to + self.path
                if target:
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = server.status if path is None or self.path == path else 404
                self.send_response(status)
                self.send_header("Content-Length", str(server.declared))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def model_bytes(tmp_path: Path) -> bytes:
    return make_tiny_model(tmp_path / "best.onnx").read_bytes()


@pytest.fixture
def serve() -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.close()


def test_local_file_is_used_as_is(tmp_path: Path, model_bytes: bytes) -> None:
    path = tmp_path / "mine.onnx"
    path.write_bytes(model_bytes)
    assert resolve_model(str(path), tmp_path / "cache") == path


def test_download_once_then_offline(
    tmp_path: Path, model_bytes: bytes, serve: list[Server]
) -> None:
    server = Server(tarball({"onnx_cpu/best.onnx": model_bytes, "README.md": b"hi"}))
    serve.append(server)
    cache = tmp_path / "cache"
    path = resolve_model(REPO_ID, cache, base_url=server.url, progress=False)
    assert path.read_bytes() == model_bytes
    assert ModelRuntime(path).class_names == ["smoke"]
    server.close()  # no network any more: the cache answers
    serve.clear()
    assert resolve_model(REPO_ID, cache, base_url=server.url, progress=False) == path
    assert server.requests == 1


def test_not_found_says_how_to_use_a_local_file(tmp_path: Path, serve: list[Server]) -> None:
    server = Server(b"nope", status=404)
    serve.append(server)
    with pytest.raises(ModelError) as caught:
        resolve_model(REPO_ID, tmp_path, base_url=server.url, progress=False)
    message = str(caught.value)
    assert "404" in message and "model: path:" in message and "--model" in message
    assert not leftovers(tmp_path)


def test_connection_refused(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ModelError, match="cannot download") as caught:
        resolve_model(REPO_ID, tmp_path, base_url=url, progress=False)
    assert "refused" in str(caught.value) and "model: path:" in str(caught.value)
    assert not leftovers(tmp_path)


def test_download_cut_short(tmp_path: Path, model_bytes: bytes, serve: list[Server]) -> None:
    body = tarball({"best.onnx": model_bytes})
    serve.append(Server(body[: len(body) // 2], declared=len(body)))
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="cannot download") as caught:
        resolve_model(REPO_ID, cache, base_url=serve[0].url, progress=False)
    assert str(len(body)) in str(caught.value)
    assert not leftovers(cache)


def test_base_url_from_the_environment(
    tmp_path: Path, model_bytes: bytes, serve: list[Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve.append(Server(tarball({"best.onnx": model_bytes})))
    monkeypatch.setenv(BASE_URL_ENV, serve[0].url + "/")
    path = resolve_model(REPO_ID, tmp_path, progress=True)  # the bar goes to stderr
    assert path == tmp_path / "pyronear__yolo11s_rapid-raccoon_v8.1.0" / "best.onnx"
    assert path.read_bytes() == model_bytes and serve[0].requests == 1


def test_archive_without_model(tmp_path: Path, serve: list[Server]) -> None:
    serve.append(Server(tarball({"other.txt": b"x"})))
    with pytest.raises(ModelError, match=r"holds no best\.onnx"):
        resolve_model(REPO_ID, tmp_path, base_url=serve[0].url, progress=False)


def test_traversal_member_cannot_escape(
    tmp_path: Path, model_bytes: bytes, serve: list[Server]
) -> None:
    serve.append(Server(tarball({"../../escape/best.onnx": model_bytes})))
    cache = tmp_path / "cache"
    path = resolve_model(REPO_ID, cache, base_url=serve[0].url, progress=False)
    assert path.is_relative_to(cache)
    assert not (tmp_path / "escape").exists()


def test_link_named_like_the_model_is_not_followed(
    tmp_path: Path, model_bytes: bytes, serve: list[Server]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the cache")
    serve.append(Server(tarball({}, links={"best.onnx": str(secret)})))
    with pytest.raises(ModelError, match=r"holds no best\.onnx"):
        resolve_model(REPO_ID, tmp_path / "cache", base_url=serve[0].url, progress=False)


def test_corrupt_archive(tmp_path: Path, serve: list[Server]) -> None:
    serve.append(Server(b"\x1f\x8b not really gzip"))
    with pytest.raises(ModelError, match=r"not a valid tar\.gz"):
        resolve_model(REPO_ID, tmp_path, base_url=serve[0].url, progress=False)


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "absent.onnx"), tmp_path)


def test_neither_file_nor_repo_id(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="repo id such as pyronear/"):
        resolve_model("not a model", tmp_path)


def test_corrupt_cached_model_is_fetched_again(
    tmp_path: Path, model_bytes: bytes, serve: list[Server], caplog: pytest.LogCaptureFixture
) -> None:
    # A corrupt cached best.onnx used to be reused forever.
    server = Server(tarball({"best.onnx": model_bytes}))
    serve.append(server)
    cache = tmp_path / "cache"
    path = resolve_model(REPO_ID, cache, base_url=server.url, progress=False)
    path.write_bytes(model_bytes[: len(model_bytes) // 2])  # a write cut short
    assert resolve_model(REPO_ID, cache, base_url=server.url, progress=False) == path
    assert path.read_bytes() == model_bytes and server.requests == 2
    assert "does not match its SHA-256" in caplog.text


def test_model_that_does_not_load_is_fetched_again_by_run(
    tmp_path: Path, model_bytes: bytes, serve: list[Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cached by an older version (no recorded digest) and damaged: loading fails, so run
    # fetches it once more instead of failing at every start.
    from detector.assembly import load_model
    from detector.config.model import ModelConfig

    server = Server(tarball({"best.onnx": model_bytes}))
    serve.append(server)
    monkeypatch.setenv(BASE_URL_ENV, server.url)
    cache = tmp_path / "cache"
    damaged = cache / "pyronear__yolo11s_rapid-raccoon_v8.1.0" / "best.onnx"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"\x08\x07 damaged")
    runtime = load_model(ModelConfig(path=REPO_ID, cache_dir=str(cache)), progress=False)
    assert runtime.class_names == ["smoke"] and server.requests == 1


def test_pinned_sha256_is_verified(tmp_path: Path, model_bytes: bytes, serve: list[Server]) -> None:
    import hashlib

    serve.append(Server(tarball({"best.onnx": model_bytes})))
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="not the expected"):
        resolve_model(REPO_ID, cache, base_url=serve[0].url, progress=False, sha256="0" * 64)
    assert not leftovers(cache)
    good = hashlib.sha256(model_bytes).hexdigest()
    path = resolve_model(REPO_ID, cache, base_url=serve[0].url, progress=False, sha256=good)
    assert path.read_bytes() == model_bytes


def test_plain_http_mirror_is_refused_unless_loopback(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not https"):
        resolve_model(REPO_ID, tmp_path, base_url="http://mirror.example", progress=False)


def test_a_redirect_to_a_host_the_config_would_refuse_is_not_followed(
    tmp_path: Path, model_bytes: bytes, serve: list[Server]
) -> None:
    # Plain http is allowed from a loopback mirror only (127.0.0.1, ::1, localhost): the
    # mirror answering 302 to plain http elsewhere (127.0.0.2 stands for any other host, as an
    # https -> http downgrade would) must not be followed; the file was cached and used.
    elsewhere = Server(tarball({"best.onnx": model_bytes}), host="127.0.0.2")
    mirror = Server(b"", redirect_to=elsewhere.url)
    serve.extend([elsewhere, mirror])
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as caught:
        resolve_model(REPO_ID, cache, base_url=mirror.url, progress=False)
    message = str(caught.value)
    assert "redirect" in message and "http://127.0.0.2" in message and "not https" in message
    assert "model: path:" in message
    assert elsewhere.requests == 0 and mirror.requests == 1
    assert not leftovers(cache)
    with pytest.raises(ModelError):  # nothing was cached: the next start refuses it again
        resolve_model(REPO_ID, cache, base_url=mirror.url, progress=False)


def test_a_redirect_to_an_allowed_place_is_followed(
    tmp_path: Path, model_bytes: bytes, serve: list[Server]
) -> None:
    files = Server(tarball({"best.onnx": model_bytes}))
    mirror = Server(b"", redirect_to=files.url)
    serve.extend([files, mirror])
    path = resolve_model(REPO_ID, tmp_path, base_url=mirror.url, progress=False)
    assert path.read_bytes() == model_bytes and files.requests == 1
