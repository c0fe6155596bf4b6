"""Find the model: a local file, or Pyronear's model downloaded once into a cache directory."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from detector.errors import ModelError

_LOGGER = logging.getLogger(__name__)

DEFAULT_MODEL = "pyronear/yolo11s_rapid-raccoon_v8.1.0"
ARCHIVE = "onnx_cpu.tar.gz"
MODEL_FILE = "best.onnx"
BASE_URL_ENV = "SMOKEWATCH_MODEL_BASE_URL"
DEFAULT_BASE_URL = "https://huggingface.co"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
DOWNLOAD_TIMEOUT = 30


def _how_to_fix(spec: str) -> str:
    return (
        f"Download {ARCHIVE} of {spec} elsewhere, extract {MODEL_FILE}, and point the config at "
        f"it (model: path: /path/to/{MODEL_FILE}) or pass --model /path/to/{MODEL_FILE}."
    )


def resolve_model(
    spec: str | None,
    cache_dir: Path,
    *,
    progress: bool = True,
    base_url: str | None = None,
) -> Path:
    """The local path of the model `spec`: an existing file, or a repo id fetched once.

    A repo id ("owner/name") is looked up in `cache_dir` and downloaded only when absent;
    afterwards no network is used.
    """
    spec = spec or DEFAULT_MODEL
    local = Path(spec).expanduser()
    if local.is_file():
        return local
    if local.suffix == ".onnx" or not _REPO_ID.match(spec):
        raise ModelError(f"model file {local} does not exist")
    target = cache_dir.expanduser() / spec.replace("/", "__") / MODEL_FILE
    if target.is_file():
        return target
    base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/{spec}/resolve/main/{ARCHIVE}"
    target.parent.mkdir(parents=True, exist_ok=True)
    _LOGGER.info("Downloading model %s from %s (once; cached in %s)", spec, url, target.parent)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        archive = Path(scratch) / ARCHIVE
        try:
            _download(url, archive, progress=progress)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            reason = getattr(err, "reason", None) or err
            raise ModelError(
                f"cannot download model {spec} from {url}: {reason}. {_how_to_fix(spec)}"
            ) from err
        extracted = Path(scratch) / MODEL_FILE
        _extract_model(archive, extracted, spec)
        os.replace(extracted, target)
    return target


def _download(url: str, destination: Path, *, progress: bool) -> None:
    """Stream `url` to `destination` with a progress bar."""
    request = urllib.request.Request(url, headers={"User-Agent": "smokewatch"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with (
            destination.open("wb") as file,
            tqdm(total=total, unit="B", unit_scale=True, desc="model", disable=not progress) as bar,
        ):
            while chunk := response.read(1 << 16):
                file.write(chunk)
                bar.update(len(chunk))


def _extract_model(archive: Path, destination: Path, spec: str) -> None:
    """Copy the archive's best.onnx (wherever it sits in the archive) to `destination`."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = next(
                (m for m in tar.getmembers() if m.isfile() and Path(m.name).name == MODEL_FILE),
                None,
            )
            if member is None:
                raise ModelError(
                    f"the archive of {spec} holds no {MODEL_FILE}. {_how_to_fix(spec)}"
                )
            source = tar.extractfile(member)
            if source is None:
                raise ModelError(f"{MODEL_FILE} in the archive of {spec} cannot be read")
            with source, destination.open("wb") as file:
                shutil.copyfileobj(source, file)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ModelError(f"the archive of {spec} is not a valid tar.gz: {err}") from err
