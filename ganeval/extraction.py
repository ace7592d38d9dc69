"""Read a source's samples once and run every requested extractor on each batch (cache first).

A source is opened (``Source.open``) into ``Samples`` that give global batch ``b`` (rows ``b·bs:(b+1)·bs``);
rank r of W computes batches r, r+W, …, so a distributed run sees exactly the single-process batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ganeval.distributed import DistContext, HostRows
from ganeval.feature_cache import feature_key, load_features, save_features
from ganeval.features.base import FeatureExtractor, cacheable, refuse_nonfinite, run_pass, shared_passes
from ganeval.inputs import Source
from ganeval.sources.base import Samples

GRID_SAMPLES = 30


@dataclass
class Extracted:
    """Features per extractor name, the sample count with NaN/Inf, a small sample grid, and what the source said.

    ``keys`` is empty when the source has no stable identity (never cached); ``paired``: drawn from the shared
    latent set; ``n``: samples actually scored; ``n_bad``: unreadable stored images (None for generators).
    """

    pool: dict[str, torch.Tensor] = field(default_factory=dict)
    logits: dict[str, torch.Tensor | None] = field(default_factory=dict)
    nonfinite: int = 0
    sha256: str = ""
    grid: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    n: int = 0
    paired: bool = True
    n_bad: int | None = None
    shape: tuple[int, ...] | None = None
    notes: list[str] = field(default_factory=list)


def extract(
    source: Source,
    extractors: list[FeatureExtractor],
    n: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    dist: DistContext,
    use_cache: bool = True,
    progress: object | None = None,
) -> Extracted:
    """Features of (up to) ``n`` samples of ``source`` for each extractor, in the source's fixed order.

    Under torchrun a failure on one rank (opening the source, or generating its share of the batches) fails the
    source on every rank, before any gather, so no rank waits for a peer that has given up on it.
    """
    opened: list[Samples] = []
    try:
        dist.my_share(lambda: opened.append(source.open(device, n, seed)), source.name)
        return _extract(opened[0], extractors, seed, batch_size, dist, use_cache, progress, source.name)
    finally:
        for samples in opened:
            samples.close()


IN_FLIGHT = 4  # batches whose features may still be on the device while newer ones are queued


def _to_host(b: int, pending: dict[tuple[str, str], torch.Tensor], bad: HostRows, feats: dict[tuple[str, str], HostRows]) -> None:
    """Copy batch ``b``'s features and NaN/Inf count into their host rows (waits for that batch only)."""
    bad.put(b, pending.pop(("", "bad")))
    for key, part in pending.items():
        feats[key].put(b, part)


def _extract(samples: Samples, extractors: list[FeatureExtractor], seed: int, batch_size: int, dist: DistContext,
             use_cache: bool, progress: object | None, name: str) -> Extracted:
    n = samples.n
    out = Extracted(sha256=samples.sha256 or "", meta=samples.meta, n=n, paired=samples.paired, n_bad=samples.n_bad)
    if samples.cache_key is not None:
        key_seed = seed if samples.paired else 0
        batch = batch_size if samples.paired else None  # a generator's noise drawn in forward is seeded per batch
        out.keys = {ex.name: feature_key(samples.cache_key, ex.provenance(), n, key_seed, samples.z_type, batch)
                    for ex in extractors if cacheable(ex)}
    cached = use_cache and bool(out.keys)
    n_batches = math.ceil(n / batch_size)

    def lookups() -> dict[str, tuple[torch.Tensor, torch.Tensor | None, int]]:
        out.grid = samples.grid(GRID_SAMPLES, batch_size)
        found = {ex.name: load_features(out.keys[ex.name], n, ex.pool_dim, ex.has_logits)
                 if cached and ex.name in out.keys else None for ex in extractors}
        return {k: hit for k, hit in found.items() if hit is not None}

    hits = dist.my_share(lookups, name)
    missing = []
    cache_notes: list[str] = []
    for ex in extractors:  # a hit is used only where every rank hit (a node may lack rank 0's cache files)
        if cached and dist.all_ok(ex.name in hits):
            out.pool[ex.name], out.logits[ex.name], out.nonfinite = hits[ex.name]
        else:
            missing.append(ex)
    bad = HostRows(n_batches, 1, f"{name}: NaN/Inf counts")
    feats = {(ex.name, kind): HostRows(n, batch_size, f"{name}: the {ex.name} extractor's {kind} features")
             for ex in missing for kind in ("pool", "logits")}

    def my_part() -> None:
        """This rank's share of the batches, features written into ``feats`` on the host."""
        # A batch's features and NaN/Inf count are copied to the host only once IN_FLIGHT newer batches have been
        # queued, so on a GPU the host never waits for the batch it just queued (no per-batch stall) and device
        # memory holds at most IN_FLIGHT batches of features.
        queued: list[tuple[int, dict[tuple[str, str], torch.Tensor]]] = []
        passes = shared_passes(missing)  # FID's and sFID's features from one Inception pass
        for b in dist.my_batches(n_batches) if missing else ():
            batch = samples.batch(b, batch_size)
            pending = {("", "bad"): torch.as_tensor(batch.nonfinite).reshape(1)}
            for host, riders in passes:
                for ex_name, f in run_pass(host, riders, batch.images).items():
                    pending.update({(ex_name, kind): f[kind] for kind in ("pool", "logits") if kind in f})
            queued.append((b, pending))
            if len(queued) > IN_FLIGHT:
                _to_host(*queued.pop(0), bad, feats)
            if progress is not None:
                progress.update(len(batch.images) * dist.world)  # type: ignore[attr-defined]
        for b, pending in queued:
            _to_host(b, pending, bad, feats)

    dist.my_share(my_part, name)  # a rank that failed its share fails the source on every rank
    if missing:
        out.nonfinite = int(bad.joined(dist).sum())
        for ex in missing:
            out.pool[ex.name] = feats[ex.name, "pool"].joined(dist)
            out.logits[ex.name] = feats[ex.name, "logits"].joined(dist) if ex.has_logits else None
            for kept in (out.pool[ex.name], out.logits[ex.name]):
                if kept is not None:
                    refuse_nonfinite(ex, kept, name)
            if cached and ex.name in out.keys and dist.is_main:
                unsaved = save_features(out.keys[ex.name], out.pool[ex.name], out.logits[ex.name], out.nonfinite)
                cache_notes += [unsaved] if unsaved else []
    out.shape, out.notes = samples.shape, list(samples.notes) + cache_notes
    return out
