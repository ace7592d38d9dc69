"""Each metric is a small registered function of one checkpoint's features (StyleGAN2-ADA style),
so the evaluator, the CLI and the docs share one table instead of ``if name == ...`` branches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ganeval.metrics.fid import FIDReference
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.intra import intra_metrics, per_class_fd
from ganeval.metrics.kid import kid
from ganeval.metrics.modes import mode_metrics
from ganeval.metrics.prc import density_coverage, precision_recall


@dataclass
class MetricInput:
    """What a metric may use: generated features, the reference, and real features (loaded on demand)."""

    pool: torch.Tensor
    logits: torch.Tensor | None
    ref: FIDReference
    real: Callable[[], torch.Tensor]
    options: dict[str, Any]
    #: The extractor's last layer (pool features → logits), for extractors that classify; else None.
    head: Callable[[torch.Tensor], torch.Tensor] | None = None


@dataclass(frozen=True)
class Metric:
    """A registered metric: its extractor, the report columns it fills, and what it needs."""

    name: str
    extractor: str
    columns: tuple[str, ...]
    fn: Callable[[MetricInput], dict[str, float]]
    needs_logits: bool = False
    needs_real: bool = False
    help: str = ""


METRICS: dict[str, Metric] = {}


def register_metric(name: str, extractor: str, columns: tuple[str, ...], needs_logits: bool = False,
                    needs_real: bool = False, help: str = "") -> Callable[[Callable[[MetricInput], dict[str, float]]], Metric]:
    """Decorator adding a metric function to ``METRICS``."""

    def deco(fn: Callable[[MetricInput], dict[str, float]]) -> Metric:
        metric = Metric(name, extractor, columns, fn, needs_logits, needs_real, help)
        METRICS[name] = metric
        return metric

    return deco


def _fd(x: MetricInput) -> float:
    pool = x.pool.double()
    return x.ref.fid(pool.mean(0).numpy(), torch.cov(pool.T).numpy())


@register_metric("fid", "inception", ("fid",), help="Fréchet Inception Distance against the reference statistics")
def _fid(x: MetricInput) -> dict[str, float]:
    return {"fid": _fd(x)}


@register_metric("is", "inception", ("is_mean", "is_std"), needs_logits=True, help="Inception Score, 10 splits")
def _is(x: MetricInput) -> dict[str, float]:
    assert x.logits is not None
    mean, std = inception_score(x.logits, splits=x.options.get("is_splits", 10))
    return {"is_mean": mean, "is_std": std}


@register_metric("kid", "inception", ("kid_mean", "kid_std"), needs_real=True, help="Kernel Inception Distance (unbiased)")
def _kid(x: MetricInput) -> dict[str, float]:
    mean, std = kid(x.pool, x.real(), x.options.get("kid_subsets", 100), x.options.get("kid_subset_size", 1000))
    return {"kid_mean": mean, "kid_std": std}


@register_metric("prc", "inception", ("precision", "recall"), needs_real=True, help="precision/recall, k=3")
def _prc(x: MetricInput) -> dict[str, float]:
    p, r = precision_recall(x.pool, x.real(), k=x.options.get("prc_k", 3))
    return {"precision": p, "recall": r}


@register_metric("dc", "inception", ("density", "coverage"), needs_real=True, help="density and coverage, k=5")
def _dc(x: MetricInput) -> dict[str, float]:
    density, coverage = density_coverage(x.pool, x.real(), k=x.options.get("dc_k", 5))
    return {"density": density, "coverage": coverage}


@register_metric("mnist_is", "mnist", ("mnist_is", "mnist_is_std"), needs_logits=True, help="MNIST-classifier Inception Score")
def _mnist_is(x: MetricInput) -> dict[str, float]:
    assert x.logits is not None
    mean, std = inception_score(x.logits, splits=x.options.get("is_splits", 10))
    return {"mnist_is": mean, "mnist_is_std": std}


@register_metric("mnist_fd", "mnist", ("mnist_fd",), help="Fréchet distance in the MNIST classifier's feature space")
def _mnist_fd(x: MetricInput) -> dict[str, float]:
    return {"mnist_fd": _fd(x)}


@register_metric("modes", "mnist", ("modes_covered", "class_kl", "mnist_confidence"), needs_logits=True,
                 help="classes holding ≥ min share of samples, KL(class histogram ‖ uniform), mean confidence")
def _modes(x: MetricInput) -> dict[str, float]:
    assert x.logits is not None
    return mode_metrics(x.logits, min_share=x.options.get("mode_min_share", 0.02))


@register_metric("mnist_intra", "mnist", ("mnist_intra_fd", "mnist_worst_digit", "mnist_worst_digit_fd",
                                                 "mnist_intra_digits"), needs_logits=True,
                 needs_real=True, help="per-digit MNIST FD (samples and real images grouped by predicted digit): mean, worst digit")
def _mnist_intra(x: MetricInput) -> dict[str, float]:
    assert x.logits is not None and x.head is not None
    real = x.real()
    return intra_metrics(per_class_fd(x.pool, x.logits, real, x.head(real)))


#: Which Fréchet-distance column each extractor's bootstrap interval belongs to.
FD_COLUMN = {"inception": "fid", "mnist": "mnist_fd"}
DEFAULT_METRICS = ("fid", "is", "kid", "prc", "dc", "mnist_is", "mnist_fd", "modes", "mnist_intra")
