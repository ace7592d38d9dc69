"""Peak memory and time of ``ganeval stats`` over your own images: a folder of PNGs (read batch by batch) against the
same images in one ``.npy`` (held whole), each in a fresh process, and the two statistics compared.

The images are MNIST test digits scaled to ``--size`` and tinted to RGB (a realistic PNG size on disk); the MNIST
classifier's features keep the network's share of the time small, so what differs is how the images are read.

    python benchmarks/stats_stream.py --n 20000 --size 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = """
import sys, time
from ganeval.cli import main
t0 = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
hwm = next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM"))  # this process's own peak (ru_maxrss
print("WALL", time.perf_counter() - t0, "RSS_KB", hwm.split()[1])  # keeps the launching process's across exec)
"""


def _images(n: int, size: int):  # noqa: ANN202 - numpy array, imported late
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ganeval.stats import dataset_images

    digits = dataset_images("mnist-test")
    tint = torch.tensor([1.0, 0.8, 0.55])[None, :, None, None]
    out = np.empty((n, size, size, 3), np.uint8)
    for start in range(0, n, 1000):  # in chunks: 20,000 float 256×256 RGB images at once took 15 GB
        idx = np.arange(start, min(start + 1000, n)) % len(digits)
        x = F.interpolate(torch.from_numpy(digits[idx]).float()[:, None], size=(size, size), mode="bilinear",
                          align_corners=False)
        out[start:start + len(idx)] = (x * tint).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out  # (N, H, W, 3)


def _write_pngs(folder: Path, images) -> Path:  # noqa: ANN001 - a numpy (N, H, W, 3) array
    """``images`` as ``folder/000000.png``, …: a folder of samples or real images as a user would have it."""
    from PIL import Image

    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:06d}.png")
    return folder


def _stats(dataset: Path, out: Path, batch_size: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``ganeval stats`` process."""
    cmd = [sys.executable, "-c", RUN, "stats", "--dataset", str(dataset), "--extractor", "mnist", "--device", "cpu",
           "--batch-size", str(batch_size), "--no-progress", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("WALL"))
    _, wall, _, rss = line.split()
    return float(wall), int(rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="images (default 20000)")
    parser.add_argument("--size", type=int, default=64, help="their side in pixels (default 64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dir", default=None, help="where to write the images (default: a temporary folder)")
    args = parser.parse_args()

    import numpy as np

    from ganeval.sources.image_stream import ImageStream
    from ganeval.stats import load_stats

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        images = _images(args.n, args.size)
        folder = _write_pngs(root / "images", images)
        np.save(root / "images.npy", images)
        held_mb = images.nbytes / 2**20
        del images
        t0 = time.perf_counter()
        ImageStream(folder)
        headers_s = time.perf_counter() - t0
        runs = {kind: _stats(path, root / f"{kind}_mnist.npz", args.batch_size)
                for kind, path in (("folder (streamed)", folder), (".npy (held)", root / "images.npy"))}
        a, b = (load_stats(root / f"{kind}_mnist.npz") for kind in runs)
        same = bool(np.array_equal(a.mu, b.mu) and np.array_equal(a.sigma, b.sigma)
                    and a.meta["dataset_sha256"] == b.meta["dataset_sha256"])
    print(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "n": args.n, "size": args.size, "images_uint8_mb": round(held_mb, 1), "header_scan_s": round(headers_s, 2),
        **{kind: {"wall_s": round(w, 2), "peak_rss_mb": round(r, 1)} for kind, (w, r) in runs.items()},
        "same_statistics_and_pixel_sha256": same,
    }, indent=2))


if __name__ == "__main__":
    main()
