"""The k-NN metrics' float32 screen: float32 distance matrices with a rigorous round-off bound, every undecided pair
settled from float64 differences, so the answers equal the exact definition (``_brute``) whatever float32 does."""

from __future__ import annotations

import pytest
import torch

from ganeval.metrics import prc
from ganeval.metrics.prc import density_coverage, precision_recall


def _dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.stack([prc._direct(row.expand_as(b), b) for row in a])


def _brute(gen: torch.Tensor, real: torch.Tensor, k: int, closed: bool) -> tuple[float, float]:
    """The definitions from float64 differences, all pairs: precision/recall (closed balls) or density/coverage."""
    g, r = gen.double(), real.double()
    inside = torch.le if closed else torch.lt
    r_real = _dist(r, r).sort(dim=1).values[:, k]
    hit = inside(_dist(g, r), r_real[None])
    if not closed:
        return int(hit.sum()) / (k * len(g)), float(hit.any(0).double().mean())
    r_gen = _dist(g, g).sort(dim=1).values[:, k]
    return float(hit.any(1).double().mean()), float(inside(_dist(g, r), r_gen[:, None]).any(0).double().mean())


def _on_the_edges(seed: int, d: int = 512, n: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two real clusters far apart (large norms about their common mean, so float32 distances within a cluster are
    ~1e-3 off) and samples each 1e-6 (relative) inside or outside a real point's k = 3 ball: float32 distances cannot
    tell which, and 1e-6 is beyond ``BOUNDARY``, so only the screen's round-off bound sends them to be settled."""
    g = torch.Generator().manual_seed(seed)
    side = torch.where(torch.rand(n, 1, generator=g) < 0.5, -400.0, 400.0).double()
    real = torch.randn(n, d, generator=g, dtype=torch.float64) * 10 + side
    radii = _dist(real, real).sort(dim=1).values[:, 3]
    direction = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    scale = 1 + 1e-6 * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    gen = real + direction * (radii * scale)[:, None]
    return real, gen, radii


@pytest.mark.parametrize("seed", [0, 1])
def test_samples_within_float32_round_off_of_a_radius_are_settled_exactly(seed: int) -> None:
    real, gen, _ = _on_the_edges(seed)
    assert prc._Screen(real).dtype == torch.float32  # the fast path is the one under test
    assert precision_recall(gen, real) == _brute(gen, real, 3, closed=True)
    assert density_coverage(gen, real, k=3) == _brute(gen, real, 3, closed=False)
    assert density_coverage(gen, real, k=3, batch=17) == density_coverage(gen, real, k=3)


def test_radii_are_the_exact_kth_distances_also_with_many_near_ties() -> None:
    """Centres with 60 neighbours at distances 1e-11 (relative) apart (more than ``CANDIDATES`` within the screen's
    bound: the float64 path) and ordinary points (the screen's candidates): every radius is the exact one."""
    g = torch.Generator().manual_seed(5)
    centres = torch.randn(3, 64, generator=g, dtype=torch.float64) * 50
    around = torch.nn.functional.normalize(torch.randn(3, 60, 64, generator=g, dtype=torch.float64), dim=2)
    ring = centres[:, None] + around * (7 + 1e-11 * torch.arange(60, dtype=torch.float64))[None, :, None]
    x = torch.cat([centres, ring.reshape(-1, 64), torch.randn(300, 64, generator=g, dtype=torch.float64) * 50])
    want = _dist(x, x).sort(dim=1).values[:, 3]
    assert torch.equal(prc._radii(x, 3, batch=10000), want)
    assert torch.equal(prc._radii(x, 3, batch=50), want)


def test_without_ieee_float32_products_the_screen_is_float64_and_still_exact() -> None:
    """``set_float32_matmul_precision("medium")`` lets float32 products run in bf16, outside the screen's bound: the
    screen then works in float64 (and the setting is left as it was)."""
    real, gen, _ = _on_the_edges(2, d=128, n=120)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        assert prc._Screen(real).dtype == torch.float64
        assert precision_recall(gen, real) == _brute(gen, real, 3, closed=True)
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
