"""`model:` which ONNX model scores frames, and how."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from detector.config.validators import integer, number, positive_number, text
from detector.model_fetch import DEFAULT_MODEL


@dataclass(frozen=True)
class ModelConfig:
    """The model section."""

    path: str = DEFAULT_MODEL
    cache_dir: str = "~/.cache/smokewatch"
    smoke_classes: tuple[str, ...] = ("smoke",)
    conf_thresh: float = 0.05
    max_bbox_width: float = 0.4
    intra_op_threads: int = 0
    inter_op_threads: int = 0


_DEFAULT = ModelConfig()

MODEL_SCHEMA = vol.Schema(
    {
        # A local .onnx file, or a Hugging Face repo id downloaded once into cache_dir.
        vol.Optional("path", default=_DEFAULT.path): text,
        # Where downloaded models are kept.
        vol.Optional("cache_dir", default=_DEFAULT.cache_dir): text,
        # The model's class names that count as smoke (e.g. [smoke] or [smoke, fire]).
        vol.Optional("smoke_classes", default=list(_DEFAULT.smoke_classes)): vol.All(
            [text], vol.Length(min=1), msg="expected a non-empty list of class names"
        ),
        # Boxes scoring at or below this are ignored before the vote.
        vol.Optional("conf_thresh", default=_DEFAULT.conf_thresh): number(0, 1),
        # Boxes wider than this fraction of the frame are dropped (Pyronear's max_bbox_size).
        vol.Optional("max_bbox_width", default=_DEFAULT.max_bbox_width): positive_number(1),
        # onnxruntime threads; 0 lets onnxruntime choose.
        vol.Optional("intra_op_threads", default=0): integer(0, 256),
        vol.Optional("inter_op_threads", default=0): integer(0, 256),
    },
    extra=vol.PREVENT_EXTRA,
)


def model_config(data: dict[str, Any]) -> ModelConfig:
    """The dataclass of a validated model section."""
    return ModelConfig(**{**data, "smoke_classes": tuple(data["smoke_classes"])})
