"""Realism score (Kynkäänniemi et al. 2019, section 5): how deep inside the real data's k-NN manifold each sample
lies. As the authors compute it: R(g) = max over real points r of radius_k(r)² / (‖g − r‖² + 1e-5), where the real
k-NN balls with a radius above the median are left out (so real outliers cannot make an artefact look realistic).
R ≥ 1 means inside some kept ball. Per sample, it ranks samples: the report shows a checkpoint's least and most
realistic ones."""

from __future__ import annotations

import torch

from ganeval.metrics.prc import kth_radius, require_neighbours

EPS = 1e-5  # added to squared distances, as in the authors' code


def realism_scores(gen: torch.Tensor, real: torch.Tensor, k: int = 3, keep: float = 0.5, batch: int = 4096) -> torch.Tensor:
    """R of every row of ``gen`` against ``real`` (features), float32 on the CPU; balls above the ``keep`` quantile
    of the radii are left out (the authors' ``clamp_to_percentile=50``)."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    require_neighbours(k, real_images=len(real))
    gen, real = gen.float(), real.float()
    radii = kth_radius(real, k, batch)
    kept = radii <= torch.quantile(radii, keep)
    support, r2 = real[kept], radii[kept].square()
    return torch.cat([(r2 / (torch.cdist(q, support).square() + EPS)).max(dim=1).values for q in gen.split(batch)])


def realism_summary(scores: torch.Tensor) -> tuple[float, float]:
    """Median R, and the share of samples outside every kept real ball (R < 1)."""
    return float(scores.double().quantile(0.5)), float((scores < 1).float().mean())  # torch's median(): the lower middle
