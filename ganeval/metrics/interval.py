"""Bootstrap intervals shared by the metrics and the ranking (one definition for every interval ganeval reports)."""

from __future__ import annotations

import math

import numpy as np


def ci_percent(level: float) -> str:
    """An interval level as the text says it: 0.95 → "95", 0.995 → "99.5" (never rounded to "100")."""
    return f"{100 * float(level):.4g}"


def bootstrap_interval(estimate: float, replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of ``estimate``: the replicates' spread around their median, placed at the estimate.

    Resamples with duplicates bias a Fréchet distance upwards, so raw percentiles of the replicates can miss
    the estimate; re-centring on the estimate keeps the sampling spread and drops that resampling bias.
    """
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size < 2 or not math.isfinite(estimate):
        return float("nan"), float("nan")
    lo_q, med, hi_q = np.quantile(reps, [(1 - level) / 2, 0.5, (1 + level) / 2])
    return float(estimate - (med - lo_q)), float(estimate + (hi_q - med))
