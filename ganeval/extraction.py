"""Generate a source's samples once and run every requested extractor on each batch (cache first)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ganeval.distributed import DistContext
from ganeval.feature_cache import feature_key, load_features, save_features
from ganeval.features.base import FeatureExtractor
from ganeval.inputs import Source
from ganeval.sampling import generate, latents

GRID_SAMPLES = 30


@dataclass
class Extracted:
    """Features per extractor name, plus the sample count with NaN/Inf and a small sample grid."""

    pool: dict[str, torch.Tensor] = field(default_factory=dict)
    logits: dict[str, torch.Tensor | None] = field(default_factory=dict)
    nonfinite: int = 0
    sha256: str = ""
    grid: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)


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
    """Features of ``n`` samples of ``source`` from the shared latent set, for each extractor."""
    gen, zdim, z_type, meta = source.load(device)
    out = Extracted(sha256=meta["sha256"], meta=meta)
    keys = out.keys = {ex.name: feature_key(out.sha256, ex.provenance(), n, seed, z_type) for ex in extractors}
    missing = []
    for ex in extractors:
        hit = load_features(keys[ex.name]) if use_cache else None
        if hit is None:
            missing.append(ex)
        else:
            out.pool[ex.name], out.logits[ex.name], out.nonfinite = hit
    z_grid = latents(n, zdim, seed, 0, min(GRID_SAMPLES, n), z_type)
    out.grid = next(generate(gen, z_grid, GRID_SAMPLES, device)).images[:, 0].cpu().numpy()
    if not missing:
        return out
    z = latents(n, zdim, seed, z_type=z_type)
    n_batches = math.ceil(n / batch_size)
    pools: dict[str, dict[int, torch.Tensor]] = {ex.name: {} for ex in missing}
    logits: dict[str, dict[int, torch.Tensor]] = {ex.name: {} for ex in missing}
    bad: dict[int, torch.Tensor] = {}
    for b in dist.my_batches(n_batches):
        batch = next(generate(gen, z[b * batch_size : (b + 1) * batch_size], batch_size, device))
        bad[b] = torch.tensor([batch.nonfinite])
        for ex in missing:
            f = ex(batch.images)
            pools[ex.name][b] = f["pool"].cpu()
            if "logits" in f:
                logits[ex.name][b] = f["logits"].cpu()
        if progress is not None:
            progress.update(len(batch.images) * dist.world)  # type: ignore[attr-defined]
    out.nonfinite = int(torch.cat(dist.gather_batches(bad, n_batches)).sum())
    for ex in missing:
        out.pool[ex.name] = torch.cat(dist.gather_batches(pools[ex.name], n_batches))
        out.logits[ex.name] = torch.cat(dist.gather_batches(logits[ex.name], n_batches)) if ex.has_logits else None
        if use_cache and dist.is_main:
            save_features(keys[ex.name], out.pool[ex.name], out.logits[ex.name], out.nonfinite)
    return out
