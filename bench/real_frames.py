"""Camera-sized JPEGs made from a real tower photo, for `smokewatch bench --frame`.

    python bench/real_frames.py [--source ../shared/data/images/dfire/images/AoF04036.jpg]
                                [--out /tmp/smokewatch-frames] [--quality 90]

The shared data's real frames (D-Fire) are 1280x720. A 1080p and a 4K frame are made by
upscaling that photo (bicubic) and encoding it again at the given JPEG quality: the pixel
grid and the decoder's work per pixel are a real camera's, the picture is a real scene, but an
upscaled photo has less fine detail than a native 4K capture, so its file is smaller and its
entropy decoding somewhat cheaper. Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=Path("../shared/data/images/dfire/images/AoF04036.jpg")
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/smokewatch-frames"))
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    image = cv2.imread(str(args.source), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{args.source}: not an image")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, size in SIZES.items():
        path = args.out / f"{args.source.stem}-{name}.jpg"
        if (image.shape[1], image.shape[0]) == size:
            path.write_bytes(args.source.read_bytes())  # the real frame itself, untouched
        else:
            scaled = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
            ok, data = cv2.imencode(".jpg", scaled, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
            assert ok
            path.write_bytes(data.tobytes())
        print(f"{path} {size[0]}x{size[1]} {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
