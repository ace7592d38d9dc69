"""Density and coverage (Naeem et al. 2020) equal the authors' ``prdc`` package and behave as defined."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from prdc import compute_prdc

from ganeval.metrics.prc import density_coverage, precision_recall


def _prdc(real: torch.Tensor, gen: torch.Tensor, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        return compute_prdc(real.numpy(), gen.numpy(), nearest_k=k)


@pytest.mark.parametrize(("n_real", "n_gen", "d", "k", "shift"), [(600, 400, 16, 5, 0.0), (500, 700, 64, 3, 0.4), (300, 300, 8, 10, 1.0)])
def test_matches_prdc(n_real: int, n_gen: int, d: int, k: int, shift: float) -> None:
    g = torch.Generator().manual_seed(n_real + d)
    real = torch.randn(n_real, d, generator=g, dtype=torch.float64)
    gen = torch.randn(n_gen, d, generator=g, dtype=torch.float64) * 1.2 + shift
    want = _prdc(real, gen, k)
    density, coverage = density_coverage(gen, real, k=k, batch=128)
    assert density == pytest.approx(want["density"], abs=1e-12)
    assert coverage == pytest.approx(want["coverage"], abs=1e-12)
    precision, recall = precision_recall(gen, real, k=k, batch=128)  # closed vs open balls: equal for continuous data
    assert (precision, recall) == pytest.approx((want["precision"], want["recall"]), abs=1e-12)


def test_float32_features_agree_and_batching_does_not_matter() -> None:
    g = torch.Generator().manual_seed(7)
    real, gen = torch.randn(800, 32, generator=g), torch.randn(500, 32, generator=g) + 0.3
    whole = density_coverage(gen, real)
    assert density_coverage(gen, real, batch=37) == pytest.approx(whole, abs=1e-12)
    want = _prdc(real.double(), gen.double(), 5)
    assert whole == (want["density"], want["coverage"])  # float64 distances: exactly, from float32 features too


def test_copies_of_real_features_lie_on_ball_boundaries_and_count_outside() -> None:
    """Half the samples copy real features: each sits exactly on some balls' boundary (open balls: outside). Float32
    matrix-product distances counted ties inside; the exact, direct-difference definition and prdc do not."""
    g = torch.Generator().manual_seed(0)
    real = torch.randn(1500, 64, generator=g)
    gen = torch.cat([real[:750], torch.randn(750, 64, generator=g)])
    r64, g64 = real.double(), gen.double()
    d_rr = (r64[:, None] - r64[None]).pow(2).sum(-1).sqrt()
    radii = d_rr.sort(dim=1).values[:, 5]
    hit = (g64[:, None] - r64[None]).pow(2).sum(-1).sqrt() < radii
    exact = (int(hit.sum()) / (5 * len(gen)), float(hit.any(0).double().mean()))
    got = density_coverage(gen, real)
    assert got == pytest.approx(exact, abs=1e-15)
    want = _prdc(real, gen, 5)
    assert got == pytest.approx((want["density"], want["coverage"]), abs=1e-15)


def test_definitions_on_real_like_cases() -> None:
    g = torch.Generator().manual_seed(3)
    centers = torch.randn(10, 24, generator=g) * 4
    labels = torch.randint(0, 10, (4000,), generator=g)
    data = centers[labels] + torch.randn(4000, 24, generator=g)
    real, same = data[:2000], data[2000:]
    d_same, c_same = density_coverage(same, real)
    assert 0.85 < d_same < 1.15 and c_same > 0.9  # the same distribution: density about 1, nearly full coverage
    collapsed = same[labels[2000:] == 0]  # one mode of ten
    d_col, c_col = density_coverage(collapsed, real)
    assert c_col < 0.15 and d_col > 0.7  # samples are real-looking (density) but cover one mode only
    crowd = real[:1].repeat(500, 1) + 0.01 * torch.randn(500, 24, generator=g)  # all samples on one real point
    d_crowd, c_crowd = density_coverage(crowd, real)
    assert c_crowd < 0.02 and d_crowd > 0.0  # only the few real balls around that point
    far = same + 50.0
    assert density_coverage(far, real) == (0.0, 0.0)
    assert np.isclose(c_same, density_coverage(same, real, k=5, batch=999)[1])


def _brute_precision_recall(gen: torch.Tensor, real: torch.Tensor, k: int) -> tuple[float, float]:
    """Closed k-NN balls from float64 differences (no matrix-product expansion): the definition, O(n²·d) memory."""
    g64, r64 = gen.double(), real.double()

    def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a[:, None] - b[None]).pow(2).sum(-1).sqrt()

    r_real, r_gen = dist(r64, r64).sort(dim=1).values[:, k], dist(g64, g64).sort(dim=1).values[:, k]
    return (float((dist(g64, r64) <= r_real).any(1).double().mean()), float((dist(r64, g64) <= r_gen).any(1).double().mean()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_precision_recall_of_duplicated_real_images_do_not_depend_on_round_off(dtype: torch.dtype) -> None:
    """Every real image present k + 1 times (k-NN radius exactly 0): near-copies 1e-3 away lie outside every ball,
    exact copies on its boundary (closed balls: inside). Float32 matrix-product distances put ~0.02 of round-off on
    a zero distance and counted 60 % of the near-copies inside (0.6, 0.62), float64 input giving (0, 0)."""
    rng = np.random.default_rng(2)
    real = torch.from_numpy(np.repeat(rng.normal(size=(100, 128)) * 5 + 3, 4, 0)).to(dtype)
    near = real + 1e-3
    assert precision_recall(near, real) == (0.0, 0.0) == _brute_precision_recall(near, real, 3)
    copies = torch.cat([real[::4], near[::4]])  # half exact copies (inside their radius-0 balls), half near-copies
    assert precision_recall(copies, real) == _brute_precision_recall(copies, real, 3) == (0.5, 1.0)


@pytest.mark.parametrize("n", [1, 3])
def test_k_nn_metrics_of_at_most_k_points_are_refused_in_one_line(n: int) -> None:
    """At most k points have no k-th neighbour: each k-NN metric raises a one-line GanevalError (the evaluator reports
    the metric unavailable) where ``topk(k + 1)`` raised a RuntimeError that aborted the whole run."""
    from ganeval.errors import GanevalError
    from ganeval.metrics.realism import realism_scores

    few, many = torch.randn(n, 8), torch.randn(50, 8)
    for call, k in ((lambda: precision_recall(few, many), 3), (lambda: precision_recall(many, few), 3),
                    (lambda: density_coverage(many, few), 5), (lambda: realism_scores(many, few), 3)):
        with pytest.raises(GanevalError, match=rf"^k-NN balls with k={k} need more than {k} .*\(got {n} ") as err:
            call()
        assert "\n" not in str(err.value)
    assert precision_recall(torch.randn(4, 8), many) is not None and density_coverage(few, torch.randn(6, 8)) is not None
