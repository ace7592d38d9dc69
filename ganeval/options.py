"""The one defaults table for scoring, shared by the Python API and the CLI."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ganeval.errors import GanevalError, OptionError, require_count, require_number
from ganeval.metrics.directions import RANKABLE
from ganeval.metrics.interval import check_bootstrap
from ganeval.names import DEFAULT_METRICS, PRECISIONS

#: Inception's resize modes (``--resize``).
RESIZES = ("tf1x", "clean")
#: ``--seed`` is below this: every use of it (numpy's generators, ``torch.manual_seed(seed * 1_000_003 + dim)``,
#: ``compare``'s fresh set at seed + 1, wrapped to 0) takes the whole range.
SEED_LIMIT = 2**32
#: ``--reference``'s default: never refused as unread (a run of reference-free metrics alone reads none, and its
#: summary says so), where another reference no metric reads is.
DEFAULT_REFERENCE = "mnist-train"
#: Options with a flag of that name on the command line (the others are named as in Python).
FLAGS = ("num_samples", "batch_size", "bootstrap", "inception_top_k", "copy_cells", "threads")


@dataclass
class ScoreOptions:
    """Options of ``ganeval.score`` / ``ganeval score`` (CLI flags use the same names with dashes)."""

    num_samples: int = 10_000
    metrics: tuple[str, ...] = DEFAULT_METRICS
    reference: str = DEFAULT_REFERENCE  # read only where a metric or --real-floor needs it (_check_used)
    device: str = "auto"
    batch_size: int = 100
    seed: int = 0
    inception_top_k: int = 3
    inception_all: bool | None = None  # None: all on CUDA, top-k + last on CPU
    precision: str = "fp32"
    resize: str = "tf1x"  # Inception's resize to 299: tf1x (torch-fidelity's) or clean (clean-fid's)
    bootstrap: int = 100
    ci: float = 0.95
    primary: str | None = None  # None: fid where computed, else mnist_fd
    late_threshold: float = 0.10
    min_modes: int = 10
    max_class_kl: float = 0.1
    mode_min_share: float = 0.02
    copy_train: str | None = None  # copying test: the generator's training images (None: mnist-train with an MNIST reference)
    copy_heldout: str | None = None  # … and real images it never saw (None: mnist-test with an MNIST reference)
    copy_cells: int = 50
    copying_threshold: float = -3.0  # C_T below this flags a checkpoint as copying training images
    real_floor: str | None = None  # held-out real images scored beside the checkpoints ("auto": the other MNIST split)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    inception_weights: str | None = None
    feature_network: Any = None  # custom_* metrics: your feature network, "MODULE:NAME", "file.py:NAME" or a class
    feature_network_kwargs: Any = None  # its constructor arguments (dict or JSON object string)
    use_cache: bool = True
    threads: int | None = None  # torch intra-op CPU threads while scoring (None: torch's default, one per core)
    progress: bool = True
    keep_features: bool = False  # keep every source's features in the result (compare's permutation test)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # "fid" or "fid,kid" as well as a sequence: tuple("fid") would be ('f', 'i', 'd')
        items = self.metrics.split(",") if isinstance(self.metrics, str) else self.metrics
        items = list(items) if isinstance(items, Iterable) else [items]
        if not all(isinstance(m, str) for m in items):
            raise GanevalError(f"--metrics must be metric names, e.g. ['fid', 'mnist_fd'] or 'fid,mnist_fd' (got {self.metrics!r})")
        self.metrics = tuple(dict.fromkeys(m.strip() for m in items if m.strip()))
        python_scalars(self)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ScoreOptions:
        """Build from keyword arguments, rejecting unknown names with the list of known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise OptionError(f"unknown score option(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in kwargs.items()})  # Path → str

    def check(self, image_bytes: int = 0, stored_images: int | None = None, streamed: bool = False) -> None:
        """Refuse values no run can use, before anything is scored: one line naming the option (exit 2).
        ``image_bytes``: what each image of the largest stored sample set to score holds as read, ``stored_images``:
        how many it holds (None: at least N), ``streamed``: whether it is read batch by batch, for the memory check."""
        from ganeval.devices import resolve_device
        from ganeval.memory import check_memory
        from ganeval.metrics.registry import METRICS
        from ganeval.threads import check_threads

        if not self.metrics:
            raise GanevalError("--metrics: give at least one metric ('ganeval metrics' lists them)")
        at_least = {"num_samples": 2, "batch_size": 1, "bootstrap": 0, "inception_top_k": 0, "copy_cells": 1,
                    "kid_subsets": 1, "kid_subset_size": 2, "threads": 1, "min_modes": 0}
        for name, low in at_least.items():
            if getattr(self, name) is not None or name != "threads":
                require_count(getattr(self, name), low, f"--{name.replace('_', '-')}" if name in FLAGS else name)
        if self.threads is not None:
            check_threads(self.threads)
        check_bootstrap(self.bootstrap, self.num_samples)  # 1 replicate, or over 2 GiB of resampled indices
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or not 0 <= self.seed < SEED_LIMIT:
            raise GanevalError(f"--seed must be an integer from 0 to 2**32 - 1 = {SEED_LIMIT - 1} (got {self.seed!r})")
        require_number(self.ci, "--ci (the interval level)", "lie between 0 and 1, e.g. 0.95", lambda v: 0 < v < 1)
        require_number(self.late_threshold, "--late-threshold", "be a finite 0 or more, e.g. 0.1 for 10 %",
                       lambda v: 0 <= v < math.inf)
        require_number(self.copying_threshold, "--copying-threshold", "be a finite z-score, e.g. -3", math.isfinite)
        require_number(self.max_class_kl, "max_class_kl", "be a finite 0 or more, e.g. 0.1", lambda v: 0 <= v < math.inf)
        require_number(self.mode_min_share, "mode_min_share", "lie between 0 and 1, e.g. 0.02", lambda v: 0 <= v <= 1)
        if self.resize not in RESIZES:
            raise GanevalError(f"--resize must be one of {', '.join(RESIZES)} (got {self.resize!r})")
        for name in ("inception_all", "use_cache", "progress", "keep_features"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (value is None and name == "inception_all"):
                allowed = "True, False or None (None: every checkpoint on CUDA, top-k + last on a CPU)" \
                    if name == "inception_all" else "True or False"
                raise GanevalError(f"{name} must be {allowed} (got {value!r})")
        check_hints(self.extra)
        self._check_used()
        device = resolve_device(self.device)
        if self.precision not in PRECISIONS:
            raise GanevalError(f"--precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        z_dim = self.extra.get("z_dim")  # the latents' size, where given (a generator's file says it only when opened)
        check_memory(self.num_samples, self.bootstrap, self.metrics, self.batch_size, device,
                     inception_logits=self.inception_weights is None, resize=self.resize, precision=self.precision,
                     z_dim=z_dim if isinstance(z_dim, int) and not isinstance(z_dim, bool) and z_dim > 0 else None,
                     image_bytes=image_bytes, stored_images=stored_images, streamed=streamed)
        known = [m for m in self.metrics if m in METRICS]
        if self.primary is None and known and not {"fid", "sfid", "mnist_fd", "custom_fd"} & {c for m in known for c in METRICS[m].columns}:
            raise GanevalError(f"no Fréchet distance (fid, sfid, mnist_fd, custom_fd) among --metrics ({', '.join(self.metrics)}) to "
                               f"rank the checkpoints by: add one, or name the column to rank by with --primary "
                               f"(e.g. --primary {next((c for m in known for c in METRICS[m].columns if c in RANKABLE), 'mnist_fd')})")
        if self.primary is not None and all(m in METRICS for m in self.metrics):
            columns = [c for m in self.metrics for c in METRICS[m].columns]
            rankable = ", ".join(c for c in dict.fromkeys(columns) if c in RANKABLE)
            if self.primary not in columns:
                raise GanevalError(f"--primary {self.primary!r} is not a column of the metrics asked for "
                                   f"({', '.join(self.metrics)}); choose one of: {rankable}")
            if self.primary not in RANKABLE:
                raise GanevalError(f"--primary {self.primary}: not something to rank checkpoints by (an ideal value, "
                                   f"a spread, a label or a reading without a better side); choose one of: {rankable}")

    def _check_used(self) -> None:
        """Refuse inputs that no metric asked for reads (``--copy-train``, ``--copy-cells`` or ``--copying-threshold``
        without a copying test, ``--feature-network`` without a custom_* metric, ``--inception-weights``, ``--resize
        clean`` or ``--inception-all`` without an Inception one, ``--inception-top-k`` without a top-K plan, the
        mode-collapse limits without ``modes``, the KID subsets without a KID, a ``--reference`` other than the default
        with reference-free metrics alone and no ``--real-floor``): they were taken and ignored, and the run gave no
        sign that the images, the network, the statistics or the setting the user named played no part."""
        from ganeval.metrics.registry import INCEPTION_EXTRACTORS, METRICS

        for key, (flag, wanted) in unread_inputs(self.metrics, {f.name: getattr(self, f.name) for f in fields(self)}).items():
            if key == "inception_top_k" and self.inception_all is True and any(
                    METRICS[m].extractor in INCEPTION_EXTRACTORS for m in self.metrics):
                raise GanevalError("--inception-top-k picks the checkpoints that get Inception metrics, and "
                                   "inception_all=True gives them to every one: leave one out")
            raise GanevalError(f"{flag} is read only by {wanted}, and --metrics ({', '.join(self.metrics)}) has none: "
                               "add one, or leave it out")

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view for reports."""
        d = _plain(asdict(self))
        d["metrics"] = list(self.metrics)
        return d


def python_scalars(obj: Any) -> None:
    """Turn a dataclass's numpy scalar fields (``np.int64(200)``) into Python's: they reach json.dumps and cache keys."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, numbers.Integral) and not isinstance(value, int):
            setattr(obj, f.name, int(value))
        elif isinstance(value, numbers.Real) and not isinstance(value, int | float):
            setattr(obj, f.name, float(value))


def check_hints(extra: Any) -> None:
    """Refuse an ``extra`` that is not a dict of input hints (``z_dim``, ``output_range``, …): a misspelt key
    (``zdim``) would otherwise be ignored, and the generator read without the hint it was meant to get."""
    from ganeval.sources.base import HINT_KEYS

    if not isinstance(extra, dict):
        raise GanevalError(f"extra must be a dict of input hints, e.g. {{'z_dim': 100}} (got {extra!r})")
    unknown = sorted(map(str, set(extra) - set(HINT_KEYS)))
    if unknown:
        raise GanevalError(f"extra: unknown input hint(s) {', '.join(map(repr, unknown))}; known: {', '.join(HINT_KEYS)}")


def _plain(value: Any) -> Any:
    """``value`` for JSON: paths as strings (the API takes ``Path`` objects where the CLI passes strings), and a class
    or callable given in Python (``feature_network``, ``generator``) as its "module:qualname"."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, type) or callable(value):
        return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', type(value).__qualname__)}"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a numpy or torch scalar
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # strict JSON has no nan or inf
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)  # anything else the API was handed (a torch.dtype in generator_kwargs): its text, not a crash


#: Inputs read only by some metrics: the option, its flag, and who reads it (an extractor, "copying", or "reference":
#: a metric that compares with reference statistics, or the real-data floor, which is chosen and checked against them;
#: "modes", "kid", or "top-k": the plan that gives Inception metrics to the K best by MNIST FD plus the last).
#: Each counts as given where it differs from its default (``ScoreOptions``'): the default is never refused.
_READ_BY = {"copy_train": ("--copy-train", "copying"), "copy_heldout": ("--copy-heldout", "copying"),
            "copy_cells": ("--copy-cells", "copying"), "copying_threshold": ("--copying-threshold", "copying"),
            "feature_network": ("--feature-network", "custom"), "feature_network_kwargs": ("--feature-network-kwargs", "custom"),
            "inception_weights": ("--inception-weights", "inception"), "resize": ("--resize", "inception"),
            "inception_all": ("--inception-all", "inception"), "inception_top_k": ("--inception-top-k", "top-k"),
            "min_modes": ("min_modes", "modes"), "max_class_kl": ("max_class_kl", "modes"),
            "mode_min_share": ("mode_min_share", "modes"),
            "kid_subsets": ("kid_subsets", "kid"), "kid_subset_size": ("kid_subset_size", "kid"),
            "reference": ("--reference", "reference")}
_WANTED = {"copying": "copying or inception_copying", "custom": "a custom_* metric", "inception": "an Inception metric",
           "modes": "the modes metric (its mode-collapse flag)", "kid": "a KID metric (kid, mnist_kid, custom_kid)",
           "top-k": "an Inception metric beside mnist_fd (the K best by MNIST FD get the Inception metrics; without "
                    "mnist_fd every checkpoint does)",
           "reference": "--real-floor and the metrics that compare with reference statistics (fid, mnist_fd, kid, …; not "
                        "is, mnist_is, custom_is, modes, mnist_ppl, custom_ppl)"}


def unread_inputs(metrics: Iterable[str], options: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The options set in ``options`` that none of ``metrics`` reads: key → (its flag, the metrics that would).
    Empty where a metric is unknown (the evaluator names it). ``inception_top_k`` is read where Inception metrics
    are planned on the top K: an Inception metric, and MNIST FD to pick by (or ``inception_all=False``), and not
    ``inception_all=True`` (a CUDA device's default plan, all, still counts it as read: one command line for both)."""
    from ganeval.metrics.registry import COPYING_CT, INCEPTION_EXTRACTORS, METRICS

    metrics = list(metrics)
    if any(m not in METRICS for m in metrics):
        return {}
    readers = {METRICS[m].extractor for m in metrics} | ({"copying"} if any(m in COPYING_CT for m in metrics) else set())
    if readers & set(INCEPTION_EXTRACTORS):  # sFID's spatial features come from the same network and resize
        readers.add("inception")
    if options.get("real_floor") or any(METRICS[m].needs_reference for m in metrics):
        readers.add("reference")
    if "modes" in metrics:
        readers.add("modes")
    if any(c.endswith("kid_mean") for m in metrics for c in METRICS[m].columns):
        readers.add("kid")
    every = options.get("inception_all")
    if "inception" in readers and every is not True and (every is False or any("mnist_fd" in METRICS[m].columns
                                                                               for m in metrics)):
        readers.add("top-k")
    return {key: (flag, _WANTED[who]) for key, (flag, who) in _READ_BY.items()
            if _given(key, options.get(key)) and who not in readers}


def _given(key: str, value: Any) -> bool:
    """Whether ``value`` of option ``key`` was given: set, and other than its default (``--resize tf1x``, ``--copy-cells
    50``, the reference ``mnist-train`` count as not given)."""
    if value is None:
        return False
    default = next(f.default for f in fields(ScoreOptions) if f.name == key)
    if isinstance(value, os.PathLike | str):
        return os.fspath(value) != default
    try:
        return bool(value != default)
    except (TypeError, ValueError):  # an object that cannot be compared with it (an array): it was given
        return True


def without_unread(options: dict[str, Any], metrics: Iterable[str]) -> dict[str, Any]:
    """``options`` less the inputs none of ``metrics`` reads: for scoring the user's options on other metrics (a
    gate's baseline on FID alone, a watch's report) without having them refused as unread."""
    unread = unread_inputs(metrics, options)
    return {k: v for k, v in options.items() if k not in unread}
