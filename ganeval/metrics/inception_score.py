"""Inception Score (also used with the MNIST classifier's logits), matching torch-fidelity's definition."""

from __future__ import annotations

import numpy as np
import torch


def inception_score(logits: torch.Tensor, splits: int = 10, shuffle: bool = True, rng_seed: int = 2020) -> tuple[float, float]:
    """Mean and std over ``splits`` of exp(E KL(p(y|x) ‖ p(y))), computed in float64 as torch-fidelity does."""
    n = logits.shape[0]
    feats = logits.detach().cpu()
    if shuffle:
        feats = feats[np.random.RandomState(rng_seed).permutation(n)]
    feats = feats.double()
    p = feats.softmax(dim=1)
    log_p = feats.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(dim=0, keepdim=True)
        kl = (p[lo:hi] * (log_p[lo:hi] - q.log())).sum(dim=1).mean().exp().item()
        scores.append(kl)
    return float(np.mean(scores)), float(np.std(scores))
