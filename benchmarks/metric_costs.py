"""What the session-8 metrics cost per checkpoint on this machine (by hand, not a test): the copying test (its
once-per-series reference, then each sample set), MNIST FD∞ and FID∞, against one plain FID.

    python benchmarks/metric_costs.py      # needs the cached real features (first `ganeval score` run makes them)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ganeval.features import get_extractor
from ganeval.metrics.copying import CopyingReference
from ganeval.metrics.fd_infinity import fd_infinity
from ganeval.metrics.fid import FIDReference
from ganeval.reference import dataset_features, real_features, reference_stats


def _median_s(fn, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    torch.manual_seed(0)
    ex = get_extractor("mnist", device="cpu")
    train, test = dataset_features("mnist-train", ex, 500), dataset_features("mnist-test", ex, 500)
    samples = train[:10_000] + 0.5 * torch.randn(10_000, train.shape[1])
    t0 = time.perf_counter()
    ref = CopyingReference(test, train)
    ref.partition()  # the cells are fitted when first needed: timed with the reference
    print(f"copying reference (k-means of 60,000 × 128, held-out distances), once per series: {time.perf_counter() - t0:.2f} s")
    print(f"copying test, N = 10,000, per checkpoint: {_median_s(lambda: ref.test(samples)):.2f} s")
    stats = reference_stats("mnist-train", ex)
    fd_ref = FIDReference(stats.mu, stats.sigma)
    print(f"mnist_fd_inf, N = 10,000 (15 subsets): {_median_s(lambda: fd_infinity(samples, fd_ref)):.2f} s")
    inc = get_extractor("inception", device="cpu")
    inc_ref = FIDReference(*(lambda s: (s.mu, s.sigma))(reference_stats("mnist-train", inc)))
    feats = real_features(reference_stats("mnist-test", inc), inc, 10_000).double()
    one = _median_s(lambda: inc_ref.fid(feats.mean(0).numpy(), torch.cov(feats.T).numpy()))
    inf = _median_s(lambda: fd_infinity(feats, inc_ref), rounds=1)
    print(f"fid_inf, N = 10,000 (2048-d, 15 subsets): {inf:.2f} s; one FID from the same features: {one:.2f} s")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, no options
    main()
