"""A permutation test of the difference of two Fréchet distances to one reference, FD(A) − FD(B).

Near the floor (two good models) the bootstrap interval of the difference is about twice too wide: FD is then a
degenerate statistic, whose bootstrap variance is inflated by the duplicates a resample draws
(docs/compare.md#is-the-interval-honest-calibration). A permutation test needs no variance estimate. Under "A and B are
the same model", swapping A's and B's sample for any latent (paired generators), or reshuffling the pooled
samples into two sets (stored samples), leaves the joint distribution unchanged, so the observed difference is
compared with the differences of ``permutations`` such re-labellings. Two-sided p = (1 + #{|T*| ≥ |T|}) / (1 + P),
exact ties (up to rounding) counted as extreme.
Each re-labelling costs one weighted Gram matrix and one symmetric eigenvalue problem per set, so it is offered
for features up to :data:`MAX_DIM` wide (MNIST 128-d, small custom networks), not for Inception's 2048 on a CPU.

Sequential stopping (Besag & Clifford 1991, Biometrika 78:301): re-labellings are judged one by one in draw order,
and the test stops at the ``sequential``-th (h-th) one at least as extreme as the observed; then p = h / l, l the
number drawn. A large p (no difference: the usual answer in early stopping) is thus known after about h / p
re-labellings instead of P. Reaching the P-th with g < h gives (g + 1) / (P + 1), the full test's p. Both are valid
p-values. Re-labellings come from one seeded stream in draw order, whatever the batch sizes, so a test that does not
stop early draws exactly the full test's re-labellings. Stored samples are pooled in an order fixed by the two sets'
contents (:func:`pooled_swapped`), not by which one came first, so swapping A and B negates T and every T* and
leaves p unchanged, as the paired swaps do by construction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ganeval.metrics.fid import FIDReference

MAX_DIM = 512


@dataclass(frozen=True)
class PermutationResult:
    """The observed FD(A) − FD(B), its two-sided p-value, and how many re-labellings it took."""

    difference: float
    p_value: float
    #: Re-labellings drawn (``permutations`` unless it stopped early).
    drawn: int
    #: Of those, at least as extreme as the observed difference.
    extreme: int
    #: The most allowed (P).
    permutations: int
    #: h: stop at the h-th extreme re-labelling (0: draw all P).
    sequential: int

    @property
    def stopped(self) -> bool:
        """Whether it stopped at the h-th extreme re-labelling (p = h / drawn) rather than after the P-th."""
        return 0 < self.sequential <= self.extreme

    def describe(self) -> str:
        """E.g. "37 of 1000 re-labellings, stopped at 10 as extreme" (the ``method`` text of ``compare``)."""
        return f"{self.drawn} of {self.permutations} re-labellings" + (
            f", stopped at {self.sequential} as extreme" if self.stopped else "")


def _fd_batch(s: torch.Tensor, q: torch.Tensor, n: int, mu_r: torch.Tensor, f: torch.Tensor, tr_r: float,
              delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """FD to the reference of sets given by their sums ``s`` (P, d) and Gram matrices ``q`` (P, d, d) over ``n`` rows,
    and how far rounding may move its √-eigenvalue term when each eigenvalue is off by up to ``delta``."""
    mu = s / n
    cov = (q - n * mu[:, :, None] * mu[:, None, :]) / (n - 1)
    diff = mu - mu_r
    inner = f.T @ cov @ f
    inner = (inner + inner.transpose(1, 2)) / 2
    lam = torch.linalg.eigvalsh(inner).clamp_min(0)
    root = lam.sqrt().sum(1)
    # |√λ' − √λ| ≤ min(√δ, δ/√λ): large near λ = 0 (d ≥ n, dead features), where √ amplifies rounding to ~√δ
    slack = (delta / lam.sqrt().clamp_min(delta ** 0.5)).sum(1)
    return (diff * diff).sum(1) + cov.diagonal(dim1=1, dim2=2).sum(1) + tr_r - 2 * root, 2 * slack


def _chunks(total: int, first: int, cap: int) -> Iterator[int]:
    """Batch sizes summing to ``total``: ``first``, then doubling up to ``cap`` (a cheap first look for early stops)."""
    size = max(1, min(first, cap))
    while total > 0:
        yield min(size, total)
        total -= size
        size = min(2 * size, cap)


def _digest(x: torch.Tensor) -> bytes:
    return hashlib.sha256(x.detach().cpu().double().contiguous().numpy().tobytes()).digest()


def pooled_swapped(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether unpaired sets are pooled as [B, A] rather than [A, B]: the order of their SHA-256 digests, so that the
    re-labellings drawn (and p) do not depend on which set the caller gave first."""
    return _digest(b) < _digest(a)


def _relabelled(a: torch.Tensor, b: torch.Tensor, ref: FIDReference, paired: bool, permutations: int, seed: int,
                memory: float, first: int) -> tuple[float, float, Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """The observed FD(A) − FD(B), its rounding bound, and a lazy stream of the re-labelled statistics with theirs,
    batch by batch in draw order.

    Re-labelled sets are summed in another order than A and B, so an exact tie (|T*| = |T|, e.g. paired sets equal
    but for one row: every swap gives ±T) differs by rounding. That rounding scales with the terms T is the small
    difference of (‖x‖², tr Σr: hundreds), not with T, and the √-eigenvalue term amplifies it near λ = 0; the bound
    covers both, so a tie counts as at least as extreme (rounding may only make p larger, never falsely small).
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2 or (paired and a.shape != b.shape):
        raise ValueError(f"two feature sets of one width (of one shape, paired) expected, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    sign = -1.0 if not paired and pooled_swapped(a, b) else 1.0  # T(B, A) = −T(A, B): the stream is negated alike
    if sign < 0:
        a, b = b, a
    na, nb = len(a), len(b)  # stored sets may differ in size: re-labellings split the pool back at these sizes
    z = torch.cat([a, b]).double()
    mu_r = torch.from_numpy(ref.mu)
    f = torch.from_numpy(ref.factor).double()
    tot_s, tot_q = z.sum(0), z.T @ z
    cap = max(1, int(memory // (8 * z.shape[1] * (na + nb))))  # re-labellings per batch: (chunk, d, na + nb) float64
    # float summation of the pooled rows errs by up to ~(na + nb) eps × the magnitudes summed (×4 for safety); any
    # set's ‖x‖² mean is at most tr(ZᵀZ) / its rows, and Fᵀ Σ F's eigenvalues at most that times ‖F‖² = ‖Σr‖
    rel = 4 * (na + nb) * torch.finfo(torch.float64).eps
    scale = float(tot_q.diagonal().sum()) / min(na, nb)
    linear = rel * (scale + float((mu_r * mu_r).sum()) + ref.trace)  # of one FD's mean, trace and tr Σr terms
    delta = rel * scale * float(torch.linalg.matrix_norm(f, 2)) ** 2

    def fd(s: torch.Tensor, q: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        value, slack = _fd_batch(s, q, n, mu_r, f, ref.trace, delta)
        return value, slack + linear

    def stat(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # m: (P, na + nb) membership of set A'
        s = m @ z
        q = (z.T[None] * m[:, None, :]) @ z
        (fa, ea), (fb, eb) = fd(s, q, na), fd(tot_s - s, tot_q - q, nb)
        return fa - fb, ea + eb

    gen = torch.Generator().manual_seed(seed)

    def draw(p: int) -> torch.Tensor:  # CPU draws are serial: p rows at once == p draws of one row (tested)
        if paired:
            swap = torch.randint(0, 2, (p, na), generator=gen).double()
            return torch.cat([1 - swap, swap], 1)
        return (torch.rand(p, na + nb, generator=gen).argsort(1) < na).double()

    za, zb = z[:na], z[na:]  # each set's own sums: identical sets give exactly 0
    (own_a, err_a), (own_b, err_b) = fd(za.sum(0)[None], (za.T @ za)[None], na), fd(zb.sum(0)[None], (zb.T @ zb)[None], nb)
    stream = (stat(draw(k)) for k in _chunks(permutations, first, cap))
    return sign * float(own_a[0] - own_b[0]), float(err_a[0] + err_b[0]), ((sign * t, e) for t, e in stream)


def _relabelled_statistics(a: torch.Tensor, b: torch.Tensor, ref: FIDReference, paired: bool, permutations: int = 1000,
                           seed: int = 0, memory: float = 2.5e8, first: int = 1) -> tuple[float, torch.Tensor]:
    """The observed statistic and all ``permutations`` re-labelled ones in draw order (for tests and diagnostics)."""
    observed, _, stream = _relabelled(a, b, ref, paired, permutations, seed, memory, first)
    return observed, torch.cat([t for t, _ in stream]) if permutations > 0 else torch.zeros(0, dtype=torch.float64)


def fd_difference_test(a: torch.Tensor, b: torch.Tensor, ref: FIDReference, paired: bool, permutations: int = 1000,
                       seed: int = 0, memory: float = 2.5e8, sequential: int = 10) -> PermutationResult:
    """FD(A) − FD(B) and its two-sided permutation p-value; ``paired``: row i of A and of B share a latent.

    ``sequential`` = h > 0 stops at the h-th re-labelling at least as extreme as the observed (Besag–Clifford:
    p = h / drawn), so a clearly large p costs about h / p re-labellings instead of ``permutations``; 0 draws all.
    """
    if sequential < 0 or permutations < 0:
        raise ValueError(f"permutations and sequential must be ≥ 0 (got {permutations}, {sequential})")
    first = sequential if sequential else permutations  # an early stop needs ≥ h draws: look at h first, then double
    observed, error, stream = _relabelled(a, b, ref, paired, permutations, seed, memory, first)
    drawn = extreme = 0
    for t, err in stream:  # |T*| ≥ |T| up to both sides' rounding: exact ties count as extreme (see _relabelled)
        hits = (t.abs() >= abs(observed) - error - err).long().cumsum(0)
        if sequential and extreme + int(hits[-1]) >= sequential:  # the h-th extreme one is in this batch: stop there
            drawn += int(torch.searchsorted(hits, sequential - extreme)) + 1
            return PermutationResult(observed, sequential / drawn, drawn, sequential, permutations, sequential)
        drawn, extreme = drawn + len(t), extreme + int(hits[-1])
    return PermutationResult(observed, (1 + extreme) / (1 + permutations), drawn, extreme, permutations, sequential)
