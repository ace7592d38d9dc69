"""What the choice of real images does to the sample-based metrics (by hand, not a test; docs/scoring.md).

KID, precision/recall and density/coverage compare N samples with N of the reference's real images. Up to version
0.1.0 these were the reference's first N images; from 0.2.0 a fixed seeded uniform subset (ganeval.reference.
real_subset). This prints both on the same sample features, for a checkpoint and for held-out real digits, so the
shift in every number measured before 0.2.0 is known:

    python benchmarks/real_subset_effect.py --checkpoint ganeval/pretrained/dcgan_info/ckpt_0010000.safetensors \
        --reference mnist-train --extractors mnist inception --n 2000 10000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ganeval.distributed import DistContext
from ganeval.extraction import extract
from ganeval.features import get_extractor
from ganeval.features.base import iter_batches
from ganeval.inputs import resolve_target
from ganeval.metrics.kid import kid
from ganeval.metrics.prc import density_coverage, precision_recall
from ganeval.real_floor import OTHER_SPLIT, floor_indices
from ganeval.reference import real_subset
from ganeval.stats import dataset_images


def _feats(ex, images: np.ndarray) -> torch.Tensor:
    return torch.cat([ex(b)["pool"].cpu() for b in iter_batches(images, 100)])


def _metrics(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    p, r = precision_recall(fake, real)
    d, c = density_coverage(fake, real)
    return {"kid": kid(fake, real)[0], "precision": p, "recall": r, "density": d, "coverage": c}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--reference", default="mnist-train", choices=list(OTHER_SPLIT))
    ap.add_argument("--extractors", nargs="+", default=["mnist"])
    ap.add_argument("--n", type=int, nargs="+", default=[2000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    ref_images = dataset_images(args.reference)
    held = dataset_images(OTHER_SPLIT[args.reference])
    source = resolve_target(args.checkpoint).sources[0]
    out: list[dict] = []
    for name in args.extractors:
        ex = get_extractor(name, device="cpu")
        for n in args.n:
            t0 = time.time()
            fake = extract(source, [ex], n, args.seed, 100, torch.device("cpu"), DistContext(), use_cache=True).pool[name].float()
            floor = _feats(ex, held[floor_indices(len(held), n, args.seed)])
            first, uniform = _feats(ex, ref_images[:n]), _feats(ex, ref_images[real_subset(len(ref_images), n)])
            for what, x in (("checkpoint", fake), ("real held-out", floor)):
                row = {"extractor": name, "n": n, "samples": what, "first_n": _metrics(x, first), "uniform": _metrics(x, uniform)}
                out.append(row)
                print(json.dumps(row), flush=True)
            print(f"# {name} N={n}: {time.time() - t0:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"checkpoint": args.checkpoint, "reference": args.reference, "seed": args.seed, "rows": out}, fh, indent=2)


if __name__ == "__main__":
    main()
