"""A permutation test of the difference of two Fréchet distances to one reference, FD(A) − FD(B).

Near the floor (two good models) the bootstrap interval of the difference is about twice too wide: FD is then a
degenerate statistic, whose bootstrap variance is inflated by the duplicates a resample draws
(docs/compare.md#is-the-interval-honest-calibration). A permutation test needs no variance estimate. Under "A and B are
the same model", swapping A's and B's sample for any latent (paired generators), or reshuffling the pooled
samples into two sets (stored samples), leaves the joint distribution unchanged, so the observed difference is
compared with the differences of ``permutations`` such re-labellings. Two-sided p = (1 + #{|T*| ≥ |T|}) / (1 + P).
Each re-labelling costs one weighted Gram matrix and one symmetric eigenvalue problem per set, so it is offered
for features up to :data:`MAX_DIM` wide (MNIST 128-d, small custom networks), not for Inception's 2048 on a CPU.
"""

from __future__ import annotations

import torch

from ganeval.metrics.fid import FIDReference

MAX_DIM = 512


def _fd_batch(s: torch.Tensor, q: torch.Tensor, n: int, mu_r: torch.Tensor, f: torch.Tensor, tr_r: float) -> torch.Tensor:
    """FD to the reference of sets given by their sums ``s`` (P, d) and Gram matrices ``q`` (P, d, d) over ``n`` rows."""
    mu = s / n
    cov = (q - n * mu[:, :, None] * mu[:, None, :]) / (n - 1)
    diff = mu - mu_r
    inner = f.T @ cov @ f
    inner = (inner + inner.transpose(1, 2)) / 2
    root = torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum(1)
    return (diff * diff).sum(1) + cov.diagonal(dim1=1, dim2=2).sum(1) + tr_r - 2 * root


def fd_difference_test(a: torch.Tensor, b: torch.Tensor, ref: FIDReference, paired: bool, permutations: int = 1000,
                       seed: int = 0, memory: float = 2.5e8) -> tuple[float, float]:
    """(FD(A) − FD(B), two-sided permutation p-value); ``paired``: row i of A and of B share a latent."""
    if len(a) != len(b) or a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"two feature sets of one shape expected, got {tuple(a.shape)} and {tuple(b.shape)}")
    n = len(a)
    z = torch.cat([a, b]).double()
    mu_r = torch.from_numpy(ref.mu)
    f = torch.from_numpy(ref.factor).double()
    tot_s, tot_q = z.sum(0), z.T @ z
    chunk = max(1, int(memory // (8 * z.shape[1] * 2 * n)))  # re-labellings per batch: (chunk, d, 2n) float64
    def stat(m: torch.Tensor) -> torch.Tensor:  # m: (P, 2n) membership of set A'
        s = m @ z
        q = (z.T[None] * m[:, None, :]) @ z
        fa = _fd_batch(s, q, n, mu_r, f, ref.trace)
        fb = _fd_batch(tot_s - s, tot_q - q, n, mu_r, f, ref.trace)
        return fa - fb

    observed = float(stat(torch.cat([torch.ones(1, n), torch.zeros(1, n)], 1).double())[0])
    gen = torch.Generator().manual_seed(seed)
    exceed = 0
    for start in range(0, permutations, chunk):
        p = min(chunk, permutations - start)
        if paired:
            swap = torch.randint(0, 2, (p, n), generator=gen).double()
            m = torch.cat([1 - swap, swap], 1)
        else:
            m = (torch.rand(p, 2 * n, generator=gen).argsort(1) < n).double()
        exceed += int((stat(m).abs() >= abs(observed) * (1 - 1e-12)).sum())
    return observed, (1 + exceed) / (1 + permutations)
