"""Vendi score (Friedman & Dieng 2023): the effective number of distinct samples, without a reference.

With the cosine-similarity kernel K = X̂ X̂ᵀ (rows of X̂ are unit-length features), the score is the exponential
of the Shannon entropy of the eigenvalues of K/n. K/n and X̂ᵀ X̂/n share their nonzero eigenvalues, so the
d × d form is used: exact, and independent of n in cost. It is at most the feature dimension d.
"""

from __future__ import annotations

import math

import torch


def vendi_score(features: torch.Tensor) -> float:
    """Vendi score (order q = 1) of ``features`` (n × d) with the cosine-similarity kernel."""
    x = features.to(torch.float64)
    if x.shape[0] == 0:
        return float("nan")
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-300)
    w = torch.linalg.eigvalsh(x.T @ x / x.shape[0])
    w = w[w > 0]
    return math.exp(float(-(w * w.log()).sum()))
