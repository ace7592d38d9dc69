"""Effectively unbiased Fréchet distance, FD∞ (Chong & Forsyth, CVPR 2020, "Effectively unbiased FID and
Inception Score and where to find them").

FID estimated from N samples is biased upwards, roughly by c/N with a c that depends on the generator, so
FIDs taken at different N, or of generators with different c, do not compare. FD∞ takes the distance at
``points`` sample sizes evenly spaced from N/2 to N (random subsets), fits a straight line in 1/N by least
squares and reads it at 1/N = 0, as the authors' ``calculate_FID_infinity`` does. The slope is the bias
coefficient c. The authors fit 15 points from 5,000 to 50,000 for 2048-d features; the c/N law needs subsets
no smaller than the feature dimension (below it the covariance is rank-deficient), hence N/2 … N and N ≥ 2d
(docs/scoring.md has the measurements behind this choice).
"""

from __future__ import annotations

import numpy as np
import torch

from ganeval.errors import GanevalError
from ganeval.metrics.fid import FIDReference

POINTS = 15
MIN_FRACTION = 0.5


def subset_sizes(n: int, points: int = POINTS, min_fraction: float = MIN_FRACTION) -> np.ndarray:
    """The sample sizes the line is fitted through (evenly spaced, truncated to integers as the authors do)."""
    return np.linspace(max(2, int(min_fraction * n)), n, points).astype(np.int64)


def fd_infinity(pool: torch.Tensor, ref: FIDReference, seed: int = 0, points: int = POINTS,
                min_fraction: float = MIN_FRACTION) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(FD∞, slope c of FD_N ≈ FD∞ + c/N, the sizes N_i, the distances FD_{N_i}) for one sample set.

    Each size draws its own random subset (seeded), as in the authors' code; the subsets at N equal all samples.
    """
    if len(pool) < 2:
        raise GanevalError(f"FD∞ needs at least 2 samples (got {len(pool)})")
    feats = pool.double().numpy()
    sizes = subset_sizes(len(pool), points, min_fraction)
    if sizes[0] < feats.shape[1]:
        raise GanevalError(f"FD∞ needs subsets of at least the feature dimension ({feats.shape[1]}), i.e. N >= "
                           f"{int(np.ceil(feats.shape[1] / min_fraction))} samples (got N = {len(feats)})")
    gen = torch.Generator().manual_seed(seed)
    fds = np.empty(len(sizes))
    for i, n in enumerate(sizes):
        x = feats[torch.randperm(len(feats), generator=gen)[:n].numpy()]
        fds[i] = ref.fid(x.mean(0), np.cov(x, rowvar=False), n)  # numpy: the same BLAS as the distance (no pool hand-offs)
    if not np.isfinite(fds).all():
        return float("inf"), float("nan"), sizes, fds
    slope, intercept = np.polyfit(1.0 / sizes, fds, 1)
    return float(intercept), float(slope), sizes, fds
