"""Find the model: a local file, or Pyronear's model downloaded once into a cache directory.

A Hugging Face repo id "owner/name" is fetched from
`<base>/<owner>/<name>/resolve/main/onnx_cpu.tar.gz` (base https://huggingface.co, or the
SMOKEWATCH_MODEL_BASE_URL environment variable, e.g. for a mirror), its best.onnx extracted
to `<cache_dir>/<owner>__<name>/best.onnx` and used from there on, without network.
"""

from __future__ import annotations

import http.client
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
DOWNLOAD_TIMEOUT = 30  # seconds without a byte before giving up
MAX_MODEL_BYTES = 2 * 1024**3  # a detector is tens of MB; this only stops a runaway archive
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHUNK = 1 << 16


def _how_to_fix(spec: str) -> str:
    return (
        f"Download {ARCHIVE} of {spec} elsewhere, extract {MODEL_FILE}, and point SmokeWatch "
        f"at it: 'model: path: /path/to/{MODEL_FILE}' in the config, or "
        f"--model /path/to/{MODEL_FILE} on the command line."
    )


def cache_path(spec: str, cache_dir: Path) -> Path:
    """Where the model of repo id `spec` is kept once downloaded."""
    return cache_dir.expanduser() / spec.replace("/", "__") / MODEL_FILE


def resolve_model(
    spec: str | None,
    cache_dir: Path,
    *,
    progress: bool = True,
    base_url: str | None = None,
) -> Path:
    """The local path of the model `spec` (default DEFAULT_MODEL).

    An existing file is returned as is. A repo id ("owner/name") is looked up in `cache_dir`
    and downloaded only when absent. Raises ModelError saying what to do otherwise.
    """
    spec = spec or DEFAULT_MODEL
    local = Path(spec).expanduser()
    if local.is_file():
        return local
    if local.suffix == ".onnx" or not _REPO_ID.match(spec):
        raise ModelError(
            f"model file {local} does not exist (model: path: takes an .onnx file or a "
            f"Hugging Face repo id such as {DEFAULT_MODEL})"
        )
    target = cache_path(spec, cache_dir)
    if target.is_file():
        return target
    base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/{spec}/resolve/main/{ARCHIVE}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelError(f"cannot create the model cache {target.parent}: {err}") from err
    _LOGGER.info("Downloading model %s from %s (once; cached in %s)", spec, url, target.parent)
    # The scratch directory sits beside the target so the final rename stays atomic.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as scratch:
        archive = Path(scratch) / ARCHIVE
        try:
            _download(url, archive, progress=progress)
        except urllib.error.HTTPError as err:
            raise ModelError(
                f"cannot download model {spec} from {url}: {err}. {_how_to_fix(spec)}"
            ) from err
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", None) or err
            raise ModelError(
                f"cannot download model {spec} from {url}: {reason}. {_how_to_fix(spec)}"
            ) from err
        extracted = Path(scratch) / MODEL_FILE
        _extract_model(archive, extracted, spec)
        os.replace(extracted, target)
    _LOGGER.info("Model %s saved to %s", spec, target)
    return target


def _download(url: str, destination: Path, *, progress: bool) -> None:
    """Stream `url` to `destination` with a progress bar; OSError if it arrives incomplete."""
    request = urllib.request.Request(url, headers={"User-Agent": "smokewatch"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        received = 0
        with (
            destination.open("wb") as file,
            tqdm(total=total, unit="B", unit_scale=True, desc="model", disable=not progress) as bar,
        ):
            while chunk := response.read(_CHUNK):
                file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise OSError(f"connection closed after {received} of {total} bytes")


def _extract_model(archive: Path, destination: Path, spec: str) -> None:
    """Copy the archive's best.onnx (wherever it sits in the archive) to `destination`.

    Only that one regular-file member is read, through a stream, to a path chosen here: a
    member name with ../ or an absolute path, a link or a device can never write elsewhere.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = next(
                (m for m in tar if m.isfile() and m.name.rsplit("/", 1)[-1] == MODEL_FILE),
                None,
            )
            if member is None:
                raise ModelError(
                    f"the archive of {spec} holds no {MODEL_FILE}. {_how_to_fix(spec)}"
                )
            if member.size > MAX_MODEL_BYTES:
                raise ModelError(
                    f"{MODEL_FILE} in the archive of {spec} is {member.size} bytes: "
                    "too large to be a detector"
                )
            source = tar.extractfile(member)
            if source is None:
                raise ModelError(f"{MODEL_FILE} in the archive of {spec} cannot be read")
            with source, destination.open("wb") as file:
                shutil.copyfileobj(source, file, _CHUNK)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ModelError(f"the archive of {spec} is not a valid tar.gz: {err}") from err
