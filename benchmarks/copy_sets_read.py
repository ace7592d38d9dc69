"""Time of ``ganeval score --copy-train FOLDER --copy-heldout FOLDER`` with the image sets' headers, SHA-256 pass
and decoded images remembered between their readers (``ganeval.sources.set_memo``) against read afresh by each (and
against all but the images remembered), each in a fresh process, with a cold feature cache and then a warm one, and
the rows compared.

The sets are MNIST digits as PNG files (training digits for ``--copy-train``, test digits for ``--copy-heldout``);
the samples come from the shipped DCGAN.

    python benchmarks/copy_sets_read.py --train 30000 --heldout 5000 --rounds 2
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

from stats_stream import RUN

CKPT = Path(__file__).resolve().parents[1] / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
MODES = {"read afresh": "from ganeval.sources import set_memo\nset_memo.KEPT = 0\n",
         "remembered, images not kept": "from ganeval.sources import set_memo\nset_memo.pixel_room = lambda: 0\n",
         "remembered": ""}


def _digits(folder: Path, split: str, n: int) -> Path:
    """The first ``n`` digits of an MNIST split as ``folder/000000.png``, …."""
    from PIL import Image

    from ganeval.stats import dataset_images

    folder.mkdir(parents=True)
    for i, im in enumerate(dataset_images(split)[:n]):
        Image.fromarray(im).save(folder / f"{i:06d}.png")
    return folder


def _score(train: Path, heldout: Path, out: Path, n: int, mode: str, cache: Path) -> float:
    """Wall seconds of one ``ganeval score`` process."""
    cmd = [sys.executable, "-c", MODES[mode] + RUN, "score", str(CKPT), "--metrics", "mnist_fd", "copying",
           "--copy-train", str(train), "--copy-heldout", str(heldout), "--num-samples", str(n), "--bootstrap", "0",
           "--device", "cpu", "--no-progress", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "GANEVAL_CACHE_DIR": str(cache)})
    if res.returncode:
        raise SystemExit(res.stderr[-2000:])
    return float(next(ln for ln in res.stdout.splitlines() if ln.startswith("WALL")).split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=30000, help="training digits (default 30000)")
    parser.add_argument("--heldout", type=int, default=5000, help="held-out digits (default 5000)")
    parser.add_argument("--n", type=int, default=2000, help="samples (default 2000)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of both (default 1)")
    parser.add_argument("--dir", default=None, help="where to write the images (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        train = _digits(root / "train", "mnist-train", args.train)
        heldout = _digits(root / "heldout", "mnist-test", args.heldout)
        time.sleep(2.5)  # files written within set_memo.RACY_NS of a read are never remembered
        runs: dict[str, dict[str, list[float]]] = {mode: {"cold": [], "warm": []} for mode in MODES}
        rows = {}
        for r in range(args.rounds):
            for mode in MODES:
                cache = root / f"cache_{r}_{mode}".replace(" ", "_")
                for state in ("cold", "warm"):  # a fresh cache, then the same one: features cached, SHA-256 still needed
                    out = root / f"out_{r}_{mode}_{state}".replace(" ", "_")
                    runs[mode][state].append(round(_score(train, heldout, out, args.n, mode, cache), 2))
                    rows[f"{r} {mode} {state}"] = {k: v for k, v in json.loads((out / "summary.json").read_text())["rows"][0].items()
                                               if k != "seconds"}
    print(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "train": args.train, "heldout": args.heldout, "n": args.n,
        **{mode: {f"{state}_wall_s": got for state, got in states.items()} for mode, states in runs.items()},
        "same_row": all(row == next(iter(rows.values())) for row in rows.values()),
    }, indent=2))


if __name__ == "__main__":
    main()
