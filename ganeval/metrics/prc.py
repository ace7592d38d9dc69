"""k-NN manifold metrics in feature space: improved precision and recall (Kynkäänniemi et al. 2019, k = 3) and
density and coverage (Naeem et al. 2020, k = 5), which stay meaningful when the real set has outliers."""

from __future__ import annotations

import torch


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """float32 for speed; float64 inputs stay float64 (parity tests against other implementations)."""
    return x if x.dtype == torch.float64 else x.float()


def kth_radius(x: torch.Tensor, k: int, batch: int = 10000) -> torch.Tensor:
    """Each point's distance to its k-th nearest neighbour in ``x`` (itself excluded): the k-NN ball radii."""
    return torch.cat([torch.cdist(c, x).kthvalue(k + 1, dim=1).values for c in x.split(batch)])


def _covered(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([(torch.cdist(q, support) <= radii).any(dim=1) for q in queries.split(batch)])


def precision_recall(gen: torch.Tensor, real: torch.Tensor, k: int = 3, batch: int = 10000) -> tuple[float, float]:
    """Precision: share of generated samples inside some real k-NN ball; recall: the converse."""
    gen, real = _as_float(gen), _as_float(real)
    r_real = kth_radius(real, k, batch)
    r_gen = kth_radius(gen, k, batch)
    precision = int(_covered(gen, real, r_real, batch).sum()) / len(gen)
    recall = int(_covered(real, gen, r_gen, batch).sum()) / len(real)
    return precision, recall


def density_coverage(gen: torch.Tensor, real: torch.Tensor, k: int = 5, batch: int = 10000) -> tuple[float, float]:
    """Density: how many real k-NN balls hold each generated sample, over k (1 when the distributions match, above 1
    when samples crowd dense real regions); coverage: share of real balls holding at least one generated sample.

    Balls are open (distance < radius), as in the authors' ``prdc`` package, whose numbers these equal.
    """
    gen, real = _as_float(gen), _as_float(real)
    radii = kth_radius(real, k, batch)
    inside = 0
    covered = torch.zeros(len(real), dtype=torch.bool)
    for q in gen.split(batch):
        hit = torch.cdist(q, real) < radii
        inside += int(hit.sum())
        covered |= hit.any(dim=0)
    return inside / (k * len(gen)), int(covered.sum()) / len(real)
