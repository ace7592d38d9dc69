"""FD∞ (Chong & Forsyth 2020): on Gaussian features with a known Fréchet distance it removes most of the 1/N bias
that FD_N carries, gives about the same value at different N, and follows the authors' recipe (subset sizes,
least-squares line in 1/N read at 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganeval.errors import GanevalError
from ganeval.metrics.fd_infinity import fd_infinity, subset_sizes
from ganeval.metrics.fid import FIDReference, frechet_distance

D = 32


@pytest.fixture(scope="module")
def gaussians() -> tuple[FIDReference, float, torch.Tensor]:
    """A population reference N(0, Σr) and samples of N(μg, Σg) with the exact distance between the two."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(D, D)) / np.sqrt(D)
    sigma_r = a @ a.T + 0.5 * np.eye(D)
    b = rng.normal(size=(D, D)) / np.sqrt(D)
    sigma_g = b @ b.T + 0.8 * np.eye(D)
    mu_g = rng.normal(scale=0.1, size=D)
    truth = frechet_distance(np.zeros(D), sigma_r, mu_g, sigma_g)
    x = rng.multivariate_normal(mu_g, sigma_g, size=20_000)
    return FIDReference(np.zeros(D), sigma_r), truth, torch.from_numpy(x)


def _fd(ref: FIDReference, x: torch.Tensor) -> float:
    return ref.fid(x.mean(0).numpy(), torch.cov(x.T).numpy())


def test_fd_infinity_removes_the_bias_and_does_not_depend_on_n(gaussians: tuple[FIDReference, float, torch.Tensor]) -> None:
    """Averaged over disjoint sample sets, FD_N sits c/N above the true distance and FD∞ on it, at N = 200 and 500."""
    ref, truth, x = gaussians
    means = {}
    for n in (200, 500):
        sets = x[: 40 * n].split(n)  # 40 disjoint sample sets
        fd_n = np.mean([_fd(ref, s) for s in sets])
        fd_inf = np.mean([fd_infinity(s, ref, seed=i)[0] for i, s in enumerate(sets)])
        assert fd_n - truth > 0.5
        assert abs(fd_inf - truth) < 0.2 * (fd_n - truth), (n, fd_inf, truth, fd_n)
        means[n] = (fd_n, fd_inf)
    assert means[200][0] - means[500][0] > 1.0  # FD_N depends on N …
    assert abs(means[200][1] - means[500][1]) < 0.3  # … FD∞ does not
    value, slope, _, _ = fd_infinity(x[:1000], ref, seed=0)
    assert slope == pytest.approx((_fd(ref, x[:1000]) - value) * 1000, rel=0.5)  # c/N is the bias it removes


def test_recipe_sizes_and_line(gaussians: tuple[FIDReference, float, torch.Tensor]) -> None:
    ref, _, x = gaussians
    assert subset_sizes(10_000).tolist() == np.linspace(5000, 10_000, 15).astype(int).tolist()
    value, slope, sizes, fds = fd_infinity(x[:2000], ref, seed=3)
    assert sizes[-1] == 2000 and fds[-1] == pytest.approx(_fd(ref, x[:2000]))  # the full set at N
    design = np.stack([np.ones(len(sizes)), 1.0 / sizes], 1)
    coef = np.linalg.lstsq(design, fds, rcond=None)[0]
    assert (value, slope) == pytest.approx((coef[0], coef[1]), rel=1e-9)
    assert fd_infinity(x[:2000], ref, seed=3)[0] == value  # seeded


def test_too_few_samples_for_the_dimension(gaussians: tuple[FIDReference, float, torch.Tensor]) -> None:
    ref, _, x = gaussians
    with pytest.raises(GanevalError, match="N >= 64"):
        fd_infinity(x[:60], ref)


def test_score_reports_mnist_fd_infinity(tmp_path, monkeypatch, mnist_dir) -> None:
    """End to end: the column is filled, lies below the biased MNIST FD, and N too small for the dimension gives a
    note instead of a number."""
    from ganeval.evaluate import score

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    from pathlib import Path

    ckpt = Path(__file__).resolve().parents[1] / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
    opts = dict(metrics=("mnist_fd", "mnist_fd_inf"), bootstrap=0, device="cpu", progress=False)
    df = score(ckpt, num_samples=1000, out=tmp_path / "rep", **opts)
    row = df.iloc[0]
    assert 0 < row["mnist_fd_inf"] < row["mnist_fd"] and row["mnist_fd_inf_slope"] > 0
    assert "MNIST FD∞" in (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    small = score(ckpt, num_samples=200, **opts)
    assert np.isnan(small["mnist_fd_inf"].iloc[0])
    assert any("mnist_fd_inf unavailable" in n and "N >= 256" in n for n in small.attrs["summary"]["notes"])
