"""Build the labelled development dataset for `smokewatch eval` from ../shared/data.

    python bench/make_eval_dataset.py [--data ../shared/data] [-o /tmp/smokewatch-evalset]

Sequences (frames 30 s apart, 1280x720 JPEG, names stamped with their time):
- `dfire_real`: D-Fire's seven consecutive tower frames AoF04033..39 (smoke from the first);
- `plume_<background>_<distance>`: the white plume of videos/test_smoke.mp4 blended onto a real
  fire-free background (the two D-Fire negatives, the first frame of videos/test_bg.mp4) at a known
  place and size (the plume's crop is 6 % of the frame wide far, 18 % mid, 55 % near, 300 %
  close: the D-Fire model boxes the close plume 0.40-0.51 wide, across the 0.4 width cap; the
  video's compression blocks show at that scale); the label is the first frame
  the plume is blended in, so it is known by construction;
- fire-free look-alikes: cloud-like blobs drifting through the sky or along the ridge, a fog bank,
  a dust plume-like haze on the road, exposure jumps and slow brightness ramps, still scenes.

Every frame gets sensor noise and a small exposure drift so consecutive frames differ as a real
camera's do. The frames are written outside the repository (they are ~90 MB); the script is
deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
Float = NDArray[np.float32]

W, H = 1280, 720
INTERVAL = 30  # seconds between frames, as Pyronear's towers
START = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
PRE_FIRE = 10  # fire-free frames before the plume appears
FIRE_FRAMES = 16
LOOKALIKE_FRAMES = 60  # 30 min of fire-free time per look-alike sequence
SMOKE_COLOUR = np.array([214, 216, 220], dtype=np.float32)  # BGR, a light blue-grey


@dataclass(frozen=True)
class Placement:
    """Where a plume stands: its base centre (fractions of the frame) and its width."""

    x: float
    base_y: float
    width: float


def load_backgrounds(data: Path) -> dict[str, Image]:
    """The fire-free real backgrounds, 1280x720."""
    images = data / "images" / "dfire" / "images"
    backgrounds = {
        "road": cv2.imread(str(images / "AoF00005.jpg")),
        "ridge": cv2.imread(str(images / "AoF00006.jpg")),
    }
    capture = cv2.VideoCapture(str(data / "videos" / "test_bg.mp4"))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise SystemExit("cannot read videos/test_bg.mp4")
    backgrounds["valley"] = frame
    return {name: cv2.resize(image, (W, H)) for name, image in backgrounds.items()}


def load_plume(data: Path) -> list[Float]:
    """The plume as alpha masks (0..1), cropped to its union box, from its first visible frame."""
    capture = cv2.VideoCapture(str(data / "videos" / "test_smoke.mp4"))
    masks: list[Float] = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
        # The video is white smoke on black: its brightness is the smoke's opacity.
        masks.append(np.clip((grey - 8.0) / 180.0, 0.0, 1.0))
    capture.release()
    visible = [i for i, m in enumerate(masks) if (m > 0.2).sum() > 400]
    if not visible:
        raise SystemExit("videos/test_smoke.mp4 shows no plume")
    masks = masks[visible[0] :]
    union = np.max(np.stack(masks), axis=0) > 0.05
    ys, xs = np.nonzero(union)
    return [m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] for m in masks]


def blend(image: Float, alpha: Float, colour: NDArray[np.float32], x0: int, y0: int) -> None:
    """Blend `colour` with `alpha` into `image` at (x0, y0), clipped to the frame, in place."""
    h, w = alpha.shape
    x1, y1 = max(x0, 0), max(y0, 0)
    x2, y2 = min(x0 + w, W), min(y0 + h, H)
    if x2 <= x1 or y2 <= y1:
        return
    a = alpha[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0, None]
    region = image[y1:y2, x1:x2]
    region *= 1.0 - a
    region += a * colour


def camera_noise(image: Float, rng: np.random.Generator, gain: float) -> Image:
    """Exposure gain and sensor noise, then back to 8 bits."""
    noisy = image * gain + rng.normal(0.0, 2.5, image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def fractal_blob(rng: np.random.Generator, width: int, height: int, softness: float) -> Float:
    """A cloud-like alpha mask: multi-scale noise under a soft ellipse."""
    noise = np.zeros((height, width), dtype=np.float32)
    for scale, weight in ((4, 1.0), (8, 0.5), (16, 0.25), (32, 0.125)):
        small = rng.random((scale, scale)).astype(np.float32)
        noise += weight * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise /= 1.875
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ellipse = 1.0 - (
        ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    )
    alpha = np.clip((noise - 0.45) * 3.0 + ellipse * softness, 0.0, 1.0) * np.clip(
        ellipse * 3, 0, 1
    )
    return cv2.GaussianBlur(alpha, (0, 0), max(width, height) / 40).astype(np.float32)


class Writer:
    """Writes one sequence folder: stamped frames and the label."""

    def __init__(self, root: Path, name: str) -> None:
        self.folder = root / name
        self.folder.mkdir(parents=True)
        self.count = 0

    def frame_name(self, index: int) -> str:
        moment = START + timedelta(seconds=index * INTERVAL)
        return f"cam_{moment:%Y%m%dT%H%M%S}.jpg"

    def add(self, image: Image) -> str:
        name = self.frame_name(self.count)
        cv2.imwrite(str(self.folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        self.count += 1
        return name

    def label(self, text: str) -> None:
        (self.folder / "label.yaml").write_text(text, encoding="utf-8")


def plume_sequence(
    root: Path,
    name: str,
    background: Image,
    plume: list[Float],
    place: Placement,
    rng: np.random.Generator,
) -> None:
    """PRE_FIRE fire-free frames, then the plume growing for FIRE_FRAMES frames."""
    writer = Writer(root, name)
    crop_h, crop_w = plume[0].shape
    width = max(8, round(place.width * W))
    height = max(8, round(crop_h * width / crop_w))
    base = background.astype(np.float32)
    first_fire = ""
    for index in range(PRE_FIRE + FIRE_FRAMES):
        image = base.copy()
        if index >= PRE_FIRE:
            # The video's 7 s of growth stretched over the fire frames (8 minutes at 30 s).
            step = (index - PRE_FIRE) * (len(plume) - 1) // (FIRE_FRAMES - 1)
            alpha = cv2.resize(plume[step], (width, height), interpolation=cv2.INTER_AREA) * 0.85
            x0 = round(place.x * W - width / 2)
            y0 = round(place.base_y * H - height)
            blend(image, alpha, SMOKE_COLOUR, x0, y0)
        gain = 1.0 + 0.02 * np.sin(index / 5.0)
        frame_name = writer.add(camera_noise(image, rng, gain))
        if index == PRE_FIRE:
            first_fire = frame_name
    writer.label(
        f"fire_start: {first_fire}\n"
        f"note: test_smoke.mp4 plume, {place.width:.0%} of the frame wide, at x={place.x}, "
        f"base y={place.base_y}\n"
    )


def lookalike_sequence(
    root: Path,
    name: str,
    background: Image,
    draw: Callable[[Float, int], float],
    rng: np.random.Generator,
    note: str,
) -> None:
    """A fire-free sequence: `draw` paints frame `index` in place and returns the exposure gain."""
    writer = Writer(root, name)
    base = background.astype(np.float32)
    for index in range(LOOKALIKE_FRAMES):
        image = base.copy()
        gain = draw(image, index)
        writer.add(camera_noise(image, rng, gain))
    writer.label(f"fire: false\nnote: {note}\n")


def drifting_blobs(
    rng: np.random.Generator,
    count: int,
    size: tuple[int, int],
    band: tuple[float, float],
    speed: float,
    opacity: float,
    colour: tuple[float, float, float],
) -> Callable[[Float, int], float]:
    """Cloud-like blobs drifting sideways through a horizontal band of the frame."""
    blobs = [fractal_blob(rng, size[0], size[1], 0.6) * opacity for _ in range(count)]
    starts = [(rng.uniform(-0.2, 1.0) * W, rng.uniform(*band) * H) for _ in range(count)]
    paint = np.array(colour, dtype=np.float32)

    def draw(image: Float, index: int) -> float:
        for blob, (x, y) in zip(blobs, starts, strict=True):
            x_now = (x + speed * index) % (W + size[0]) - size[0]
            blend(image, blob, paint, round(x_now), round(y - size[1] / 2))
        return 1.0

    return draw


def build(data: Path, out: Path, seed: int) -> int:
    """Write every sequence under `out`; return the number of frames."""
    rng = np.random.default_rng(seed)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    backgrounds = load_backgrounds(data)
    plume = load_plume(data)

    real = Writer(out, "dfire_real")
    images = data / "images" / "dfire" / "images"
    for number in range(4033, 4040):
        shutil.copy(images / f"AoF0{number}.jpg", real.folder / f"AoF0{number}.jpg")
    real.label(
        "fire_start: AoF04033.jpg\ninterval: 30\n"
        "note: D-Fire tower frames, smoke in every frame; their real spacing is unknown\n"
    )

    # Plumes rise from the ground of each scene: the valley floor, the ridge, the hills by the road.
    places = {
        "valley": {
            "far": Placement(0.30, 0.42, 0.06),
            "mid": Placement(0.62, 0.50, 0.18),
            "near": Placement(0.45, 0.95, 0.55),
            "close": Placement(0.50, 1.15, 3.0),
        },
        "road": {
            "far": Placement(0.70, 0.45, 0.06),
            "mid": Placement(0.35, 0.62, 0.18),
            "near": Placement(0.50, 0.98, 0.55),
            "close": Placement(0.45, 1.15, 3.0),
        },
        "ridge": {
            "far": Placement(0.55, 0.40, 0.06),
            "mid": Placement(0.30, 0.60, 0.18),
        },
    }
    for scene, by_distance in places.items():
        for distance, place in by_distance.items():
            plume_sequence(out, f"plume_{scene}_{distance}", backgrounds[scene], plume, place, rng)

    white = (235.0, 235.0, 238.0)
    lookalike_sequence(
        out,
        "clouds_valley_sky",
        backgrounds["valley"],
        drifting_blobs(rng, 4, (260, 110), (0.06, 0.28), 14.0, 0.8, white),
        rng,
        "white cloud-like blobs drifting through the sky",
    )
    lookalike_sequence(
        out,
        "clouds_valley_horizon",
        backgrounds["valley"],
        drifting_blobs(rng, 3, (180, 90), (0.33, 0.45), 10.0, 0.75, white),
        rng,
        "low cloud-like blobs drifting along the horizon",
    )
    lookalike_sequence(
        out,
        "clouds_ridge",
        backgrounds["ridge"],
        drifting_blobs(rng, 3, (220, 120), (0.15, 0.35), 12.0, 0.7, white),
        rng,
        "cloud-like blobs drifting over the ridge line",
    )
    lookalike_sequence(
        out,
        "fog_bank_road",
        backgrounds["road"],
        drifting_blobs(rng, 2, (700, 160), (0.40, 0.55), 6.0, 0.55, (200.0, 205.0, 210.0)),
        rng,
        "a wide grey fog bank sliding along the hills",
    )
    lookalike_sequence(
        out,
        "dust_road",
        backgrounds["road"],
        drifting_blobs(rng, 2, (140, 70), (0.78, 0.9), 18.0, 0.6, (170.0, 190.0, 205.0)),
        rng,
        "beige dust-like haze moving along the road",
    )

    def exposure_jumps(image: Float, index: int) -> float:
        # An auto-exposure that hunts: a jump every 7 frames, then back.
        return 1.35 if index % 7 in (3, 4) else 1.0

    lookalike_sequence(
        out,
        "exposure_jumps_valley",
        backgrounds["valley"],
        exposure_jumps,
        rng,
        "auto-exposure jumps (+35 % for two frames every seven)",
    )

    def dusk(image: Float, index: int) -> float:
        # Half an hour of dusk: the scene darkens to 35 %.
        return 1.0 - 0.65 * index / (LOOKALIKE_FRAMES - 1)

    lookalike_sequence(
        out, "dusk_ridge", backgrounds["ridge"], dusk, rng, "a slow brightness ramp down to 35 %"
    )
    lookalike_sequence(
        out,
        "still_road",
        backgrounds["road"],
        lambda image, index: 1.0,
        rng,
        "the real D-Fire negative, sensor noise only",
    )
    return sum(1 for _ in out.rglob("*.jpg"))


def main() -> None:
    """Command line."""
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=here.parent / "shared" / "data")
    parser.add_argument("-o", "--output", type=Path, default=Path("/tmp/smokewatch-evalset"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frames = build(args.data, args.output, args.seed)
    print(f"{frames} frames in {args.output}")


if __name__ == "__main__":
    main()
