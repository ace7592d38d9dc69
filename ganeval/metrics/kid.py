"""Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel over random subsets
(torch-fidelity's estimator and defaults: 100 subsets of 1000, seed 2020)."""

from __future__ import annotations

import numpy as np
import torch


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    gamma = 1.0 / x.shape[1]
    m = x.shape[0]
    kxx = (x @ x.T * gamma + 1) ** 3
    kyy = (y @ y.T * gamma + 1) ** 3
    kxy = (x @ y.T * gamma + 1) ** 3
    sxx = kxx.sum() - np.trace(kxx)
    syy = kyy.sum() - np.trace(kyy)
    return float((sxx + syy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kid(gen: torch.Tensor, real: torch.Tensor, subsets: int = 100, subset_size: int = 1000, rng_seed: int = 2020) -> tuple[float, float]:
    """Mean and std of MMD² over ``subsets``; the subset size shrinks to the smaller sample when needed."""
    g = gen.detach().cpu().numpy()
    r = real.detach().cpu().numpy()
    size = min(subset_size, len(g), len(r))
    if size < 2:
        return float("nan"), float("nan")
    rng = np.random.RandomState(rng_seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        a = g[rng.choice(len(g), size, replace=False)]
        b = r[rng.choice(len(r), size, replace=False)]
        mmds[i] = _mmd2_unbiased(a, b)
    return float(mmds.mean()), float(mmds.std())
