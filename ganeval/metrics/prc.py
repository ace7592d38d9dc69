"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN balls in feature space, k = 3."""

from __future__ import annotations

import torch


def _kth_radius(x: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    return torch.cat([torch.cdist(c, x).kthvalue(k + 1, dim=1).values for c in x.split(batch)])


def _covered(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([(torch.cdist(q, support) <= radii).any(dim=1) for q in queries.split(batch)])


def precision_recall(gen: torch.Tensor, real: torch.Tensor, k: int = 3, batch: int = 10000) -> tuple[float, float]:
    """Precision: share of generated samples inside some real k-NN ball; recall: the converse."""
    gen, real = gen.float(), real.float()
    r_real = _kth_radius(real, k, batch)
    r_gen = _kth_radius(gen, k, batch)
    precision = _covered(gen, real, r_real, batch).float().mean().item()
    recall = _covered(real, gen, r_gen, batch).float().mean().item()
    return precision, recall
