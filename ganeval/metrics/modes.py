"""Mode coverage for class-labelled domains: how the classifier's predicted classes spread over the samples."""

from __future__ import annotations

import numpy as np
import torch


def class_histogram(logits: torch.Tensor, num_classes: int = 10) -> np.ndarray:
    """Share of samples predicted as each class."""
    pred = logits.argmax(dim=1).cpu()
    return np.bincount(pred.numpy(), minlength=num_classes) / max(len(pred), 1)


def mode_metrics(logits: torch.Tensor, min_share: float = 0.02, num_classes: int = 10) -> dict[str, float]:
    """``modes_covered`` (classes with ≥ ``min_share`` of samples), ``class_kl`` (KL of the histogram from
    uniform, nats) and ``mnist_confidence`` (mean max softmax probability)."""
    hist = class_histogram(logits, num_classes)
    nz = hist > 0
    kl = float((hist[nz] * np.log(hist[nz] * num_classes)).sum())
    conf = float(logits.float().softmax(dim=1).max(dim=1).values.mean().item())
    return {"modes_covered": int((hist >= min_share).sum()), "class_kl": kl, "mnist_confidence": conf}
