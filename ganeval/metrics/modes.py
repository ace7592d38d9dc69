"""Mode coverage for class-labelled domains: how the classifier's predicted classes spread over the samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ganeval.metrics.interval import bootstrap_interval

#: How the intervals are made, part of the ``modes`` metric's cache key: intervals cached under an earlier
#: definition (v2: only unseen classes added to the covered-classes bound; v1: none; before it, the class-KL interval
#: placed at the biased plug-in KL) are never served as this one.
KL_INTERVAL = "bias-corrected-v3"


def class_histogram(logits: torch.Tensor, num_classes: int = 10) -> np.ndarray:
    """Share of samples predicted as each class."""
    pred = logits.argmax(dim=1).cpu()
    return np.bincount(pred.numpy(), minlength=num_classes) / max(len(pred), 1)


def mode_metrics(logits: torch.Tensor, min_share: float = 0.02, num_classes: int = 10) -> dict[str, float]:
    """``modes_covered`` (classes with ≥ ``min_share`` of samples), ``class_kl`` (KL of the histogram from
    uniform, nats) and ``mnist_confidence`` (mean max softmax probability)."""
    kl, modes = _kl_and_modes(class_histogram(logits, num_classes), min_share)
    conf = float(logits.float().softmax(dim=1).max(dim=1).values.mean().item())
    return {"modes_covered": modes, "class_kl": kl, "mnist_confidence": conf}


def _kl_and_modes(hist: np.ndarray, min_share: float) -> tuple[float, int]:
    """KL(histogram ‖ uniform) in nats, and the classes holding at least ``min_share`` of the samples."""
    nz = hist > 0
    return float((hist[nz] * np.log(hist[nz] * len(hist))).sum()), int((hist >= min_share).sum())


def mode_intervals(logits: torch.Tensor, indices: Sequence[np.ndarray], min_share: float = 0.02, num_classes: int = 10,
                   level: float = 0.95) -> dict[str, float]:
    """Bootstrap intervals of ``class_kl`` and of ``modes_covered`` over the resampled ``indices``, so a mode-collapse
    flag comes with the evidence for it.

    The plug-in KL is biased upwards (about (classes − 1) / 2N) and a resample's KL is biased above it by about as
    much, so the class-KL interval is the replicates' spread placed at the bias-corrected 2·KL − median(replicates):
    placed at the plug-in KL itself it kept that bias and missed the true KL on the low side 7–17 % of the time
    (N = 300–100) instead of 2.5 %, calling a KL below the limit "beyond sampling noise". The ``modes_covered``
    bounds are order statistics of the replicates' counts, taken outwards: a bound is a count some replicate had,
    never an interpolated 9.775 that the page would round to 10 while the flag reads it as below 10. A resample
    rarely lifts a class seen a few times (never one unseen) to ``min_share``, so the upper bound is at least the
    classes whose share may still be ``min_share`` or more (:func:`_possible_classes`): 30 samples of a good generator
    that happened to miss one digit were "9 classes, beyond sampling noise", and a digit truly at 2 % seen once in
    200 samples was so 10 % of the time instead of ≤ 2.5 %."""
    pred = logits.argmax(dim=1).cpu().numpy()
    kls, modes = np.empty(len(indices)), np.empty(len(indices))
    for b, idx in enumerate(indices):
        kls[b], modes[b] = _kl_and_modes(np.bincount(pred[idx], minlength=num_classes) / max(len(idx), 1), min_share)
    counts = np.bincount(pred, minlength=num_classes)
    point_kl, _ = _kl_and_modes(counts / max(len(pred), 1), min_share)
    lo, hi = bootstrap_interval(2 * point_kl - float(np.median(kls)), kls, level, floor=0.0) if len(kls) else (math.nan, math.nan)
    if len(modes) >= 2:
        m_lo, m_hi = np.quantile(modes, (1 - level) / 2, method="lower"), np.quantile(modes, (1 + level) / 2, method="higher")
        m_hi = max(m_hi, _possible_classes(counts, min_share, level))
    else:
        m_lo = m_hi = np.nan
    return {"class_kl_ci_low": lo, "class_kl_ci_high": hi,  # a KL is never below 0
            "modes_ci_low": float(m_lo), "modes_ci_high": float(m_hi)}


def _possible_classes(counts: np.ndarray, min_share: float, level: float) -> int:
    """Classes whose share may be ``min_share`` or more: the exact one-sided (Clopper-Pearson) upper bound of each
    class's share, at (1 + level) / 2 as the interval's upper end, reaches it (for a class unseen in N samples,
    1 − ((1 − level) / 2)^(1/N): N ≤ 182 at 2 %)."""
    from scipy.stats import beta

    n = int(counts.sum())
    if n == 0:
        return 0
    upper = np.where(counts >= n, 1.0, beta.ppf((1 + level) / 2, counts + 1, np.maximum(n - counts, 1)))
    return int((upper >= min_share).sum())
