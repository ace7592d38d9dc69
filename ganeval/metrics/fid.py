"""Fréchet distance with a fast, exact trace term.

tr √(Σr Σg) equals the sum of √λ over the eigenvalues λ of the symmetric PSD matrix √Σr Σg √Σr, so
one symmetric ``eigh`` (float64) replaces torch-fidelity's general ``eigvals`` of Σr Σg, and √Σr is
computed once per reference (cached in memory and keyed by the statistics' content).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch


def _sym_sqrt(sigma: np.ndarray) -> np.ndarray:
    s = torch.from_numpy(np.ascontiguousarray(sigma, dtype=np.float64))
    w, v = torch.linalg.eigh((s + s.T) / 2)
    return ((v * w.clamp_min(0).sqrt()) @ v.T).numpy()


def _trace_sqrt_psd(m: torch.Tensor) -> float:
    """Σ √λ over the eigenvalues of a symmetric PSD matrix (negative round-off clipped)."""
    return float(torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum())


class FIDReference:
    """Reference mean/covariance with √Σ and tr Σ precomputed; ``fid(mu, sigma)`` is then one eigh."""

    _sqrt_cache: dict[str, np.ndarray] = {}

    def __init__(self, mu: np.ndarray, sigma: np.ndarray) -> None:
        self.mu = np.asarray(mu, dtype=np.float64)
        self.sigma = np.asarray(sigma, dtype=np.float64)
        key = hashlib.sha256(self.sigma.tobytes()).hexdigest()
        if key not in self._sqrt_cache:
            self._sqrt_cache[key] = _sym_sqrt(self.sigma)
        self.sqrt_sigma = self._sqrt_cache[key]
        self.trace = float(np.trace(self.sigma))

    def trace_sqrt_product(self, sigma: np.ndarray) -> float:
        """tr √(Σr Σg)."""
        r = torch.from_numpy(self.sqrt_sigma)
        g = torch.from_numpy(np.ascontiguousarray(sigma, dtype=np.float64))
        return _trace_sqrt_psd(r @ g @ r)

    def fid(self, mu: np.ndarray, sigma: np.ndarray) -> float:
        """Fréchet distance between N(mu, sigma) and the reference; inf for non-finite input."""
        mu = np.asarray(mu, dtype=np.float64)
        sigma = np.asarray(sigma, dtype=np.float64)
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            return float("inf")
        diff = mu - self.mu
        return float(diff @ diff + np.trace(sigma) + self.trace - 2 * self.trace_sqrt_product(sigma))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians (symmetric in its arguments)."""
    return FIDReference(mu2, sigma2).fid(mu1, sigma1)


def bootstrap_fid(
    features: torch.Tensor,
    ref: FIDReference,
    indices: Sequence[np.ndarray],
) -> np.ndarray:
    """FID of each bootstrap resample ``features[idx]`` against ``ref`` (paired when ``indices`` are shared).

    Moments of a resample come from the multiplicity-weighted sums, computed on the features' device.
    """
    x = features.to(torch.float64)
    n = x.shape[0]
    sqrt_r = torch.from_numpy(ref.sqrt_sigma).to(x.device)
    out = np.empty(len(indices))
    for b, idx in enumerate(indices):
        w = torch.bincount(torch.as_tensor(idx, device=x.device), minlength=n).to(torch.float64)
        mu = (w @ x) / n
        xc = x - mu
        sigma = (xc.T * w) @ xc / (n - 1)
        diff = mu.cpu().numpy() - ref.mu
        out[b] = float(diff @ diff + torch.trace(sigma).item() + ref.trace - 2 * _trace_sqrt_psd(sqrt_r @ sigma @ sqrt_r))
    return out
