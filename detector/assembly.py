"""Build the model and the pipeline from a validated configuration."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from detector.config import CameraConfig, Config, ModelConfig
from detector.errors import ModelError
from detector.guard import GuardSettings
from detector.model import ModelBackend, ModelRuntime
from detector.model_fetch import resolve_model
from detector.model_triton import TritonModel
from detector.pipeline import Pipeline, ScoringSettings, ScoringState

_LOGGER = logging.getLogger(__name__)


def _load_local(model: ModelConfig, spec: str, progress: bool) -> ModelRuntime:
    """The local model file on onnxruntime (downloaded once if `spec` is a repo id); a cached
    download that does not load is fetched once more."""
    cache = Path(model.cache_dir).expanduser()

    def fetch(*, refetch: bool = False) -> Path:
        return resolve_model(
            spec,
            cache,
            progress=progress,
            revision=model.revision,
            sha256=model.sha256,
            refetch=refetch,
        )

    def runtime_of(path: Path) -> ModelRuntime:
        return ModelRuntime(
            path,
            smoke_classes=list(model.smoke_classes),
            intra_op_threads=model.intra_op_threads,
            inter_op_threads=model.inter_op_threads,
            memory_pattern=model.memory_pattern,
            memory_arena=model.memory_arena,
            providers=model.providers,
        )

    path = fetch()
    try:
        return runtime_of(path)
    except ModelError:
        if path == Path(spec).expanduser():
            raise  # the user's own file: nothing to fetch again
        # A cached download that does not load (cut short, damaged): fetch it once more.
        return runtime_of(fetch(refetch=True))


def load_model(
    model: ModelConfig, *, override: str | None = None, progress: bool = True
) -> ModelBackend:
    """The configured model: the local file (downloaded once if needed; `override` replaces
    it) on onnxruntime, or the named model on an inference server (backend: triton)."""
    if model.backend == "triton" and override is None:
        if model.url is None or model.name is None:  # the schema requires both
            raise ModelError("model: backend: triton needs url and name")
        runtime: ModelBackend = TritonModel(
            model.url,
            model.name,
            protocol=model.protocol,
            version=model.version,
            timeout=model.timeout,
            smoke_classes=list(model.smoke_classes),
        )
    else:
        runtime = _load_local(model, override or model.path, progress)
    _LOGGER.info(
        "Model %s: input %dx%d, classes %s, smoke classes %s, %s",
        runtime.name,
        runtime.input_w,
        runtime.input_h,
        runtime.class_names,
        [runtime.class_names[i] for i in runtime.smoke_class_ids],
        runtime.describe(),
    )
    return runtime


def camera_settings(camera: CameraConfig) -> ScoringSettings:
    """The pipeline's view of a configured camera."""
    return ScoringSettings(
        name=camera.id,
        threshold=camera.threshold,
        nb_frames=camera.nb_frames,
        scene=camera.scene,
        max_bbox_width=camera.width_cap,
        night=camera.night_mode,
        guard=scene_guard(camera.scene),
    )


def scene_guard(scene: str) -> GuardSettings | None:
    """The guard a scene applies: the nearby scene's against still look-alikes (no width cap
    guards it); none for the horizon scene, whose width cap is Pyronear's own guard."""
    return GuardSettings() if scene == "nearby" else None


def register_camera(pipeline: Pipeline, camera: CameraConfig) -> ScoringState:
    """Register a configured camera with its configured masks."""
    state = pipeline.add_camera(camera_settings(camera))
    state.set_masks("config", camera.masks)
    return state


def build_pipeline(
    config: Config, model: ModelBackend, cameras: Iterable[str] | None = None
) -> Pipeline:
    """A pipeline with the configured cameras (or only those named) registered."""
    pipeline = Pipeline(
        model,
        conf_thresh=config.model.conf_thresh,
        max_frame_bytes=config.detection.max_frame_bytes,
    )
    names = config.cameras if cameras is None else cameras
    for name in names:
        register_camera(pipeline, config.cameras[name])
    return pipeline
