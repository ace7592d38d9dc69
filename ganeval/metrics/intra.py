"""Per-class Fréchet distance for class-labelled domains ("which digit does my GAN draw worst?").

Samples and real images are both grouped by the domain classifier's predicted class, and the Fréchet distance
is taken per class in the classifier's feature space (the unconditional analogue of intra-FID, Miyato & Koyama
2018). Classes with too few samples to estimate a covariance are left out here: ``modes`` reports them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ganeval.metrics.fid import frechet_distance

#: Fewest samples (and real images) of a class for its distance to be measured.
MIN_PER_CLASS = 20


def per_class_fd(gen: torch.Tensor, gen_logits: torch.Tensor, real: torch.Tensor, real_logits: torch.Tensor,
                 num_classes: int = 10, min_count: int = MIN_PER_CLASS) -> np.ndarray:
    """Fréchet distance of each predicted class's samples to the real images of that class (NaN when either
    side has fewer than ``min_count``)."""
    g_cls, r_cls = gen_logits.argmax(1).cpu(), real_logits.argmax(1).cpu()
    g, r = gen.detach().cpu().double(), real.detach().cpu().double()
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        gc, rc = g[g_cls == c], r[r_cls == c]
        if len(gc) >= min_count and len(rc) >= min_count:
            out[c] = frechet_distance(rc.mean(0).numpy(), torch.cov(rc.T).numpy(), gc.mean(0).numpy(), torch.cov(gc.T).numpy(),
                                      len(rc), len(gc))
    return out


#: Per-class columns (``mnist_fd_digit_0`` … ``_9``): which digit got worse, checkpoint by checkpoint.
DIGIT_COLUMNS = tuple(f"mnist_fd_digit_{c}" for c in range(10))


def intra_metrics(fds: np.ndarray) -> dict[str, float]:
    """``mnist_intra_fd`` (mean over measured classes), ``mnist_worst_digit`` and its distance, how many classes
    were measured (``mnist_intra_digits``: the mean covers only those), and each class's distance (NaN when not
    measured)."""
    per_digit = {col: float(fds[c]) if c < len(fds) else math.nan for c, col in enumerate(DIGIT_COLUMNS)}
    measured = int((~np.isnan(fds)).sum())
    if not measured:
        return {"mnist_intra_fd": math.nan, "mnist_worst_digit": math.nan, "mnist_worst_digit_fd": math.nan,
                "mnist_intra_digits": 0, **per_digit}
    worst = int(np.nanargmax(fds))
    return {"mnist_intra_fd": float(np.nanmean(fds)), "mnist_worst_digit": worst, "mnist_worst_digit_fd": float(fds[worst]),
            "mnist_intra_digits": measured, **per_digit}
