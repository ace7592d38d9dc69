"""Each metric is a small registered function of one checkpoint's features (StyleGAN2-ADA style),
so the evaluator, the CLI and the docs share one table instead of ``if name == ...`` branches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from ganeval.errors import GanevalError
from ganeval.metrics.copying import DEFAULT_CELLS, CopyingReference
from ganeval.metrics.fd_infinity import fd_infinity
from ganeval.metrics.fid import FIDReference
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.interval import bootstrap_interval
from ganeval.metrics.intra import DIGIT_COLUMNS, intra_metrics, per_class_fd
from ganeval.metrics.kid import kid
from ganeval.metrics.modes import mode_intervals, mode_metrics
from ganeval.metrics.ppl import ppl_replicates
from ganeval.metrics.ppl import summarize as ppl_summary
from ganeval.metrics.prc import density_coverage, precision_recall
from ganeval.metrics.realism import realism_scores, realism_summary
from ganeval.metrics.vendi import vendi_score
from ganeval.names import DEFAULT_METRICS, METRIC_NAMES  # noqa: F401  (DEFAULT_METRICS re-exported)


@dataclass
class MetricInput:
    """What a metric may use: generated features, the reference, and real features (loaded on demand)."""

    pool: torch.Tensor
    logits: torch.Tensor | None
    #: The reference statistics; None for an extractor whose requested metrics need none (the Inception Scores, modes).
    ref: FIDReference | None
    real: Callable[[], torch.Tensor]
    options: dict[str, Any]
    #: The extractor's last layer (pool features → logits), for extractors that classify; else None.
    head: Callable[[torch.Tensor], torch.Tensor] | None = None
    #: Features (this extractor) of every image of a named real image set (an MNIST split or a path), cached.
    dataset: Callable[[str], torch.Tensor] | None = None
    #: Scratch space shared by one run's checkpoints, for series-wide work (e.g. the copying test's cells).
    memo: dict[str, Any] = field(default_factory=dict)
    #: Bootstrap resample indices (shared by every checkpoint when paired); empty without ``--bootstrap``.
    boot_idx: list[Any] = field(default_factory=list)
    #: Per-pair path lengths of the generator in this extractor's features (regenerated on demand; raises
    #: GanevalError, said in the notes, for sample sets; None where no value is wanted, the real floor).
    path_lengths: Callable[[], Any] | None = None
    #: Bootstrap replicates a metric keeps of its first column (over ``boot_idx``), for compare's paired differences.
    replicates: dict[str, Any] = field(default_factory=dict)


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
    #: Options (beyond the shared ones) its values depend on: part of its cache key.
    option_keys: tuple[str, ...] = ()
    #: Whether it compares with the reference (statistics or real images): an IS alone needs no reference statistics.
    needs_reference: bool = True


METRICS: dict[str, Metric] = {}


def register_metric(name: str, extractor: str, columns: tuple[str, ...], needs_logits: bool = False,
                    needs_real: bool = False, help: str = "", option_keys: tuple[str, ...] = (),
                    needs_reference: bool = True) -> Callable[[Callable[[MetricInput], dict[str, float]]], Metric]:
    """Decorator adding a metric function to ``METRICS``."""

    def deco(fn: Callable[[MetricInput], dict[str, float]]) -> Metric:
        metric = Metric(name, extractor, columns, fn, needs_logits, needs_real, help, option_keys, needs_reference)
        METRICS[name] = metric
        return metric

    return deco


def _fd(x: MetricInput) -> float:
    """The Fréchet distance of the samples to the reference; fewer than 2 samples have no covariance (refused: not
    the inf that marks samples holding NaN/Inf values)."""
    if len(x.pool) < 2:
        raise GanevalError(f"a Fréchet distance needs at least 2 samples (got {len(x.pool)})")
    pool = x.pool.double()
    assert x.ref is not None  # an FD needs the reference (needs_reference)
    return x.ref.fid(pool.mean(0).numpy(), torch.cov(pool.T).numpy(), len(pool))


@register_metric("fid", "inception", ("fid",), help="Fréchet Inception Distance against the reference statistics")
def _fid(x: MetricInput) -> dict[str, float]:
    return {"fid": _fd(x)}


@register_metric("sfid", "inception-spatial", ("sfid",),
                 help="spatial FID (Nash et al. 2021; guided-diffusion's sFID): Fréchet distance of the first 7 "
                      "channels of Inception's mixed_6/conv (17×17, 2,023 features) to the reference statistics: "
                      "spatial structure the pooled FID averages away")
def _sfid(x: MetricInput) -> dict[str, float]:
    return {"sfid": _fd(x)}


def _fd_inf(x: MetricInput, name: str) -> dict[str, float]:
    assert x.ref is not None
    value, slope, _, _ = fd_infinity(x.pool, x.ref, seed=int(x.options.get("seed", 0)))
    return {name: value, f"{name}_slope": slope}


@register_metric("fid_inf", "inception", ("fid_inf", "fid_inf_slope"), option_keys=("seed",),
                 help="FID∞ (Chong & Forsyth 2020): FID extrapolated to infinite N from 15 subset sizes N/2..N; "
                      "and the bias slope c of FID_N ≈ FID∞ + c/N")
def _fid_inf(x: MetricInput) -> dict[str, float]:
    return _fd_inf(x, "fid_inf")


@register_metric("mnist_fd_inf", "mnist", ("mnist_fd_inf", "mnist_fd_inf_slope"), option_keys=("seed",),
                 help="MNIST FD extrapolated to infinite N, as fid_inf")
def _mnist_fd_inf(x: MetricInput) -> dict[str, float]:
    return _fd_inf(x, "mnist_fd_inf")


# One body per computation; each extractor's registered metric names its columns (Inception's carry no prefix).
def _is_values(x: MetricInput, mean_col: str, std_col: str) -> dict[str, float]:
    assert x.logits is not None
    splits = int(x.options.get("is_splits", 10))
    if len(x.logits) < splits:  # an empty split's score is NaN, and so would the mean be, with no note saying why
        raise GanevalError(f"an Inception Score of {splits} splits needs at least {splits} samples (got {len(x.logits)})")
    mean, std = inception_score(x.logits, splits=splits)
    return {mean_col: mean, std_col: std}


def _kid_values(x: MetricInput, prefix: str) -> dict[str, float]:
    real = x.real()
    if min(len(x.pool), len(real)) < 2:  # the unbiased MMD² needs 2 points a side (kid() would return NaN, unexplained)
        raise GanevalError(f"KID needs at least 2 samples and real images (got {len(x.pool)} and {len(real)})")
    mean, std = kid(x.pool, real, x.options.get("kid_subsets", 100), x.options.get("kid_subset_size", 1000))
    return {f"{prefix}kid_mean": mean, f"{prefix}kid_std": std}


def _prc_values(x: MetricInput, prefix: str) -> dict[str, float]:
    p, r = precision_recall(x.pool, x.real(), k=x.options.get("prc_k", 3))
    return {f"{prefix}precision": p, f"{prefix}recall": r}


def _dc_values(x: MetricInput, prefix: str) -> dict[str, float]:
    density, coverage = density_coverage(x.pool, x.real(), k=x.options.get("dc_k", 5))
    return {f"{prefix}density": density, f"{prefix}coverage": coverage}


@register_metric("is", "inception", ("is_mean", "is_std"), needs_logits=True, needs_reference=False,
                 help="Inception Score, 10 splits")
def _is(x: MetricInput) -> dict[str, float]:
    return _is_values(x, "is_mean", "is_std")


@register_metric("mnist_is", "mnist", ("mnist_is", "mnist_is_std"), needs_logits=True, needs_reference=False,
                 help="MNIST-classifier Inception Score")
def _mnist_is(x: MetricInput) -> dict[str, float]:
    return _is_values(x, "mnist_is", "mnist_is_std")


@register_metric("mnist_fd", "mnist", ("mnist_fd",), help="Fréchet distance in the MNIST classifier's feature space")
def _mnist_fd(x: MetricInput) -> dict[str, float]:
    return {"mnist_fd": _fd(x)}


@register_metric("modes", "mnist", ("modes_covered", "class_kl", "mnist_confidence", "class_kl_ci_low", "class_kl_ci_high",
                                   "modes_ci_low", "modes_ci_high"), needs_logits=True, option_keys=("bootstrap", "ci"),
                 needs_reference=False,
                 help="classes holding ≥ min share of samples, KL(class histogram ‖ uniform), mean confidence; "
                      "bootstrap intervals of the first two")
def _modes(x: MetricInput) -> dict[str, float]:
    assert x.logits is not None
    share = x.options.get("mode_min_share", 0.02)
    values: dict[str, float] = dict(mode_metrics(x.logits, min_share=share))
    nan = float("nan")
    values.update(mode_intervals(x.logits, x.boot_idx, share, level=float(x.options.get("ci", 0.95))) if x.boot_idx else
                  {"class_kl_ci_low": nan, "class_kl_ci_high": nan, "modes_ci_low": nan, "modes_ci_high": nan})
    return values


@register_metric("mnist_intra", "mnist", ("mnist_intra_fd", "mnist_worst_digit", "mnist_worst_digit_fd",
                                                 "mnist_intra_digits", *DIGIT_COLUMNS), needs_logits=True,
                 needs_real=True, help="per-digit MNIST FD (samples and real images grouped by predicted digit): mean, worst digit")
def _mnist_intra(x: MetricInput) -> dict[str, float]:
    assert x.logits is not None and x.head is not None
    real = x.real()
    return intra_metrics(per_class_fd(x.pool, x.logits, real, x.head(real)))


def _vendi_values(x: MetricInput, prefix: str) -> dict[str, float]:
    real = x.real()[: len(x.pool)]
    return {f"{prefix}vendi": vendi_score(x.pool), f"{prefix}vendi_real": vendi_score(real)}


def _realism_values(x: MetricInput, prefix: str) -> dict[str, float]:
    median, outside = realism_summary(realism_scores(x.pool, x.real(), k=x.options.get("prc_k", 3)))
    return {f"{prefix}realism": median, f"{prefix}unrealistic_share": outside}


#: Column and name prefix of each extractor's variant of a metric computed alike in every feature space.
PREFIX = {"inception": "", "mnist": "mnist_", "custom": "custom_"}


def register_variants(base: str, columns: tuple[str, ...], body: Callable[[MetricInput, str], dict[str, float]],
                      helps: dict[str, str]) -> None:
    """Register ``body`` once per extractor in ``helps`` (``kid``, ``mnist_kid``, ``custom_kid``), its name and
    columns prefixed by ``PREFIX``: one computation, named per feature space, instead of a copy per space."""
    for extractor, text in helps.items():
        p = PREFIX[extractor]
        register_metric(p + base, extractor, tuple(p + c for c in columns), needs_real=True, help=text)(partial(body, prefix=p))


register_variants("kid", ("kid_mean", "kid_std"), _kid_values, {
    "inception": "Kernel Inception Distance (unbiased)",
    "mnist": "KID (unbiased, cubic kernel) in MNIST-classifier features",
    "custom": "KID (unbiased) in your network's features"})
register_variants("prc", ("precision", "recall"), _prc_values, {
    "inception": "precision/recall, k=3",
    "mnist": "precision/recall (k=3) in MNIST-classifier features: seconds on a CPU, where Inception's take minutes",
    "custom": "precision/recall (k=3) in your network's features"})
register_variants("dc", ("density", "coverage"), _dc_values, {
    "inception": "density and coverage, k=5",
    "mnist": "density and coverage (k=5) in MNIST-classifier features",
    "custom": "density and coverage (k=5) in your network's features"})
register_variants("vendi", ("vendi", "vendi_real"), _vendi_values, {
    "inception": "Vendi score (Friedman & Dieng 2023), cosine kernel on Inception features: the effective number "
                 "of distinct samples, and the same for as many real images",
    "mnist": "Vendi score on MNIST-classifier features, and the same for as many real images"})
register_variants("realism", ("realism", "unrealistic_share"), _realism_values, {
    "mnist": "realism score (Kynkäänniemi et al. 2019) of each sample in MNIST-classifier features: the median, "
             "and the share outside every real k-NN ball (R < 1); the report shows the least and most realistic",
    "inception": "realism score in Inception features, as mnist_realism"})


def _ppl_values(x: MetricInput, prefix: str) -> dict[str, float]:
    nan = float("nan")
    d = x.path_lengths() if x.path_lengths is not None else None
    if d is None:
        return {f"{prefix}ppl{c}": nan for c in ("", "_std", "_ci_low", "_ci_high")}
    got = ppl_summary(d)
    reps = ppl_replicates(d, x.boot_idx)
    lo, hi = (nan, nan) if reps is None else bootstrap_interval(got["mean"], reps, float(x.options.get("ci", 0.95)), floor=0.0)
    if reps is not None:
        x.replicates[f"{prefix}ppl"] = reps
    return {f"{prefix}ppl": got["mean"], f"{prefix}ppl_std": got["std"], f"{prefix}ppl_ci_low": lo, f"{prefix}ppl_ci_high": hi}


for _space, _what in (("mnist", "MNIST-classifier"), ("custom", "your network's")):
    _p = PREFIX[_space] + "ppl"
    register_metric(_p, _space, (_p, _p + "_std", _p + "_ci_low", _p + "_ci_high"), option_keys=("seed", "bootstrap", "ci"),
                    needs_reference=False,  # distances between the generator's own samples' features
                    help=f"perceptual path length (torch-fidelity's definition, ε=1e-4, 1–99th percentile) with squared "
                         f"L2 in {_what} features on the generator's float output, and its bootstrap interval over "
                         f"pairs; generators only")(partial(_ppl_values, prefix=PREFIX[_space]))


#: The copying test's C_T column per metric (its flag, gate and plot read these).
COPYING_CT = {"copying": "copying_ct", "inception_copying": "inception_copying_ct"}


def copying_reference(x: MetricInput, prefix: str = "") -> CopyingReference:
    """The series' copying-test reference for ``x``'s extractor (built once, kept in ``x.memo``)."""
    train_name, heldout_name = x.options.get("copy_train"), x.options.get("copy_heldout")
    if not train_name or not heldout_name or x.dataset is None:
        raise GanevalError("the copying test needs the generator's training images and held-out real images "
                           "(--copy-train, --copy-heldout; defaults mnist-train/mnist-test with an MNIST reference)")
    train, heldout = x.dataset(train_name), x.dataset(heldout_name)
    cells = int(x.options.get("copy_cells") or DEFAULT_CELLS)
    if len(train) < cells or len(heldout) < cells:
        raise GanevalError(f"the copying test needs at least {cells} training and held-out images "
                           f"(got {len(train)} and {len(heldout)}; lower --copy-cells)")
    key = f"{prefix}copying:{train_name}:{heldout_name}:{cells}"
    if key not in x.memo:
        x.memo[key] = CopyingReference(heldout, train, cells, seed=0, device=x.options.get("copy_device", "cpu"))
    return x.memo[key]


def _copying(x: MetricInput, prefix: str) -> dict[str, float]:
    return {prefix + k: v for k, v in copying_reference(x, prefix).test(x.pool).items()}


@register_metric("copying", "mnist", ("copying_ct", "copy_share", "copying_cells"),
                 help="data-copying test C_T (Meehan et al. 2020; < -3: memorised training images) and the share of "
                      "near-copies, against the training and a held-out set", option_keys=("copy_train", "copy_heldout", "copy_cells"))
def _copying_mnist(x: MetricInput) -> dict[str, float]:
    return _copying(x, "")


@register_metric("inception_copying", "inception", ("inception_copying_ct", "inception_copy_share", "inception_copying_cells"),
                 help="the copying test in Inception features (for your own domains; needs every training image's "
                      "Inception features: ~77 min for MNIST's 60,000 on a 2-core CPU)",
                 option_keys=("copy_train", "copy_heldout", "copy_cells"))
def _copying_inception(x: MetricInput) -> dict[str, float]:
    return _copying(x, "inception_")


# -- your own feature network (``--feature-network``): the Inception metrics in its space ---------------------------
@register_metric("custom_fd", "custom", ("custom_fd",), help="Fréchet distance in your feature network's space")
def _custom_fd(x: MetricInput) -> dict[str, float]:
    return {"custom_fd": _fd(x)}


@register_metric("custom_fd_inf", "custom", ("custom_fd_inf", "custom_fd_inf_slope"), option_keys=("seed",),
                 help="custom_fd extrapolated to infinite N, as fid_inf")
def _custom_fd_inf(x: MetricInput) -> dict[str, float]:
    return _fd_inf(x, "custom_fd_inf")


@register_metric("custom_is", "custom", ("custom_is", "custom_is_std"), needs_logits=True, needs_reference=False,
                 help="Inception Score from your network's logits (it must return (features, logits)), 10 splits")
def _custom_is(x: MetricInput) -> dict[str, float]:
    return _is_values(x, "custom_is", "custom_is_std")


#: The extractors that run the Inception network: its weights, resize and top-K staging (``--inception-*``) apply to them.
INCEPTION_EXTRACTORS = ("inception", "inception-spatial")
#: Which Fréchet-distance column each extractor's bootstrap interval belongs to.
FD_COLUMN = {"inception": "fid", "inception-spatial": "sfid", "mnist": "mnist_fd", "custom": "custom_fd"}
if tuple(METRICS) != METRIC_NAMES:  # the parser lists ganeval.names' before torch is imported: they must be these
    raise RuntimeError(f"ganeval.names.METRIC_NAMES is not the registry's metrics: {tuple(METRICS)}")


def table_columns(metric: Metric) -> tuple[str, ...]:
    """A metric's columns in scores.csv: its own and, for a Fréchet distance, its bootstrap interval's two."""
    first = metric.columns[0]
    return (*metric.columns, *((f"{first}_ci_low", f"{first}_ci_high") if first == FD_COLUMN.get(metric.extractor) else ()))
