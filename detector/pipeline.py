"""One frame's trip through SmokeWatch: bytes in, scored result out.

The same pipeline serves the live MQTT service, replay, the benchmark and the tests. It holds no
I/O: callers hand it bytes and get a FrameResult, whose `detections` are the frames to forward to
the bridge now (the lead-up window at alert onset, then one per scored frame while the alert lasts).

Two kinds of frame are not voted on, and leave the vote, the alert window and an open alert as
they were (DESIGN.md §6, decision 10), judged in this order:

1. **night**: a grey (infrared) frame on a camera whose `night` is `pause` (Pyronear's rule);
2. **repeat**: the very bytes of the previous frame. A live sensor's noise makes two captures
   differ, so the same bytes again are no new capture: a stuck camera, an NVR re-serving a dead
   camera's last frame, or a relay publishing faster than the camera refreshes. Voting on them
   would count one observation several times, so a single frame could start an alert. The model
   does not run on them (the same bytes give the same boxes).

An open alert is held through such frames, neither extended nor ended: a camera that freezes
during a fire (its mast burnt, its link cut) must not close the alarm for lack of news, and its
`frozen` view/status tells the user the camera is stuck. Nothing is sent to the bridge for them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from detector.config.detection import DEFAULT_MAX_FRAME_BYTES
from detector.contract import Boxes, DetectionMessage
from detector.frames import decode_frame, letterbox_into
from detector.guard import ChangeGuard, GuardSettings
from detector.heap import keep_freed_memory
from detector.masks import Mask, masking
from detector.model import ModelBackend
from detector.postprocess import best_score, narrower_than, postprocess
from detector.view import ViewMonitor, ViewReport, reduced
from detector.vote import MAX_OUTPUT_BOXES, AlertWindow, TemporalVote, VoteResult

EMPTY_BOXES: Boxes = np.zeros((0, 5), dtype=np.float32)


@dataclass(frozen=True)
class ScoringSettings:
    """How the pipeline scores one camera's frames."""

    name: str
    threshold: float = 0.25
    nb_frames: int = 6
    scene: str = "nearby"
    # Boxes at least this wide (fraction of the frame) are dropped; None keeps every width.
    max_bbox_width: float | None = None
    # "pause": grey (infrared) frames are not scored, as Pyronear does; "score": they are.
    night: Literal["score", "pause"] = "score"
    # Boxes whose content does not change like smoke's are dropped before the vote
    # (detector/guard.py); None: no guard (the horizon scene, as Pyronear).
    guard: GuardSettings | None = None


DropReason = Literal[
    "score", "max_bbox_width", "mask", "still", "vote", "max_boxes", "night", "repeat"
]


@dataclass(frozen=True)
class Drop:
    """Why a box of a frame (or the whole frame) did not become an alert box.

    `reason` is the stage that dropped it: `score` (no candidate of the model scored above
    `model.conf_thresh`; `box` is then None and `detail` gives the best score), `max_bbox_width`
    (the box is at least as wide as the camera's cap), `mask` (`mask` names the zone),
    `still` (the content inside the box did not change like smoke's: the nearby guard),
    `vote` (the smoke was not confirmed by the temporal vote), `max_boxes` (the API takes 5
    boxes per frame), `night` (a grey frame, not scored because the camera pauses at night) or
    `repeat` (the same bytes as the previous frame: no new evidence, not voted on).
    """

    reason: DropReason
    detail: str
    box: tuple[float, ...] | None = None
    mask: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The drop as a JSON object (box rounded to 4 decimals)."""
        data: dict[str, Any] = {"reason": self.reason, "detail": self.detail}
        if self.box is not None:
            data["box"] = [round(v, 4) for v in self.box]
        if self.mask is not None:
            data["mask"] = self.mask
        return data


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline learnt from one frame.

    `raw_boxes` are the model's boxes after NMS (before the width cap and the masks), `boxes`
    those the vote received, `dropped` says what happened to every box that did not come out
    of the vote (and why a frame gave no box at all), `view` what the camera can see,
    `paused` is True for a night frame that was not scored and `repeat` for a frame whose bytes
    repeat the previous frame's (not voted on). For those two the vote is the one before them,
    held: its score, its alert state, no boxes and no event.
    """

    camera: str
    frame_time: float
    raw_boxes: Boxes
    boxes: Boxes
    vote: VoteResult
    detections: list[DetectionMessage]
    timings: dict[str, float]
    dropped: tuple[Drop, ...] = ()
    view: ViewReport | None = None
    paused: bool = False
    repeat: bool = False

    @property
    def voted(self) -> bool:
        """True when this frame went through the vote (not paused, not a repeat)."""
        return not (self.paused or self.repeat)

    @property
    def score(self) -> float:
        """The vote's confidence for this frame (0 when nothing passes)."""
        return self.vote.score


@dataclass
class _Pending:
    """A scored frame kept in the alert window until it is sent or falls out."""

    recorded_at: float
    jpeg: bytes


@dataclass
class ScoringState:
    """A camera's scoring state: its settings, masks by source, the vote and the window of
    frames sent at alert onset. What HA sees of an alert is the service's (service/alerts.py)."""

    settings: ScoringSettings
    vote: TemporalVote = field(init=False)
    window: AlertWindow[_Pending] = field(init=False)
    view: ViewMonitor = field(default_factory=ViewMonitor)
    guard: ChangeGuard | None = field(init=False)
    # The score of the last voted frame: what a frame that is not voted on reports.
    last_score: float = 0.0
    # Whether the latest frame (or the frame it repeats) went through the vote.
    voted_last: bool = False
    _masks: dict[str, tuple[Mask, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vote = TemporalVote(self.settings.nb_frames, self.settings.threshold)
        self.window = AlertWindow(self.settings.nb_frames)
        self.guard = None if self.settings.guard is None else ChangeGuard(self.settings.guard)

    @property
    def ongoing(self) -> bool:
        """True while an alert is open on this camera."""
        return self.vote.ongoing

    def set_masks(self, source: str, masks: tuple[Mask, ...] | list[Mask]) -> None:
        """Replace the masks of one source (config, local, remote)."""
        self._masks[source] = tuple(masks)

    def masks(self, source: str | None = None) -> tuple[Mask, ...]:
        """The masks of one source, or of every source when none is given."""
        if source is not None:
            return self._masks.get(source, ())
        return tuple(mask for group in self._masks.values() for mask in group)

    def set_threshold(self, threshold: float) -> None:
        """A new vote threshold (a change from Home Assistant); the vote goes on."""
        self.settings = replace(self.settings, threshold=threshold)
        self.vote.threshold = threshold

    def reset(self) -> None:
        """Forget the vote history and close any alert (used by the reset command)."""
        self.vote = TemporalVote(self.settings.nb_frames, self.settings.threshold)
        self.window = AlertWindow(self.settings.nb_frames)
        self.last_score = 0.0
        if self.guard is not None:
            self.guard.reset()

    def held_vote(self) -> VoteResult:
        """The vote as it stands, for a frame that is not voted on: no boxes, no event."""
        return VoteResult(score=self.last_score, boxes=EMPTY_BOXES, ongoing=self.ongoing)


class Pipeline:
    """Decode → letterbox → model → post-process → masks → vote, for many cameras.

    Not thread-safe: call `process` from one worker thread (the model is the bottleneck and
    onnxruntime already uses every core).
    """

    def __init__(
        self,
        model: ModelBackend,
        *,
        conf_thresh: float = 0.05,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.model = model
        self.conf_thresh = conf_thresh
        self.max_frame_bytes = max_frame_bytes
        # Each frame's large buffers reuse the last frame's pages (detector/heap.py).
        keep_freed_memory()
        self._tensor = model.new_input()
        self._cameras: dict[str, ScoringState] = {}

    def add_camera(self, settings: ScoringSettings) -> ScoringState:
        """Register a camera with a fresh vote and no masks (replacing any state it had)."""
        state = ScoringState(settings)
        self._cameras[settings.name] = state
        return state

    def camera(self, name: str) -> ScoringState:
        """The state of a registered camera; KeyError for an unknown one."""
        return self._cameras[name]

    def decode(self, data: bytes) -> tuple[NDArray[np.uint8], tuple[int, int]]:
        """Decode one encoded frame (reduced when much larger than the model): BGR, own size."""
        return decode_frame(
            data,
            target_size=max(self.model.input_w, self.model.input_h),
            max_bytes=self.max_frame_bytes,
            rgb=False,
        )

    def infer(self, image: NDArray[np.uint8], timings: dict[str, float]) -> tuple[Boxes, float]:
        """The model's boxes on a decoded frame (after NMS, no width cap) and its best score."""
        start = time.perf_counter()
        letterbox = letterbox_into(image, self._tensor, bgr=True)
        prepared = time.perf_counter()
        output = self.model.run(self._tensor)
        inferred = time.perf_counter()
        boxes = postprocess(
            output, letterbox, self.model.smoke_class_ids, conf_thresh=self.conf_thresh
        )
        best = best_score(output, self.model.smoke_class_ids) if len(boxes) == 0 else 0.0
        done = time.perf_counter()
        timings["preprocess"] = (prepared - start) * 1000
        timings["model"] = (inferred - prepared) * 1000
        timings["postprocess"] = (done - inferred) * 1000
        return boxes, best

    def detect(self, data: bytes) -> tuple[Boxes, tuple[int, int], dict[str, float]]:
        """Score one encoded frame: boxes normalised to the frame, its own size, stage timings."""
        start = time.perf_counter()
        image, size = self.decode(data)
        timings = {"decode": (time.perf_counter() - start) * 1000}
        boxes, _best = self.infer(image, timings)
        return boxes, size, timings

    def process(self, camera: str, data: bytes, frame_time: float | None = None) -> FrameResult:
        """Run one frame of a camera through the whole pipeline.

        Raises FrameError for a payload that is not a usable image and KeyError for an
        unknown camera. The vote state only changes once the frame has been scored; a night
        frame the camera pauses on and a repeat of the previous frame's bytes leave it as it
        was (see the module's docstring).
        """
        state = self._cameras[camera]
        settings = state.settings
        recorded_at = time.time() if frame_time is None else frame_time
        start = time.perf_counter()
        # A repeat of the last frame's bytes, when that frame was voted on, brings nothing new:
        # it is not decoded again. (A frame whose scoring failed, e.g. an inference server
        # down, was never voted on: its next copy is scored.)
        repeat = state.voted_last and state.view.repeats_last(data)
        image = None if repeat else self.decode(data)[0]
        decoded = time.perf_counter()
        # One read of the whole frame for every thumbnail (the view's, the nearby guard's).
        small = None if image is None else reduced(image)
        view = state.view.observe(data, image, small)
        state.voted_last = False  # until this frame's vote has run
        timings = {
            "decode": (decoded - start) * 1000,
            "view": (time.perf_counter() - decoded) * 1000,
        }
        held = None
        if view.grey and settings.night == "pause":
            # As Pyronear: a night frame is not scored, whether or not it repeats.
            held = Drop("night", "grey (infrared) frame not scored: night: pause")
        elif repeat:
            state.voted_last = True  # the copy it repeats was voted on
            held = Drop(
                "repeat",
                f"the same bytes as the previous frame ({view.repeats} in a row): no new "
                "evidence, not voted on",
            )
        if held is not None:
            # The model did not run on this frame. The live service reads this key on every
            # result for its inference statistics (a missing key would refuse the frame).
            timings["model"] = 0.0
            return FrameResult(
                camera=camera,
                frame_time=recorded_at,
                raw_boxes=EMPTY_BOXES,
                boxes=EMPTY_BOXES,
                vote=state.held_vote(),
                detections=[],
                timings=timings,
                dropped=(held,),
                view=view,
                paused=held.reason == "night",
                repeat=held.reason == "repeat",
            )
        assert image is not None and small is not None
        raw_boxes, best = self.infer(image, timings)

        start = time.perf_counter()
        dropped: list[Drop] = []
        if len(raw_boxes) == 0:
            dropped.append(
                Drop("score", f"best model score {best:.3f} <= conf_thresh {self.conf_thresh:g}")
            )
        boxes = _apply_width_cap(raw_boxes, settings.max_bbox_width, dropped)
        boxes = _apply_masks(boxes, state.masks(), dropped)
        masked = time.perf_counter()
        timings["masks"] = (masked - start) * 1000
        if state.guard is not None:
            boxes = _apply_guard(state.guard, image, small, boxes, dropped, state.vote.ongoing)
            timings["guard"] = (time.perf_counter() - masked) * 1000
            masked = time.perf_counter()
        threshold = state.vote.effective_threshold
        vote = state.vote.update(boxes)
        state.last_score = vote.score
        state.voted_last = True
        to_send = state.window.push(_Pending(recorded_at, data), vote)
        voted = time.perf_counter()
        timings["vote"] = (voted - masked) * 1000
        dropped += _vote_drops(boxes, vote, state.vote, threshold)

        detections = [
            DetectionMessage(
                id=uuid.uuid4().hex,
                camera=camera,
                recorded_at=pending.recorded_at,
                bboxes=bboxes,
                jpeg=pending.jpeg,
            )
            for pending, bboxes in to_send
        ]
        return FrameResult(
            camera=camera,
            frame_time=recorded_at,
            raw_boxes=raw_boxes,
            boxes=boxes,
            vote=vote,
            detections=detections,
            timings=timings,
            dropped=tuple(dropped),
            view=view,
        )


def _row(box: NDArray[np.floating]) -> tuple[float, ...]:
    return tuple(float(v) for v in box)


def _apply_width_cap(boxes: Boxes, cap: float | None, dropped: list[Drop]) -> Boxes:
    """The boxes strictly narrower than the camera's cap; the others are added to `dropped`."""
    if cap is None or len(boxes) == 0:
        return boxes
    narrow = narrower_than(boxes, cap)
    dropped += [
        Drop("max_bbox_width", f"width {box[2] - box[0]:.3f} >= {cap:g}", _row(box))
        for box in boxes[~narrow]
    ]
    kept: Boxes = boxes[narrow]
    return kept


def _apply_masks(boxes: Boxes, masks: tuple[Mask, ...], dropped: list[Drop]) -> Boxes:
    """The boxes no mask removes; the others are added to `dropped` with the mask's name."""
    hits = masking(boxes, masks)
    if all(hit is None for hit in hits):
        return boxes
    dropped += [
        Drop("mask", f"in mask {hit}", _row(box), hit)
        for box, hit in zip(boxes, hits, strict=True)
        if hit is not None
    ]
    kept: Boxes = boxes[np.array([hit is None for hit in hits], dtype=bool)]
    return kept


def _apply_guard(
    guard: ChangeGuard,
    image: NDArray[np.uint8],
    small: NDArray[np.uint8],
    boxes: Boxes,
    dropped: list[Drop],
    open_: bool,
) -> Boxes:
    """The boxes whose content changed enough to vote; the others are added to `dropped`.

    The guard gates the onset only: while an alert is open (`open_`) every box votes, so faint
    smoke that changes little is not dropped mid-fire (the frame is still remembered for the
    next comparison). A frozen camera's repeats never reach here (not voted on)."""
    changes = guard.check(image, boxes, small)
    passes = guard.passes(changes)
    if open_ or passes.all():
        return boxes
    rule = guard.settings
    dropped += [
        Drop(
            "still",
            f"content changed {change:.1f} grey levels over {rule.lookback} frames (needs "
            f"{rule.min_change:g}): a still look-alike, not smoke",
            _row(box),
        )
        for box, change, ok in zip(boxes, changes, passes, strict=True)
        if not ok
    ]
    kept: Boxes = boxes[passes]
    return kept


def _vote_drops(
    boxes: Boxes, vote: VoteResult, temporal: TemporalVote, threshold: float
) -> list[Drop]:
    """Why each box the vote received is not among its output boxes."""
    drops: list[Drop] = []
    kept, matched = set(vote.rows), set(vote.matched)
    for row, box in enumerate(boxes):
        if row in kept:
            continue
        if row in matched:
            drops.append(Drop("max_boxes", f"only the {MAX_OUTPUT_BOXES} best boxes", _row(box)))
            continue
        count, score = vote.support[row]
        drops.append(
            Drop(
                "vote",
                f"{count} overlapping boxes over the last {temporal.nb_frames} frames (needs "
                f"{temporal.min_count}), vote score {score:.3f} (needs > {threshold:.3f})",
                _row(box),
            )
        )
    return drops
