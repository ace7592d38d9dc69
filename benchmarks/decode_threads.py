"""Images per second of decoding a folder of PNG samples (``ganeval.sources.samples.decoded_images``: what every read
of a folder or zip goes through) on 1 thread and on a pool of threads, and the images compared.

The images are MNIST test digits scaled to each ``--sizes`` side and tinted to RGB (a realistic PNG size on disk).

    python benchmarks/decode_threads.py --n 4000 --sizes 28 64 256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from stats_stream import _images, _write_pngs


def _rate(folder: Path, threads: int, rounds: int) -> tuple[float, list]:
    """Best images/s of ``rounds`` full decoding passes (the files in the page cache after the first)."""
    from ganeval.sources.samples import decoded_images

    best, images = 0.0, []
    for _ in range(rounds):
        t0 = time.perf_counter()
        images = [im for _, _, _, im in decoded_images(folder, [], lambda: False, threads=threads)]
        best = max(best, len(images) / (time.perf_counter() - t0))
    return best, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="images per size (default 4000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64, 256], help="sides in pixels (default 28 64 256)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="pool sizes to time (default: 2 and this machine's cores, up to 8)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write the images (default: a temporary folder)")
    args = parser.parse_args()

    import numpy as np

    pools = args.threads or sorted({2, min(8, os.cpu_count() or 1)})
    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "n": args.n, "sizes": {}}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for size in args.sizes:
            folder = _write_pngs(Path(tmp) / str(size), _images(args.n, size))
            one, ref = _rate(folder, 1, args.rounds)
            row = {"1 thread": round(one, 1)}
            for t in pools:
                rate, got = _rate(folder, t, args.rounds)
                assert len(got) == len(ref) and all(np.array_equal(a, b) for a, b in zip(got, ref, strict=True))
                row[f"{t} threads"] = round(rate, 1)
                row[f"{t} threads / 1"] = round(rate / one, 2)
            out["sizes"][f"{size}x{size} RGB"] = row
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
