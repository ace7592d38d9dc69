"""Streaming mean and covariance of features, accumulated in float64 (mergeable across processes)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


class FeatureStats:
    """Sums of rows and of their outer products taken about a shift (the first batch's mean); ``mean``/``cov`` equal
    ``np.mean``/``np.cov`` (N-1) of all rows seen.

    Raw sums would lose the covariance to cancellation when the mean is large beside the spread (Σxxᵀ − N μμᵀ:
    mean 1e6, sd 1 gave 2e-3 relative error); about a shift near the mean the sums hold only the spread.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.shift = torch.zeros(dim, dtype=torch.float64)
        self.sum = torch.zeros(dim, dtype=torch.float64)  # Σ (x − shift)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)  # Σ (x − shift)(x − shift)ᵀ

    def update(self, feats: torch.Tensor) -> None:
        """Add a batch ``(B, dim)`` of features."""
        x = feats.detach().to("cpu", torch.float64)
        if self.n == 0 and len(x):
            self.shift = x.mean(0)
        x = x - self.shift
        self.n += x.shape[0]
        self.sum += x.sum(0)
        self.outer += x.T @ x

    def rebase(self, shift: torch.Tensor) -> None:
        """Take the sums about ``shift`` instead: with d = old − new shift, x − new = (x − old) + d, so
        Σ(x − new) = sum + n d and the outer sum gains sum dᵀ + d sumᵀ + n d dᵀ (no cancellation for shifts near
        the mean)."""
        d = self.shift - shift.to(torch.float64)
        self.outer += torch.outer(self.sum, d) + torch.outer(d, self.sum) + self.n * torch.outer(d, d)
        self.sum += self.n * d
        self.shift = shift.to(torch.float64).clone()

    def merge(self, other: FeatureStats) -> None:
        """Add another accumulator's rows (its sums taken about this one's shift; ``other`` is left as it was)."""
        if self.n == 0:
            self.shift = other.shift.clone()
        moved = FeatureStats(self.dim)
        moved.n, moved.shift, moved.sum, moved.outer = other.n, other.shift, other.sum.clone(), other.outer.clone()
        moved.rebase(self.shift)
        self.n += moved.n
        self.sum += moved.sum
        self.outer += moved.outer

    def all_reduce(self, reduce_sum: Callable[[list[torch.Tensor]], None]) -> None:
        """Make every process's accumulator hold the rows of all (``reduce_sum``: ``DistContext.all_reduce_sum``, which
        sums tensors over the ranks in place). Each rank's shift is its own, so the ranks first agree on one, the
        pooled mean (from raw sums: only the shift, so its rounding does not matter), and add the sums taken about it."""
        total = torch.cat([self.n * self.shift + self.sum, torch.tensor([float(self.n)], dtype=torch.float64)])
        reduce_sum([total])
        n = int(total[-1].item())
        self.rebase(total[:-1] / max(n, 1))
        reduce_sum([self.sum, self.outer])
        self.n = n

    @property
    def mean(self) -> np.ndarray:
        return (self.shift + self.sum / max(self.n, 1)).numpy()

    @property
    def cov(self) -> np.ndarray:
        if self.n < 2:
            raise ValueError("covariance needs at least 2 samples")
        m = self.sum / self.n
        cov = (self.outer - self.n * torch.outer(m, m)) / (self.n - 1)
        return ((cov + cov.T) / 2).numpy()
