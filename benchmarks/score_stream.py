"""Peak memory and time of ``ganeval score`` on a folder of samples: held in one array against streamed batch by
batch (``GANEVAL_HOLD_IMAGES_MB`` forcing each), each in a fresh process, and the two rows compared.

The samples are MNIST test digits scaled to ``--size`` and tinted to RGB (a realistic PNG size on disk); the MNIST
metrics keep the network's share of the time small, so what differs is how the images are read.

    python benchmarks/score_stream.py --n 20000 --size 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from stats_stream import RUN, _images, _write_pngs

MODES = {"held": str(10**9), "streamed": "0"}  # GANEVAL_HOLD_IMAGES_MB


def _score(folder: Path, out: Path, n: int, batch_size: int, mode: str, cache: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``ganeval score`` process."""
    cmd = [sys.executable, "-c", RUN, "score", str(folder), "--metrics", "mnist_fd", "mnist_is", "modes", "--num-samples",
           str(n), "--batch-size", str(batch_size), "--bootstrap", "0", "--device", "cpu", "--no-progress", "--out", str(out)]
    env = {**os.environ, "GANEVAL_HOLD_IMAGES_MB": MODES[mode], "GANEVAL_CACHE_DIR": str(cache)}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise SystemExit(res.stderr[-2000:])
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("WALL"))
    _, wall, _, rss = line.split()
    return float(wall), int(rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="samples (default 20000)")
    parser.add_argument("--size", type=int, default=64, help="their side in pixels (default 64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of both (default 1)")
    parser.add_argument("--dir", default=None, help="where to write the images (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        images = _images(args.n, args.size)
        folder = _write_pngs(root / "samples", images)
        held_mb = images.nbytes / 2**20
        del images
        runs: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        rows = {}
        for r in range(args.rounds):
            for mode in MODES:  # a fresh cache each time: every run decodes and scores every image
                out = root / f"{mode}{r}"
                runs[mode].append(_score(folder, out, args.n, args.batch_size, mode, root / f"cache_{mode}{r}"))
                rows[mode] = {k: v for k, v in json.loads((out / "summary.json").read_text())["rows"][0].items()
                              if k != "seconds"}
    print(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "n": args.n, "size": args.size, "images_uint8_mb": round(held_mb, 1),
        **{mode: {"wall_s": [round(w, 2) for w, _ in got], "peak_rss_mb": [round(m, 1) for _, m in got]}
           for mode, got in runs.items()},
        "same_row": rows["held"] == rows["streamed"],
    }, indent=2))


if __name__ == "__main__":
    main()
