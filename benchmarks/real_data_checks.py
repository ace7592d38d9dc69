"""Real-data checks behind docs/results.md's copying-test and FD∞ sections (by hand, not a test).

Copying test (MNIST classifier features, 50 cells): real images the model never saw should give C_T ≈ 0 and a
near-copy share ≈ 0.01; training images returned as "samples" should be flagged. FD∞: random subsets of real
MNIST test images against the shipped train statistics, FD_N against FD∞ at several N.

    python benchmarks/real_data_checks.py [--inception]   # --inception: FID∞ too (needs the cached test features)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ganeval.features import get_extractor
from ganeval.metrics.copying import copying_test, kmeans
from ganeval.metrics.fd_infinity import fd_infinity
from ganeval.metrics.fid import FIDReference
from ganeval.reference import dataset_features, real_features, reference_stats


def copying_floors() -> None:
    ex = get_extractor("mnist", device="cpu")
    train, test = dataset_features("mnist-train", ex, 500), dataset_features("mnist-test", ex, 500)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(test), generator=g)
    half_a, half_b = test[perm[:5000]], test[perm[5000:]]
    cells50k = kmeans(train[:50000], 50, seed=0)
    cells60k = kmeans(train, 50, seed=0)
    rows = [
        ("unseen test half vs other test half (T = train[:50k])", copying_test(half_b, half_a, train[:50000], centroids=cells50k)),
        ("other direction", copying_test(half_a, half_b, train[:50000], centroids=cells50k)),
        ("unseen train[50k:] vs test (T = train[:50k])", copying_test(train[50000:], test, train[:50000], centroids=cells50k)),
        ("training images train[:10k] as samples (T = all train)", copying_test(train[:10000], test, train, centroids=cells60k)),
        ("30 % training images + 70 % unseen (T = train[:50k])",
         copying_test(torch.cat([train[:3000], train[50000:57000]]), test, train[:50000], centroids=cells50k)),
    ]
    for name, r in rows:
        print(f"copying  {name:58s} C_T {r['copying_ct']:+7.2f}  near-copy share {r['copy_share']:.4f}  "
              f"cells {int(r['copying_cells'])}")


def fd_inf_real(extractor: str) -> None:
    ex = get_extractor(extractor, device="cpu")
    stats = reference_stats("mnist-train", ex)
    ref = FIDReference(stats.mu, stats.sigma)
    test_stats = reference_stats("mnist-test", ex)
    feats = real_features(test_stats, ex, 10_000).double()
    g = torch.Generator().manual_seed(0)
    for n in (1000, 3000, 5000, 10_000):
        if n < 2 * feats.shape[1]:
            continue
        vals, infs = [], []
        for r in range(3 if n < 10_000 else 1):
            x = feats[torch.randperm(len(feats), generator=g)[:n]] if n < 10_000 else feats
            vals.append(ref.fid(x.mean(0).numpy(), torch.cov(x.T).numpy()))
            infs.append(fd_infinity(x, ref, seed=r)[0])
        print(f"{extractor:9s} test vs train N={n:6d}: FD_N {np.mean(vals):.4f} (sd {np.std(vals):.4f})  "
              f"FD∞ {np.mean(infs):.4f} (sd {np.std(infs):.4f})  [{len(vals)} random subsets]")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inception", action="store_true", help="also FID∞ with the Inception features (10k test features)")
    args = p.parse_args()
    copying_floors()
    fd_inf_real("mnist")
    if args.inception:
        fd_inf_real("inception")


if __name__ == "__main__":
    main()
