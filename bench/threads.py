"""Effect of onnxruntime's thread settings on the per-frame path.

    python bench/threads.py --model M [--resolution 1920x1080] [--runs 10]

Runs `smokewatch bench` once per setting (intra-op threads 1, 2 and onnxruntime's default, with
inter-op 1) and prints the medians side by side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = ((0, 0), (1, 1), (2, 1))


def main() -> int:
    """Run the settings one after the other and print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--resolution", default="1920x1080")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    model = Path(args.model).resolve()
    print("intra inter  whole ms  bare ms  ratio  peak RSS MiB")
    with tempfile.TemporaryDirectory() as scratch:
        for intra, inter in SETTINGS:
            config = Path(scratch) / f"t{intra}.yaml"
            config.write_text(
                f"model: {{path: {model}, intra_op_threads: {intra}, inter_op_threads: {inter}}}\n"
                "cameras: {bench: {}}\n"
            )
            report = Path(scratch) / f"t{intra}.json"
            subprocess.run(
                [sys.executable, "-m", "detector", "bench", "-c", str(config), "--resolution",
                 args.resolution, "--runs", str(args.runs), "--no-progress", "--json", str(report)],
                check=True,
                capture_output=True,
            )  # fmt: skip
            data = json.loads(report.read_text())
            label = "auto" if intra == 0 else str(intra)
            inter_label = "auto" if inter == 0 else str(inter)
            print(
                f"{label:>5} {inter_label:>5} {data['whole_ms']:9.1f} {data['bare_ms']:8.1f} "
                f"{data['ratio']:6.3f} {data['peak_rss_mib']:12.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
