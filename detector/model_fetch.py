"""Find the model: a local file, or Pyronear's model downloaded once into a cache directory.

A Hugging Face repo id "owner/name" is fetched from
`<base>/<owner>/<name>/resolve/<revision>/onnx_cpu.tar.gz` (base https://huggingface.co, or
the SMOKEWATCH_MODEL_BASE_URL environment variable, e.g. for a mirror; plain http only to a
loopback mirror, and every redirect is held to the same rule), its best.onnx extracted to
`<cache_dir>/<owner>__<name>/best.onnx` and used from there on, without network.

Integrity: the SHA-256 of best.onnx is written beside it (`best.onnx.sha256`) at download and
checked at every start; with `model.sha256` configured, the download must match it too. A
cached file that does not match (a disk error, a write cut short) is fetched again, once, and
the log says so.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from detector.config.model import DEFAULT_MODEL
from detector.errors import ModelError

_LOGGER = logging.getLogger(__name__)

ARCHIVE = "onnx_cpu.tar.gz"
MODEL_FILE = "best.onnx"
BASE_URL_ENV = "SMOKEWATCH_MODEL_BASE_URL"
DEFAULT_BASE_URL = "https://huggingface.co"
DEFAULT_REVISION = "main"
DIGEST_SUFFIX = ".sha256"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
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


def cache_path(spec: str, cache_dir: Path, revision: str = DEFAULT_REVISION) -> Path:
    """Where the model of repo id `spec` (at `revision`) is kept once downloaded."""
    folder = spec.replace("/", "__")
    if revision != DEFAULT_REVISION:
        folder += f"__{revision}"
    return cache_dir.expanduser() / folder / MODEL_FILE


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_ok(target: Path, expected: str | None) -> bool:
    """True when the cached model matches its recorded digest (and the pinned one)."""
    sidecar = target.with_name(target.name + DIGEST_SUFFIX)
    try:
        recorded = sidecar.read_text().strip() if sidecar.is_file() else None
        actual = file_sha256(target)
    except OSError:
        return False
    if expected is not None and actual != expected:
        return False
    if recorded is None:
        # Cached by an older version: record it now; loading it tells whether it is usable.
        with contextlib.suppress(OSError):  # a read-only cache still works, unrecorded
            sidecar.write_text(actual + "\n")
        return True
    return recorded == actual


def resolve_model(
    spec: str | None,
    cache_dir: Path,
    *,
    progress: bool = True,
    base_url: str | None = None,
    revision: str = DEFAULT_REVISION,
    sha256: str | None = None,
    refetch: bool = False,
) -> Path:
    """The local path of the model `spec` (default DEFAULT_MODEL).

    An existing file is returned as is. A repo id ("owner/name") is looked up in `cache_dir`
    and downloaded when absent, when it does not match its digest, or with `refetch` (the
    cached file would not load). Raises ModelError saying what to do otherwise.
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
    target = cache_path(spec, cache_dir, revision)
    if target.is_file() and not refetch:
        if _cached_ok(target, sha256):
            return target
        _LOGGER.warning(
            "The cached model %s does not match its SHA-256 (a disk error or a cut write?):"
            " downloading it again",
            target,
        )
    elif refetch and target.is_file():
        _LOGGER.warning("The cached model %s cannot be loaded: downloading it again", target)
    base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    if not _allowed_source(base):
        raise ModelError(
            f"the model mirror {base} is not https: a model is code that runs on this machine,"
            f" so it is fetched over https only (plain http only from a loopback mirror)."
            f" {_how_to_fix(spec)}"
        )
    url = f"{base}/{spec}/resolve/{revision}/{ARCHIVE}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelError(f"cannot create the model cache {target.parent}: {err}") from err
    _LOGGER.info("Downloading model %s from %s (once; cached in %s)", spec, url, target.parent)
    # The scratch directory sits beside the target so the final rename stays atomic.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as scratch:
        archive = Path(scratch) / ARCHIVE
        try:
            _download(url, archive, spec, progress=progress)
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
        actual = file_sha256(extracted)
        if sha256 is not None and actual != sha256:
            raise ModelError(
                f"the downloaded {MODEL_FILE} of {spec} has SHA-256 {actual}, not the expected"
                f" {sha256} (model.sha256): refused. {_how_to_fix(spec)}"
            )
        # The digest first: a crash between the two leaves a model that fails its check and
        # is fetched again, never an unchecked one.
        target.with_name(target.name + DIGEST_SUFFIX).write_text(actual + "\n")
        os.replace(extracted, target)
    _LOGGER.info("Model %s saved to %s", spec, target)
    return target


def _allowed_source(url: str) -> bool:
    """https, or plain http from a loopback host: the rule for the mirror and every redirect."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    return scheme == "https" or (scheme == "http" and host in _LOOPBACK)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a place the mirror itself could be: Hugging Face sends the
    file on to its CDN, and a redirect must not take the download to plain http elsewhere
    (urllib follows https -> http by itself)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not _allowed_source(newurl):
            try:
                parts = urlsplit(newurl)
                where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
            except ValueError:
                where = "an unreadable URL"
            raise ModelError(
                f"the download of model {self.spec} was redirected to {where}, which is not"
                f" https: a model is code that runs on this machine, so it is fetched over https"
                f" only (plain http only from a loopback mirror); not followed."
                f" {_how_to_fix(self.spec)}"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, destination: Path, spec: str, *, progress: bool) -> None:
    """Stream `url` to `destination` with a progress bar; OSError if it arrives incomplete.
    Every redirect is checked like the first URL (ModelError when refused)."""
    request = urllib.request.Request(url, headers={"User-Agent": "smokewatch"})
    opener = urllib.request.build_opener(_CheckedRedirects(spec))
    with opener.open(request, timeout=DOWNLOAD_TIMEOUT) as response:
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
