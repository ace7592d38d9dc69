"""k-NN manifold metrics in feature space: improved precision and recall (Kynkäänniemi et al. 2019, k = 3) and
density and coverage (Naeem et al. 2020, k = 5), which stay meaningful when the real set has outliers."""

from __future__ import annotations

import torch


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """float32 for speed; float64 inputs stay float64 (parity tests against other implementations)."""
    return x if x.dtype == torch.float64 else x.float()


#: Most distances held at once (a chunk of rows × the other set): 400 MB in float64.
MAX_CHUNK = 50_000_000


def _rows(batch: int, other: int) -> int:
    """Rows per chunk: ``batch`` at most, fewer when a chunk against ``other`` points would pass ``MAX_CHUNK``."""
    return max(1, min(batch, MAX_CHUNK // max(other, 1)))


def kth_radius(x: torch.Tensor, k: int, batch: int = 10000) -> torch.Tensor:
    """Each point's distance to its k-th nearest neighbour in ``x`` (itself excluded): the k-NN ball radii."""
    # topk selects the same value as kthvalue, about 6x faster on a CPU (0.7 s against 4.2 s for 10,000 points)
    return torch.cat([torch.cdist(c, x).topk(k + 1, dim=1, largest=False).values[:, k] for c in x.split(_rows(batch, len(x)))])


def _covered(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([(torch.cdist(q, support) <= radii).any(dim=1) for q in queries.split(_rows(batch, len(support)))])


def precision_recall(gen: torch.Tensor, real: torch.Tensor, k: int = 3, batch: int = 10000) -> tuple[float, float]:
    """Precision: share of generated samples inside some real k-NN ball; recall: the converse."""
    gen, real = _as_float(gen), _as_float(real)
    r_real = kth_radius(real, k, batch)
    r_gen = kth_radius(gen, k, batch)
    precision = int(_covered(gen, real, r_real, batch).sum()) / len(gen)
    recall = int(_covered(real, gen, r_gen, batch).sum()) / len(real)
    return precision, recall


def _direct(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise distances ‖a_i − b_i‖ from the differences: the same bits for the same pair of vectors wherever it
    occurs (a matrix product's distances depend on the blocking around them)."""
    return (a - b).pow(2).sum(dim=1).sqrt()


#: Distances this close to a radius (relative) are recomputed exactly: far above float64's matrix-product error.
BOUNDARY = 1e-7


def density_coverage(gen: torch.Tensor, real: torch.Tensor, k: int = 5, batch: int = 10000) -> tuple[float, float]:
    """Density: how many real k-NN balls hold each generated sample, over k (1 when the distributions match, above 1
    when samples crowd dense real regions); coverage: share of real balls holding at least one generated sample.

    Balls are open (distance < radius), as in the authors' ``prdc`` package, whose numbers these equal. Exactly:
    distances are float64, and those within ``BOUNDARY`` of a radius are recomputed from the differences, so a
    sample that copies a real image (it lies on some balls' boundary) is never counted inside by round-off.
    """
    gen, real = gen.double(), real.double()
    rows = _rows(batch, len(real))
    nearest = torch.cat([torch.cdist(c, real).topk(k + 1, dim=1, largest=False).indices[:, k] for c in real.split(rows)])
    radii = _direct(real, real[nearest])
    inside = 0
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for start, q in zip(range(0, len(gen), rows), gen.split(rows), strict=True):
        d = torch.cdist(q, real)
        hit = d < radii
        i, j = torch.nonzero((d - radii).abs() <= BOUNDARY * radii, as_tuple=True)
        if len(i):
            hit[i, j] = _direct(gen[start + i], real[j]) < radii[j]
        inside += int(hit.sum())
        covered |= hit.any(dim=0)
    return inside / (k * len(gen)), int(covered.sum()) / len(real)
