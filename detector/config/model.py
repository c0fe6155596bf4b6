"""`model:` which ONNX model scores frames, and how."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol

from detector.config.validators import boolean, integer, mapping_or_empty, number, text
from detector.model_fetch import DEFAULT_MODEL


@dataclass(frozen=True)
class ModelConfig:
    """The model section."""

    path: str = DEFAULT_MODEL
    cache_dir: str = "~/.cache/smokewatch"
    revision: str = "main"
    sha256: str | None = None
    smoke_classes: tuple[str, ...] = ("smoke",)
    conf_thresh: float = 0.05
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    memory_pattern: bool = False
    memory_arena: bool = True


_DEFAULT = ModelConfig()


def _class_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise vol.Invalid("expected a non-empty list of class names, e.g. [smoke]")


def _moved_width(value: Any) -> Any:
    raise vol.Invalid(
        "moved to detection (or a camera): set scene: horizon for Pyronear's 0.4 cap, or "
        "max_bbox_width there"
    )


def _revision(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9._-]{1,100}", value):
        return value
    raise vol.Invalid("expected a branch, tag or commit hash of the model repo")


def _sha256(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return value.lower()
    raise vol.Invalid("expected 64 hexadecimal digits (the SHA-256 of best.onnx)")


MODEL_SCHEMA = vol.All(
    mapping_or_empty,
    vol.Schema(
        {
            # A local .onnx file, or a Hugging Face repo id downloaded once into cache_dir.
            vol.Optional("path", default=_DEFAULT.path): text,
            # Where downloaded models are kept.
            vol.Optional("cache_dir", default=_DEFAULT.cache_dir): text,
            # The repo's revision (a commit hash pins it) and the SHA-256 its best.onnx must
            # have; a download or a cached file that does not match is refused / fetched again.
            vol.Optional("revision", default=_DEFAULT.revision): _revision,
            vol.Optional("sha256", default=None): vol.Any(None, _sha256),
            # The model's class names that count as smoke (e.g. [smoke] or [smoke, fire]).
            vol.Optional("smoke_classes", default=list(_DEFAULT.smoke_classes)): _class_names,
            # Boxes scoring at or below this are ignored before the vote.
            vol.Optional("conf_thresh", default=_DEFAULT.conf_thresh): number(0, 1),
            # Moved: the width cap depends on what a camera watches (its scene).
            vol.Optional("max_bbox_width"): _moved_width,
            # onnxruntime threads inside one operator; 0 lets onnxruntime choose.
            vol.Optional("intra_op_threads", default=0): integer(0, 256),
            # onnxruntime threads across operators; 0 lets onnxruntime choose.
            vol.Optional("inter_op_threads", default=0): integer(0, 256),
            # onnxruntime's memory pattern pre-plans every buffer: ~170 MiB more resident memory
            # for the 1024 model and no measurable speed-up here (BENCHMARKS.md), so off.
            vol.Optional("memory_pattern", default=_DEFAULT.memory_pattern): boolean,
            # onnxruntime's CPU memory arena: off saves memory between frames, costs speed.
            vol.Optional("memory_arena", default=_DEFAULT.memory_arena): boolean,
        },
        extra=vol.PREVENT_EXTRA,
    ),
)


def _local(path: str, base_dir: Path | None) -> str:
    """`path` made absolute against the config file's folder (after ~ expansion)."""
    expanded = Path(path).expanduser()
    if base_dir is None or expanded.is_absolute():
        return str(expanded)
    return str(base_dir / expanded)


def model_config(data: dict[str, Any], base_dir: Path | None = None) -> ModelConfig:
    """The dataclass of a validated model section; relative files resolve against base_dir.

    `path` stays as written when it is a repo id: it is a local file only when it names one
    or ends in .onnx (so a missing local file is reported at its resolved place).
    """
    path: str = data["path"]
    if Path(path).expanduser().is_absolute() or path.endswith(".onnx"):
        path = _local(path, base_dir)
    elif base_dir is not None and (base_dir / path).is_file():
        path = str(base_dir / path)
    return ModelConfig(
        **{
            **data,
            "path": path,
            "cache_dir": _local(data["cache_dir"], base_dir),
        }
    )
