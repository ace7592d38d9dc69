"""Per-checkpoint features cached by content: (checkpoint SHA-256, extractor provenance, N, seed, batch size)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganeval.cache import CACHE_READ_ERRORS, cache_dir, cache_write, discard
from ganeval.reference import REAL_SUBSET

if TYPE_CHECKING:
    from ganeval.metrics.registry import Metric
    from ganeval.options import ScoreOptions


def feature_key(source_sha: str, provenance: dict[str, Any], n: int, seed: int, z_type: str,
                batch: int | None = None) -> str:
    """Stable key of one checkpoint's features; ``batch``: a generator's batch size (noise drawn in its forward is
    seeded per batch of rows, so its samples depend on it), None for stored samples."""
    blob = json.dumps({"src": source_sha, "prov": provenance, "n": n, "seed": seed, "z": z_type, "batch": batch},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _path(key: str) -> Path:
    return cache_dir("features", create=False) / f"{key}.npz"


def _fits(pool: np.ndarray, logits: np.ndarray | None, nonfinite: np.ndarray, n: int, pool_dim: int | None,
          has_logits: bool) -> bool:
    """Whether a cached entry has the shape the extractor gives for ``n`` samples: ``(n, pool_dim)`` floats (any width
    for a network not run yet, whose width and logits are unknown), logits ``(n, L)`` exactly when the extractor has
    them, one count."""
    def rows(a: np.ndarray) -> bool:
        return a.ndim == 2 and a.shape[0] == n and a.dtype.kind == "f"

    return (rows(pool) and (pool_dim is None or pool.shape[1] == pool_dim)
            and (pool_dim is None or (logits is not None) == has_logits) and (logits is None or rows(logits))
            and nonfinite.shape == () and nonfinite.dtype.kind in "iu" and 0 <= int(nonfinite) <= n)


def load_features(key: str, n: int, pool_dim: int | None,
                  has_logits: bool) -> tuple[torch.Tensor, torch.Tensor | None, int] | None:
    """``(pool, logits, nonfinite)`` from the cache, or None: a damaged entry (truncated, empty, foreign, or of
    another shape than ``n`` samples of ``pool_dim`` features, with logits iff ``has_logits``) counts as a miss and
    is removed, so this run writes it again."""
    path = _path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            pool, nonfinite = z["pool"], z["nonfinite"]
            logits = z["logits"] if "logits" in z.files else None
    except CACHE_READ_ERRORS:
        discard(path)
        return None
    if not _fits(pool, logits, nonfinite, n, pool_dim, has_logits):
        discard(path)
        return None
    return torch.from_numpy(pool), None if logits is None else torch.from_numpy(logits), int(nonfinite)


def save_features(key: str, pool: torch.Tensor, logits: torch.Tensor | None, nonfinite: int) -> str | None:
    """Store one checkpoint's features atomically; a note if the cache could not be written (never an error)."""
    arrays = {"pool": pool.cpu().numpy(), "nonfinite": np.array(nonfinite)}
    if logits is not None:
        arrays["logits"] = logits.cpu().numpy()
    return cache_write(_path(key), lambda fh: np.savez(fh, **arrays))


def metric_key(feat_key: str, reference_sha: str, metric: str, options: dict[str, Any]) -> str:
    """Key of one metric's result on one checkpoint's features against one reference."""
    blob = json.dumps({"f": feat_key, "ref": reference_sha, "m": metric, "o": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def metric_options(o: ScoreOptions, ids: dict[str, Any], metric: Metric, with_ci: bool, shared_latents: bool,
                   real_n: int | None = None) -> dict[str, Any]:
    """Everything besides the features and the reference that one metric's cached result depends on.

    ``ids``: content identities of the copying test's sets; ``shared_latents``: the source was drawn from the run's
    latent set at full N (paired bootstrap), else its own samples are resampled; ``real_n``: how many real images
    the metric compared with (default min(N, 60,000)).
    """
    keys = {"is_splits": 10, "kid_subsets": o.kid_subsets, "kid_subset_size": o.kid_subset_size,
            "mode_min_share": o.mode_min_share, "version": 3}  # 3: FDs exact at N < D, realism's true median; 2: real
    # features keyed by precision (1 mixed them)
    given = o.as_dict() if metric.option_keys else {}
    keys.update({k: ids.get(k, given.get(k)) for k in metric.option_keys})
    if metric.needs_real:  # as many real images as samples, drawn so: a short sample set's key alone does not say N
        keys.update(real_n=min(o.num_samples, 60_000) if real_n is None else real_n, real_subset=REAL_SUBSET)
    if "bootstrap" in metric.option_keys:
        keys.update(boot_seed=o.seed + 1, **({} if shared_latents else {"boot": "own-samples"}))
    if metric.name == "modes":  # its class-KL interval's definition (values cached under an older one are a miss)
        from ganeval.metrics.modes import KL_INTERVAL

        keys.update(kl_interval=KL_INTERVAL)
    if with_ci:
        keys.update(bootstrap=o.bootstrap, boot_seed=o.seed + 1, **({} if shared_latents else {"boot": "own-samples"}))
    return keys


def load_metric(key: str) -> tuple[dict[str, float], np.ndarray | None] | None:
    """Cached metric columns (and bootstrap replicates), or None: a damaged entry counts as a miss and is removed."""
    path = cache_dir("metrics", create=False) / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            cols = json.loads(str(z["columns"]))
            reps = z["replicates"] if "replicates" in z.files else None
            return {str(k): v if isinstance(v, int) else float(v) for k, v in dict(cols).items()}, reps  # counts stay integers
    except CACHE_READ_ERRORS:
        discard(path)
        return None


def save_metric(key: str, columns: dict[str, float], replicates: np.ndarray | None) -> str | None:
    """Store one metric result atomically (JSON columns, inf/NaN kept as floats by numpy); a note if the cache
    could not be written."""
    arrays: dict[str, Any] = {"columns": np.array(json.dumps(columns))}
    if replicates is not None:
        arrays["replicates"] = np.asarray(replicates, dtype=np.float64)
    return cache_write(cache_dir("metrics", create=False) / f"{key}.npz", lambda fh: np.savez(fh, **arrays))
