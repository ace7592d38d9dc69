"""Metric parity with torch-fidelity on identical inputs, and metric edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from ganeval.feature_stats import FeatureStats
from ganeval.metrics.fid import FIDReference, bootstrap_fid, frechet_distance
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.kid import kid
from ganeval.metrics.modes import mode_metrics
from ganeval.metrics.prc import precision_recall
from ganeval.ranking import bootstrap_interval


def _feats(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return (rng.standard_normal((n, d)) @ mix) * scale + shift


@pytest.mark.parametrize("d,n,cholesky", [(64, 500, True), (512, 1200, True), (512, 300, False)])
def test_fid_matches_torch_fidelity(d: int, n: int, cholesky: bool) -> None:
    """Both factor paths: Cholesky (full-rank reference) and symmetric √Σr (n < d, singular reference)."""
    a, b = _feats(n, d, 1), _feats(n, d, 2, 1.3, 0.1)
    s1 = {"mu": a.mean(0), "sigma": np.cov(a, rowvar=False)}
    s2 = {"mu": b.mean(0), "sigma": np.cov(b, rowvar=False)}
    theirs = fid_statistics_to_metric(s2, s1, verbose=False)["frechet_inception_distance"]
    ref = FIDReference(s1["mu"], s1["sigma"])
    assert ref.triangular is cholesky
    ours = ref.fid(s2["mu"], s2["sigma"])
    assert abs(ours - theirs) / abs(theirs) <= 1e-6
    assert frechet_distance(s2["mu"], s2["sigma"], s1["mu"], s1["sigma"]) == pytest.approx(ours, rel=1e-9)


def test_fid_identical_is_zero_and_nonfinite_is_inf() -> None:
    a = _feats(400, 32, 3)
    mu, sigma = a.mean(0), np.cov(a, rowvar=False)
    ref = FIDReference(mu, sigma)
    assert abs(ref.fid(mu, sigma)) < 1e-8
    bad = sigma.copy()
    bad[0, 0] = np.nan
    assert ref.fid(mu, bad) == float("inf")


def test_feature_stats_streaming_equals_numpy() -> None:
    a = _feats(333, 48, 4)
    acc = FeatureStats(48)
    for chunk in np.array_split(a, 7):
        acc.update(torch.from_numpy(chunk).float())
    ref = a.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(acc.mean, ref.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(acc.cov, np.cov(ref, rowvar=False), rtol=1e-10, atol=1e-12)
    other = FeatureStats(48)
    other.update(torch.from_numpy(a[:10]).float())
    acc.merge(other)
    assert acc.n == 343


def test_feature_stats_keep_the_covariance_of_features_with_a_large_mean() -> None:
    """Mean 1e6, sd 1: raw sums (Σxxᵀ − N μμᵀ) cancelled all but ~3 digits of the covariance (2e-3 relative error);
    sums about the first batch's mean match numpy's centred covariance to ~1e-10, streamed and merged alike."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(3000, 16)) @ rng.normal(size=(16, 16)) / 4 + 1e6 + rng.normal(size=16) * 1e3
    want_mu, want_cov = a.mean(0), np.cov(a, rowvar=False)
    left, right = FeatureStats(16), FeatureStats(16)
    for chunk in np.array_split(a[:1700], 5):
        left.update(torch.from_numpy(chunk))
    for chunk in np.array_split(a[1700:], 3):
        right.update(torch.from_numpy(chunk) + 0)  # its own shift: the second part's first batch
    whole = FeatureStats(16)
    whole.merge(left)  # an empty accumulator takes the other's rows (and shift)
    whole.merge(right)
    for acc in (whole, left):
        rows = a if acc is whole else a[:1700]
        assert acc.n == len(rows)
        np.testing.assert_allclose(acc.mean, rows.mean(0), rtol=1e-14, atol=0)
        got, want = acc.cov, np.cov(rows, rowvar=False)
        assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max(), np.abs(got - want).max() / np.abs(want).max()
    np.testing.assert_allclose(whole.mean, want_mu, rtol=1e-14, atol=0)
    assert right.n == 1300 and np.abs(whole.cov - want_cov).max() <= 1e-10 * np.abs(want_cov).max()


def test_inception_score_matches_torch_fidelity() -> None:
    logits = torch.from_numpy(_feats(1000, 10, 5, 3.0)).float()
    theirs = isc_features_to_metric(logits, splits=10)
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    assert std == pytest.approx(theirs["inception_score_std"], rel=1e-6)


def test_kid_matches_torch_fidelity() -> None:
    g = torch.from_numpy(_feats(300, 64, 6, 1.1)).float()
    r = torch.from_numpy(_feats(300, 64, 7)).float()
    theirs = kid_features_to_metric(g, r, kid_subsets=20, kid_subset_size=100, kid_kernel="poly", kid_kernel_poly_degree=3,
                                    kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=2020, verbose=False)
    mean, std = kid(g, r, subsets=20, subset_size=100)
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-6)


def test_precision_recall_matches_torch_fidelity() -> None:
    g = torch.from_numpy(_feats(400, 32, 8, 1.4, 0.3)).float()
    r = torch.from_numpy(_feats(500, 32, 9)).float()
    theirs = prc_features_to_metric(g, r, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    p, rec = precision_recall(g, r, k=3)
    assert p == pytest.approx(theirs["precision"], abs=1e-6)
    assert rec == pytest.approx(theirs["recall"], abs=1e-6)
    assert 0 < p < 1 and 0 < rec < 1


def test_mode_metrics() -> None:
    one_class = torch.zeros(100, 10)
    one_class[:, 7] = 5.0
    m = mode_metrics(one_class)
    assert m["modes_covered"] == 1 and m["class_kl"] == pytest.approx(np.log(10))
    uniform = torch.eye(10).repeat(10, 1) * 5
    m = mode_metrics(uniform)
    assert m["modes_covered"] == 10 and m["class_kl"] == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_replicates_and_bootstrap_interval() -> None:
    real = _feats(2000, 16, 10)
    ref = FIDReference(real.mean(0), np.cov(real, rowvar=False))
    gen = torch.from_numpy(_feats(800, 16, 11, 1.2, 0.2))
    rng = np.random.default_rng(0)
    idx = [rng.integers(0, 800, 800) for _ in range(60)]
    reps = bootstrap_fid(gen, ref, idx)
    # the identity resample reproduces the plain estimate
    point = ref.fid(gen.numpy().mean(0), np.cov(gen.numpy(), rowvar=False))
    assert bootstrap_fid(gen, ref, [np.arange(800)])[0] == pytest.approx(point, rel=1e-9)
    lo, hi = bootstrap_interval(point, reps)
    assert lo < point < hi
    assert np.isnan(bootstrap_interval(float("inf"), reps)[0])


def test_small_bootstrap_uses_one_thread_and_restores_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import ganeval.metrics.fid as fid_mod

    real = _feats(400, 16, 12)
    ref = FIDReference(real.mean(0), np.cov(real, rowvar=False))
    gen = torch.from_numpy(_feats(200, 16, 13, 1.1, 0.1))
    idx = [np.random.default_rng(2).integers(0, 200, 200) for _ in range(3)]
    seen: list[int] = []
    inner = fid_mod._bootstrap_fid
    monkeypatch.setattr(fid_mod, "_bootstrap_fid", lambda *a: (seen.append(torch.get_num_threads()), inner(*a))[1])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = bootstrap_fid(gen, ref, idx)
        monkeypatch.setattr(fid_mod, "SINGLE_THREAD_MAX_DIM", 8)  # 16-d is now "large": threads left alone
        two = bootstrap_fid(gen, ref, idx)
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(one, two, rtol=1e-10)


@pytest.mark.parametrize("n,d,full_rank", [(300, 64, True), (100, 64, True), (500, 512, True), (200, 512, False)])
def test_bootstrap_fid_equals_fid_of_each_resample(n: int, d: int, full_rank: bool) -> None:
    """The Gram-matrix replicate equals the plain FID of the resampled features (both factor paths)."""
    real = _feats(2 * d if full_rank else d // 2, d, 20)
    ref = FIDReference(real.mean(0), np.cov(real, rowvar=False))
    assert ref.triangular is full_rank
    gen = _feats(n, d, 21, 1.1, 0.1)
    rng = np.random.default_rng(1)
    idx = [rng.integers(0, n, n) for _ in range(5)]
    reps = bootstrap_fid(torch.from_numpy(gen), ref, idx)
    # A singular Σr, or a singular Σg (n ≤ d: the resample's covariance has rank < d): √ of the round-off-sized
    # eigenvalues of its null space differs between the two orders of computation (numpy 2.4.6 / scipy-openblas
    # 0.3.31: 1.0e-8 relative at n = 500, d = 512).
    tol = 1e-8 if full_rank and n > d else 1e-7
    for r, i in zip(reps, idx, strict=True):
        s = gen[i]
        assert r == pytest.approx(ref.fid(s.mean(0), np.cov(s, rowvar=False)), rel=tol)


@pytest.mark.parametrize("extractor", ["inception", "inception-clean", "mnist"])
def test_fd_of_identical_statistics_is_never_negative(extractor: str) -> None:
    """FD(s, s) of the shipped statistics was -9e-13 (float64 round-off of tr Σ + tr Σ - 2 tr √(Σ Σ)): a negative
    distance in reports. Round-off below 0 is now 0; bootstrap replicates of one resample equal to the whole too."""
    from ganeval.stats import load_stats, stats_path

    s = load_stats(stats_path("mnist-train", extractor))
    fd = frechet_distance(s.mu, s.sigma, s.mu, s.sigma)
    assert 0 <= fd < 1e-9
    x = torch.from_numpy(_feats(300, 16, seed=3))
    ref = FIDReference(x.double().mean(0).numpy(), np.cov(x.numpy(), rowvar=False))
    reps = bootstrap_fid(x, ref, [np.arange(300)] * 3)
    assert (reps >= 0).all() and (reps < 1e-9).all()


@pytest.mark.parametrize("n,d", [(20, 128), (50, 128), (100, 2048)])
def test_fd_of_fewer_samples_than_features_is_exact_given_the_counts(n: int, d: int) -> None:
    """N < D: the covariances' null directions held round-off whose square roots (√(ε‖Σ‖) each) added up to a
    negative FD of identical statistics (-7e-4 at N = 100, D = 2048), outside its own bootstrap interval. Given the
    sample counts, only the N - 1 eigenvalues that can be nonzero are summed."""
    x = _feats(n, d, 30)
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    assert FIDReference(mu, sigma).fid(mu, sigma) < -1e-7  # without the counts: the round-off shows
    for fd in (FIDReference(mu, sigma, n).fid(mu, sigma), FIDReference(mu, sigma).fid(mu, sigma, n),
               frechet_distance(mu, sigma, mu, sigma, n, n)):
        assert 0 <= fd < 1e-9
    reps = bootstrap_fid(torch.from_numpy(x), FIDReference(mu, sigma, n), [np.arange(n)] * 2)
    assert (reps >= 0).all() and (reps < 1e-9).all()
    # two different sets: the counts change nothing but the round-off (scipy's sqrtm as the reference)
    import scipy.linalg

    y = _feats(n, d, 31, 1.2, 0.1)
    mu_y, sigma_y = y.mean(0), np.cov(y, rowvar=False)
    exact = float(((mu - mu_y) ** 2).sum() + np.trace(sigma) + np.trace(sigma_y)
                  - 2 * np.trace(scipy.linalg.sqrtm(sigma @ sigma_y)).real)
    assert FIDReference(mu, sigma, n).fid(mu_y, sigma_y, n) == pytest.approx(exact, rel=1e-6)


def test_a_reference_count_its_covariance_contradicts_is_not_used() -> None:
    """A count below the covariance's rank (e.g. mistyped at import) would drop real eigenvalues: it is ignored."""
    x = _feats(100, 128, 32)
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    assert FIDReference(mu, sigma, 100).rank == 99
    assert FIDReference(mu, sigma, 10).rank is None  # 99 eigenvalues are not round-off
    full = _feats(400, 128, 33)
    assert FIDReference(full.mean(0), np.cov(full, rowvar=False), 400).rank is None  # positive definite: no bound
    y = _feats(100, 128, 34)
    assert FIDReference(mu, sigma, 10).fid(y.mean(0), np.cov(y, rowvar=False)) == pytest.approx(
        FIDReference(mu, sigma).fid(y.mean(0), np.cov(y, rowvar=False)), rel=1e-12)


def test_fd_of_one_feature_is_the_gaussian_formula() -> None:
    """D = 1: np.cov and torch.cov give a 0-d covariance, which crashed the distance (custom_fd of a network
    with one output)."""
    a, b = _feats(500, 1, 35), _feats(400, 1, 36, 2.0, 1.0)
    ma, mb, va, vb = a.mean(), b.mean(), a.var(ddof=1), b.var(ddof=1)
    exact = (ma - mb) ** 2 + va + vb - 2 * np.sqrt(va * vb)
    assert frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)) == pytest.approx(exact, rel=1e-12)
    t = torch.from_numpy(b)
    assert FIDReference(a.mean(0), np.cov(a, rowvar=False)).fid(t.mean(0).numpy(), torch.cov(t.T).numpy(), 400) == \
        pytest.approx(exact, rel=1e-12)


def test_a_reference_stored_in_float32_keeps_its_rank_bound(tmp_path) -> None:
    """Statistics files hold Σ in float32, whose rounding leaves about 4e-8 of the eigenvalue mass beyond rank n - 1:
    a float64 slack reset the bound, and the FD against a small reference kept its round-off (1.3e-4 relative)."""
    from ganeval.stats import RefStats, load_stats, save_stats

    x = np.maximum(_feats(100, 512, 40), 0) * 3
    save_stats(tmp_path / "r_custom.npz", RefStats(x.mean(0), np.cov(x, rowvar=False), {"n": 100}))
    stored = load_stats(tmp_path / "r_custom.npz")
    ref = FIDReference(stored.mu, stored.sigma, stored.meta["n"])
    assert ref.rank == 99
    y = np.maximum(_feats(600, 512, 41), 0) * 3  # more samples than the reference: its bound is the one that counts
    import scipy.linalg

    sigma, sigma_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)  # the reference's covariance before float32
    exact = float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(sigma) + np.trace(sigma_y)
                  - 2 * np.trace(scipy.linalg.sqrtm(sigma @ sigma_y)).real)
    with_bound, without = ref.fid(y.mean(0), sigma_y, 600), FIDReference(stored.mu, stored.sigma).fid(y.mean(0), sigma_y, 600)
    assert with_bound == pytest.approx(exact, rel=1e-6)  # float32's rounding of the rank-99 part only
    assert abs(without - exact) > 30 * abs(with_bound - exact)  # the null directions' rounding, √-summed
