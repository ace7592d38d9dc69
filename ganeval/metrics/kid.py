"""Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel over random subsets.

The per-subset estimator is torch-fidelity's own ``kernel_mmd`` (same kernel, same float32 sums), so
values equal torch-fidelity's on the same features; unlike it, the subset size shrinks to the smaller
sample instead of refusing small N.
"""

from __future__ import annotations

import numpy as np
import torch

_POLY = {"kid_kernel": "poly", "kid_kernel_poly_degree": 3, "kid_kernel_poly_gamma": None, "kid_kernel_poly_coef0": 1}


def kid(gen: torch.Tensor, real: torch.Tensor, subsets: int = 100, subset_size: int = 1000, rng_seed: int = 2020) -> tuple[float, float]:
    """Mean and std of MMD² over ``subsets`` random subsets (torch-fidelity's defaults and sampling order)."""
    from torch_fidelity.metric_kid import kernel_mmd  # here: importing torch-fidelity takes a second (torchvision)

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
        mmds[i] = kernel_mmd(a, b, **_POLY)
    return float(mmds.mean()), float(mmds.std())
