"""Perceptual path length's summary: torch-fidelity's trimmed mean and standard deviation of per-pair path lengths
(the lengths themselves come from ``ganeval.path_length``, which needs the generator)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Percentiles outside which path lengths are discarded (torch-fidelity's and StyleGAN's defaults).
DISCARD = (1.0, 99.0)


def summarize(d: np.ndarray, lower: float | None = DISCARD[0], higher: float | None = DISCARD[1]) -> dict[str, float]:
    """Mean and standard deviation of the path lengths inside the percentiles (torch-fidelity's rule: the lower
    bound by ``lower`` interpolation, the upper by ``higher``, both kept inclusively)."""
    keep = np.ones(len(d), dtype=bool)
    if lower is not None:
        keep &= d >= np.percentile(d, lower, method="lower")
    if higher is not None:
        keep &= d <= np.percentile(d, higher, method="higher")
    kept = d[keep]
    if not len(kept) or not np.isfinite(kept).all():
        return {"mean": math.nan, "std": math.nan, "kept": float(len(kept))}
    return {"mean": float(kept.mean()), "std": float(kept.std()), "kept": float(len(kept))}


def ppl_replicates(d: np.ndarray, indices: Sequence[np.ndarray]) -> np.ndarray | None:
    """The trimmed mean over each resample of the pairs (``indices``: the run's shared resamples, so checkpoints
    are resampled alike and their differences paired); None without resamples or when they do not fit ``d``."""
    if not len(indices) or any(len(i) != len(d) or (len(i) and int(np.max(i)) >= len(d)) for i in indices):
        return None
    return np.array([summarize(d[np.asarray(i)])["mean"] for i in indices])
