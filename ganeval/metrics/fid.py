"""Fréchet distance with a fast, exact trace term.

tr √(Σr Σg) is the sum of √λ over the eigenvalues λ of Σr Σg, which are those of the symmetric PSD
matrix Fᵀ Σg F for any factor Σr = F Fᵀ. ganeval takes F = the Cholesky factor of Σr (float64; two
triangular multiplies and one symmetric ``eigvalsh`` per call, against torch-fidelity's general
``eigvals`` of Σr Σg), falling back to the symmetric √Σr when Σr is singular. The factor is computed
once per reference and cached in memory, keyed by the statistics' content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from scipy.linalg.blas import dtrmm

from ganeval.threads import cpu_threads


def _factor(sigma: np.ndarray) -> tuple[np.ndarray, bool, np.ndarray | None]:
    """(F, lower-triangular?, Σ's eigenvalues or None) with F Fᵀ = Σ: Cholesky when Σ is positive definite, else the
    symmetric √Σ (its eigenvalues kept: they tell whether a stated sample count bounds Σ's rank)."""
    s = torch.from_numpy(np.ascontiguousarray(sigma, dtype=np.float64))
    chol, info = torch.linalg.cholesky_ex(s)  # reads the lower triangle only
    if int(info) == 0 and bool(torch.isfinite(chol).all()):
        return np.asfortranarray(chol.numpy()), True, None
    w, v = torch.linalg.eigh((s + s.T) / 2)
    return ((v * w.clamp_min(0).sqrt()) @ v.T).numpy(), False, w.numpy()


def _trace_sqrt_psd(m: torch.Tensor, rank: int | None = None) -> float:
    """Σ √λ over the eigenvalues of a symmetric PSD matrix (its lower triangle is read; negative round-off clipped);
    with ``rank``, over its ``rank`` largest only: the others are zero but for round-off, whose square roots (about
    √(ε‖m‖) each) added up over the hundreds of null directions of N < D samples to a negative distance."""
    w = torch.linalg.eigvalsh(m)
    if rank is not None and rank < len(w):
        w = w[len(w) - rank:]
    return float(w.clamp_min(0).sqrt().sum())


def _bound(*ranks: int | None) -> int | None:
    """The least of the known rank bounds (None: none known)."""
    known = [r for r in ranks if r is not None]
    return min(known) if known else None


def _samples_rank(n: int | None) -> int | None:
    """The rank bound of the covariance of ``n`` samples: ``n - 1`` (None: the count is not known)."""
    return None if n is None else max(int(n) - 1, 0)


#: Share of Σ's eigenvalue mass beyond its stated rank below which that rank is taken as true (round-off only): for
#: a float64 Σ (its round-off there: about 1e-15), and for one stored in float32 (ganeval's statistics files: their
#: rounding leaves about 4e-8 of the mass there, measured on ReLU features of N = 60-1000, D = 128-2048).
RANK_SLACK, RANK_SLACK_FLOAT32 = 1e-9, 1e-6


class FIDReference:
    """Reference mean/covariance with a factor of Σ and tr Σ precomputed; ``fid(mu, sigma)`` is then
    two (triangular) matrix products and one ``eigvalsh``.

    ``n``, the count of images behind the reference, bounds Σ's rank by ``n - 1`` where Σ is singular and its
    eigenvalues agree (a count that does not, e.g. one mistyped at import, is not used)."""

    _factor_cache: dict[str, tuple[np.ndarray, bool, np.ndarray | None]] = {}

    def __init__(self, mu: np.ndarray, sigma: np.ndarray, n: int | None = None) -> None:
        self.mu = np.asarray(mu, dtype=np.float64).reshape(-1)
        self.sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))  # one feature: np.cov gives a 0-d array
        key = hashlib.sha256(self.sigma.tobytes()).hexdigest()
        if key not in self._factor_cache:
            self._factor_cache[key] = _factor(self.sigma)
        self.factor, self.triangular, eigenvalues = self._factor_cache[key]
        self.trace = float(np.trace(self.sigma))
        self.rank = _samples_rank(n)
        if eigenvalues is None or self.rank is None or self.rank >= len(eigenvalues):
            self.rank = None  # positive definite, or no bound below its size
        else:
            mass = np.abs(eigenvalues)
            stored32 = np.array_equal(self.sigma, self.sigma.astype(np.float32))
            if mass[: len(mass) - self.rank].sum() > (RANK_SLACK_FLOAT32 if stored32 else RANK_SLACK) * mass.sum():
                self.rank = None

    @classmethod
    def clear_cache(cls) -> None:
        """Forget every cached factor (benchmarks use it to time cold starts)."""
        cls._factor_cache.clear()

    def trace_sqrt_product(self, sigma: np.ndarray, n: int | None = None) -> float:
        """tr √(Σr Σg); ``n``, the count of samples behind Σg, bounds the product's rank by ``n - 1``."""
        f, rank = self.factor, _bound(self.rank, _samples_rank(n))
        if self.triangular:
            g = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
            g = g.T if g.flags.c_contiguous else np.asfortranarray(g)  # Σg is symmetric: its C-order transpose is it, Fortran-ordered
            m = dtrmm(1.0, f, g, side=1, lower=1)  # Σg L (a new array; Σg is not overwritten)
            m = dtrmm(1.0, f, m, side=0, lower=1, trans_a=1, overwrite_b=1)  # Lᵀ Σg L
            return _trace_sqrt_psd(torch.from_numpy(m.T), rank)  # symmetric: the C-order view has the same eigenvalues
        r = torch.from_numpy(f)
        g = np.ascontiguousarray(np.atleast_2d(np.asarray(sigma, dtype=np.float64)))
        return _trace_sqrt_psd(r @ torch.from_numpy(g) @ r, rank)

    def fid(self, mu: np.ndarray, sigma: np.ndarray, n: int | None = None) -> float:
        """Fréchet distance between N(mu, sigma) and the reference; inf for non-finite input. ``n``: the count of
        samples behind ``sigma``, where known (exact where N < D)."""
        mu = np.asarray(mu, dtype=np.float64).reshape(-1)
        sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            return float("inf")
        diff = mu - self.mu
        traces = float(diff @ diff + np.trace(sigma) + self.trace)
        return clamp_roundoff(traces - 2 * self.trace_sqrt_product(sigma, n), traces)


#: Relative size (of the sum of the positive terms) below which a negative distance is float64 round-off.
ROUNDOFF = 1e-9


def clamp_roundoff(fd: float, scale: float) -> float:
    """0 for a negative distance within round-off of 0 (identical statistics give about -1e-12, not 0); any other
    value, a larger negative one included (which would show an error), as it is."""
    return 0.0 if -ROUNDOFF * max(scale, 1.0) <= fd < 0 else fd


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     n1: int | None = None, n2: int | None = None) -> float:
    """Fréchet distance between two Gaussians (symmetric in its arguments); ``n1``/``n2``: the sample counts behind
    them, where known (exact where N < D)."""
    return FIDReference(mu2, sigma2, n2).fid(mu1, sigma1, n1)


SINGLE_THREAD_MAX_DIM = 512  # bootstrap of features this small runs on one CPU thread (see bootstrap_fid)


def bootstrap_fid(
    features: torch.Tensor,
    ref: FIDReference,
    indices: Sequence[np.ndarray],
) -> np.ndarray:
    """FID of each bootstrap resample ``features[idx]`` against ``ref`` (paired when ``indices`` are shared).

    With multiplicities w and Σr = F Fᵀ, Fᵀ Σg F = Yᵀ Y for Y = diag(√w) (X − μ) F / √(n − 1), whose nonzero
    eigenvalues are those of the smaller Gram matrix over the ~63 % distinct rows of a resample. X F is formed
    once, so a replicate costs one Gram product and one ``eigvalsh`` of min(rows, d) instead of a d × d
    covariance, two d × d products and a d × d ``eigvalsh``. Runs on the features' device.

    Small features (d ≤ 512, e.g. the MNIST classifier's 128) run on one CPU thread: a replicate is then a
    series of tiny operations whose thread hand-offs gain nothing alone and stall when several processes share
    the cores (docs/performance.md, "Several processes on one machine").
    """
    small = features.device.type == "cpu" and features.shape[1] <= SINGLE_THREAD_MAX_DIM
    with cpu_threads(1 if small else None):
        return _bootstrap_fid(features, ref, indices)


def _bootstrap_fid(features: torch.Tensor, ref: FIDReference, indices: Sequence[np.ndarray]) -> np.ndarray:
    x = features.to(torch.float64)
    n, d = x.shape
    f = torch.from_numpy(np.ascontiguousarray(ref.factor)).to(x.device)
    xf = x @ f  # (n, d), shared by every replicate
    ref_mu = torch.from_numpy(ref.mu).to(x.device)
    out = np.empty(len(indices))
    for b, idx in enumerate(indices):
        w = torch.bincount(torch.as_tensor(idx, device=x.device), minlength=n).to(torch.float64)
        rows = torch.nonzero(w, as_tuple=True)[0]
        wr, xr = w[rows], x[rows]
        mu = (wr @ xr) / n
        scale = (wr / (n - 1)).sqrt().unsqueeze(1)
        xc = xr - mu
        trace_g = float((wr * (xc * xc).sum(1)).sum()) / (n - 1)
        y = (xf[rows] - mu @ f) * scale
        gram = y @ y.T if y.shape[0] <= d else y.T @ y
        diff = mu - ref_mu
        traces = float(diff @ diff) + trace_g + ref.trace
        rank = _bound(ref.rank, len(rows) - 1)  # the weighted-centred rows sum to zero
        out[b] = clamp_roundoff(traces - 2 * _trace_sqrt_psd(gram, rank), traces)
    return out
