"""Build a fire-free look-alike set for `smokewatch eval` from real photos shipped in packages.

    apt-get install plasma-workspace-wallpapers mate-backgrounds lomiri-wallpapers-16.04
    pip install --no-deps --target /tmp/lookalike-pkgs scikit-image scikit-learn
    python bench/make_lookalike_dataset.py --site /tmp/lookalike-pkgs  # /tmp/smokewatch-lookalikes

Every photo is read where its package installed it (nothing is copied into the repository) and
becomes one fire-free sequence (`fire: false`) of FRAMES frames 30 s apart, 1280x720 JPEG, as a
live camera watching that still scene would send them. A photo repeated is a frozen camera, so
each frame differs as a live camera's frames do:

- sensor noise: Gaussian, 2.5 grey levels (4 on an infrared frame, whose sensor is pushed at
  night), the same on every channel of an infrared frame so that it stays grey;
- camera shake: a sub-pixel shift of up to 1.5 px each way (a mast in the wind);
- light: a slow exposure drift (+-4 % over the sequence) and a 1 % jitter frame to frame, as an
  auto-exposure does under passing light;
- a fresh JPEG encode (quality 90), named with its time.

"Night infrared" sequences are real photos turned grey (luma, red == green == blue, as an
infrared camera sends them; Pyronear's night rule reads them as night). A photo whose package is
not installed is skipped with a note, so the set is what this machine has; the run prints it.
Provenance and licences: EVALUATION.md, "Look-alikes".
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray

W, H = 1280, 720
INTERVAL = 30
FRAMES = 20  # 10 minutes of fire-free time per sequence
START = datetime(2026, 8, 1, 12, 0, 0, tzinfo=UTC)
PLASMA = Path("/usr/share/wallpapers")
BACKGROUNDS = Path("/usr/share/backgrounds")


@dataclass(frozen=True)
class Photo:
    """One look-alike: where its package puts it, what it shows, and how to send it."""

    name: str
    package: str  # "deb:<package>" or "pypi:<module>"
    path: str  # below the package's root (Debian: absolute; PyPI: inside the module)
    shows: str
    licence: str
    infrared: bool = False


PHOTOS = (
    Photo("night_ir_forest_path", "deb:plasma-workspace-wallpapers",
          "Path/contents/images/2560x1440.jpg", "a forest path, as a garden camera's infrared "
          "view at night", "LGPL-3.0 (Risto Saukonpää)", infrared=True),
    Photo("night_ir_field", "pypi:skimage", "data/camera.png",
          "a person with a camera on a tripod in a field, buildings behind",
          "CC0 (Lav Varshney), scikit-image's sample", infrared=True),
    Photo("night_ir_pier_fog", "deb:plasma-workspace-wallpapers",
          "ColdRipple/contents/images/2560x1440.jpg", "a pier into fog",
          "LGPL-3.0 (Risto Saukonpää)", infrared=True),
    Photo("night_ir_meadow_trees", "deb:lomiri-wallpapers-16.04",
          "aitzgorri_by_Aitzol_Berasategi.jpg", "a meadow, trees and a hazy ridge",
          "CC-BY-4.0 (Aitzol Berasategi)", infrared=True),
    Photo("fog_lake_dusk", "deb:plasma-workspace-wallpapers",
          "DarkestHour/contents/images/2560x1440.jpg", "mist over a lake at dusk",
          "LGPL-3.0 (Risto Saukonpää)"),
    Photo("low_cloud_storm_road", "deb:mate-backgrounds", "mate/nature/Storm.jpg",
          "a low storm cloud deck over a road", "GPL-2+ (Sergey Nazarov)"),
    Photo("low_cloud_peaks", "deb:lomiri-wallpapers-16.04",
          "picosdeeuropa_by_Aitzol_Berasategi.jpg", "clouds on rocky peaks over a meadow",
          "CC-BY-4.0 (Aitzol Berasategi)"),
    Photo("haze_lake_temple", "pypi:sklearn", "datasets/images/china.jpg",
          "haze over a lake behind a temple and trees", "CC-BY-2.0 (danielbuechele)"),
    Photo("haze_hills_autumn", "deb:lomiri-wallpapers-16.04",
          "aitzgorri_by_Aitzol_Berasategi.jpg", "a hazy ridge over autumn trees",
          "CC-BY-4.0 (Aitzol Berasategi)"),
    Photo("clouds_sky", "deb:plasma-workspace-wallpapers",
          "Kite/contents/images/2560x1440.jpg", "white clouds in a blue sky (a kite)",
          "LGPL-3.0 (Risto Saukonpää)"),
    Photo("clouds_haze_bridge", "deb:lomiri-wallpapers-16.04",
          "Bridge_by_Sander_Klootwijk.jpg", "clouds and haze over a plain, cables in front",
          "CC-BY-SA-4.0 (Sander Klootwijk)"),
    Photo("glare_sunset_hills", "deb:lomiri-wallpapers-16.04",
          "sunset_by_Aitzol_Berasategi.jpg", "a low sun's glare over hills", "CC-BY-4.0 "
          "(Aitzol Berasategi)"),
    Photo("glare_evening_clouds", "deb:plasma-workspace-wallpapers",
          "EveningGlow/contents/images/2560x1440.jpg", "an evening sky glowing over a lake "
          "shore", "LGPL-3.0 (Ian Hex)"),
    Photo("glare_backlit_meadow", "deb:lomiri-wallpapers-16.04",
          "seeding_by_Clements_Engelhardt.jpg", "a backlit meadow of dandelion clocks",
          "CC0-1.0 (Clemens Engelhardt)"),
    Photo("lights_night_floodlights", "pypi:skimage", "data/rocket.jpg",
          "floodlights and bright lamps at night around a launch pad", "public domain (SpaceX)"),
    Photo("lamps_indoor_glare", "deb:lomiri-wallpapers-16.04", "free_by_Peter_Nerlich.jpg",
          "two glowing lamps against a grey ceiling", "CC-BY-SA-4.0 (Peter Nerlich)"),
    Photo("white_water_stream", "deb:lomiri-wallpapers-16.04",
          "life_by_Aitzol_Berasategi.jpg", "white water in a woodland stream (spray, a steam "
          "look-alike)", "CC-BY-4.0 (Aitzol Berasategi)"),
    Photo("splash_grey_light", "deb:mate-backgrounds", "mate/nature/Aqua.jpg",
          "a water splash on a bright grey-white blur", "GPL-2+ (Charles Barbin)"),
    Photo("indoor_garage", "pypi:skimage", "data/motorcycle_left.png",
          "a garage: shelves, boxes, a motorcycle", "no licence stated (Middlebury 2014 "
          "stereo, shipped by scikit-image): read in place, evaluation only"),
    Photo("indoor_living_room", "deb:lomiri-wallpapers-16.04", "Wine_by_Jakkub_Mede.jpg",
          "a living room: a table, bottles, a cushion", "CC-BY-4.0 (Jakub Mede)"),
    Photo("indoor_coffee", "pypi:skimage", "data/coffee.png", "a cup of coffee on a wooden "
          "table", "CC0 (Rachel Michetti)"),
)  # fmt: skip


def locate(photo: Photo, sites: list[Path]) -> Path | None:
    """Where the photo's package installed it, or None when the package is absent."""
    kind, _, name = photo.package.partition(":")
    if kind == "deb":
        root = PLASMA if name == "plasma-workspace-wallpapers" else BACKGROUNDS
        path = root / photo.path
        return path if path.is_file() else None
    for site in sites:
        path = site / name / photo.path
        if path.is_file():
            return path
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / photo.path
        if path.is_file():
            return path
    return None


def camera_view(image: NDArray[np.uint8], infrared: bool) -> NDArray[np.float32]:
    """The photo as a 1280x720 camera frame (centre crop to 16:9), grey when infrared."""
    height, width = image.shape[:2]
    if width / height > W / H:
        keep = round(height * W / H)
        image = image[:, (width - keep) // 2 : (width - keep) // 2 + keep]
    else:
        keep = round(width * H / W)
        image = image[(height - keep) // 2 : (height - keep) // 2 + keep]
    frame = cv2.resize(image, (W, H), interpolation=cv2.INTER_AREA)
    if infrared:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        frame = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    return frame.astype(np.float32)


def live_frame(
    view: NDArray[np.float32], index: int, rng: np.random.Generator, infrared: bool
) -> NDArray[np.uint8]:
    """Frame `index` of a live camera watching `view`: shake, light, sensor noise."""
    dx, dy = rng.uniform(-1.5, 1.5, 2)
    shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float32)
    moved = cv2.warpAffine(view, shift, (W, H), borderMode=cv2.BORDER_REFLECT)
    gain = 1.0 + 0.04 * np.sin(2 * np.pi * index / FRAMES) + rng.normal(0.0, 0.01)
    sigma = 4.0 if infrared else 2.5
    if infrared:
        noise = rng.normal(0.0, sigma, (H, W, 1)).astype(np.float32)
    else:
        noise = rng.normal(0.0, sigma, (H, W, 3)).astype(np.float32)
    return np.clip(np.rint(moved * gain + noise), 0, 255).astype(np.uint8)


def build(out: Path, sites: list[Path], seed: int) -> tuple[int, list[str]]:
    """Write every sequence whose photo is installed; (frames written, photos skipped)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written, skipped = 0, []
    for photo in PHOTOS:
        path = locate(photo, sites)
        image = None if path is None else cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            skipped.append(f"{photo.name}: {photo.package} {photo.path} is not installed")
            continue
        view = camera_view(image, photo.infrared)
        folder = out / photo.name
        folder.mkdir()
        for index in range(FRAMES):
            frame = live_frame(view, index, rng, photo.infrared)
            moment = START + timedelta(seconds=index * INTERVAL)
            name = folder / f"cam_{moment:%Y%m%dT%H%M%S}.jpg"
            cv2.imwrite(str(name), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
            written += 1
        note = (
            f"{photo.shows}{' (infrared)' if photo.infrared else ''}; {photo.package} {path}; "
            f"{photo.licence}"
        )
        (folder / "label.yaml").write_text(
            yaml.safe_dump({"fire": False, "note": note}, allow_unicode=True, width=1000),
            encoding="utf-8",
        )
    return written, skipped


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("/tmp/smokewatch-lookalikes"))
    parser.add_argument(
        "--site",
        type=Path,
        action="append",
        default=[],
        help="a folder holding scikit-image / scikit-learn (pip install --target); else the "
        "running Python's",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frames, skipped = build(args.output, args.site, args.seed)
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{frames} frames in {args.output}")


if __name__ == "__main__":
    main()
