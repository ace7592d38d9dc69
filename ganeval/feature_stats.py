"""Streaming mean and covariance of features, accumulated in float64 (mergeable across processes)."""

from __future__ import annotations

import numpy as np
import torch


class FeatureStats:
    """Running sum and sum of outer products; ``mean``/``cov`` equal ``np.mean``/``np.cov`` (N-1) of all rows seen."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, feats: torch.Tensor) -> None:
        """Add a batch ``(B, dim)`` of features."""
        x = feats.detach().to("cpu", torch.float64)
        self.n += x.shape[0]
        self.sum += x.sum(0)
        self.outer += x.T @ x

    def merge(self, other: FeatureStats) -> None:
        """Add another accumulator's rows."""
        self.n += other.n
        self.sum += other.sum
        self.outer += other.outer

    @property
    def mean(self) -> np.ndarray:
        return (self.sum / max(self.n, 1)).numpy()

    @property
    def cov(self) -> np.ndarray:
        if self.n < 2:
            raise ValueError("covariance needs at least 2 samples")
        mu = self.sum / self.n
        cov = (self.outer - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return ((cov + cov.T) / 2).numpy()
