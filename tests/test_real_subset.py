"""The real images behind KID, precision/recall, density/coverage, realism, Vendi and per-digit FD: a fixed seeded
uniform subset of the reference's images, not its first N (image sets are often ordered: MNIST's test split by
writer population, a folder of class subfolders by class)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from prdc import compute_prdc

from ganeval.data import load_mnist
from ganeval.evaluate import score
from ganeval.features import get_extractor
from ganeval.features.base import iter_batches
from ganeval.reference import REAL_SUBSET, real_features, real_subset
from ganeval.stats import compute_stats, dataset_images, load_stats, save_stats, stats_path

N = 300


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_the_subset_is_fixed_sorted_nested_and_spread_over_the_file() -> None:
    a, b = real_subset(60_000, 5_000), real_subset(60_000, 5_000)
    assert np.array_equal(a, b) and len(a) == 5_000 and len(np.unique(a)) == 5_000
    assert np.all(np.diff(a) > 0) and a[0] >= 0 and a[-1] < 60_000
    assert set(real_subset(60_000, 1_000)) <= set(a)  # a smaller N's real images are inside a larger N's
    assert np.array_equal(real_subset(300, 300), np.arange(300)) and np.array_equal(real_subset(300, 900), np.arange(300))
    # mnist-test's two halves come from two writer populations: a uniform draw takes about half from each
    first_half = int((real_subset(10_000, 5_000) < 5_000).sum())
    assert 2_300 < first_half < 2_700, first_half


def test_knn_metrics_of_real_digits_against_a_class_sorted_reference(tmp_path: Path) -> None:
    """A reference made from digits sorted by class: its first N are all zeros and ones, so real digits of every class
    would look unrealistic and the zeros/ones over-covered. With the uniform subset real digits score as real, and the
    values equal the authors' ``prdc`` on the features of exactly the subset named in the provenance."""
    images, labels = load_mnist("test")
    pool = np.random.default_rng(0).permutation(len(images))  # both writer populations in reference and samples
    ref_idx = pool[:2_000]
    ordered = images[ref_idx[np.argsort(labels[ref_idx], kind="stable")]]
    np.savez(tmp_path / "sorted.npz", images=ordered)
    ex = get_extractor("mnist", device="cpu")
    ref = tmp_path / "ref"
    save_stats(ref / "sorted_mnist.npz", compute_stats(tmp_path / "sorted.npz", ex, progress=False))
    samples = images[pool[2_000 : 2_000 + N]]  # real digits the reference was not made from
    np.savez(tmp_path / "samples.npz", images=samples)
    df = score(tmp_path / "samples.npz", reference=ref, num_samples=N, metrics=("mnist_fd", "mnist_prc", "mnist_dc"),
               bootstrap=0, device="cpu", progress=False, out=tmp_path / "report")
    row = df.iloc[0]
    assert row["mnist_precision"] > 0.7 and row["mnist_recall"] > 0.7 and row["mnist_coverage"] > 0.7

    def feats(x: np.ndarray) -> np.ndarray:
        return torch.cat([ex(b)["pool"].cpu() for b in iter_batches(x, 100)]).double().numpy()

    chosen = real_subset(2_000, N)
    with contextlib.redirect_stdout(io.StringIO()):
        pr = compute_prdc(feats(ordered[chosen]), feats(samples), nearest_k=3)
        first = compute_prdc(feats(ordered[:N]), feats(samples), nearest_k=3)
    assert row["mnist_precision"] == pytest.approx(pr["precision"], abs=1e-9)
    assert row["mnist_recall"] == pytest.approx(pr["recall"], abs=1e-9)
    assert first["precision"] < 0.5  # what the first N (zeros and ones) would have said of real digits
    info = df.attrs["summary"]["provenance"]["mnist"]["real_subset"]
    assert (info["n"], info["of"], info["method"]) == (N, 2_000, REAL_SUBSET)
    assert f"{N} of 2000, {REAL_SUBSET}" in (tmp_path / "report" / "report.html").read_text()
    written = json.loads((tmp_path / "report" / "summary.json").read_text())  # a Path given to the API is written as text
    assert written["options"]["reference"] == str(ref) and written["provenance"]["mnist"]["real_subset"] == info

    assert info["indices_sha256"] == hashlib.sha256(chosen.astype("<i8").tobytes()).hexdigest()


def test_features_cached_the_old_way_are_not_reused(tmp_path: Path) -> None:
    """Real features of the first N images (cached before the subset) sit under a key without the draw; they must
    never be taken for the subset's."""
    from ganeval.reference import _real_path

    ex = get_extractor("mnist", device="cpu")
    stats = load_stats(stats_path("mnist-train", "mnist"))
    old = _real_path("mnist-train", ex, N)
    old.parent.mkdir(parents=True, exist_ok=True)
    np.save(old, np.zeros((N, ex.pool_dim), np.float32))
    got = real_features(stats, ex, N)
    want = torch.cat([ex(b)["pool"].cpu() for b in iter_batches(dataset_images("mnist-train")[real_subset(60_000, N)], 100)])
    assert got.abs().sum() > 0
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_no_sample_based_metric_no_real_subset_in_the_provenance(tmp_path: Path) -> None:
    np.savez(tmp_path / "s.npz", images=dataset_images("mnist-test")[:100])
    df = score(tmp_path / "s.npz", num_samples=100, metrics=("mnist_fd",), bootstrap=0, device="cpu", progress=False)
    assert "real_subset" not in df.attrs["summary"]["provenance"]["mnist"]
    df = score(tmp_path / "s.npz", num_samples=100, metrics=("mnist_fd", "mnist_kid"), bootstrap=0, device="cpu", progress=False)
    info = df.attrs["summary"]["provenance"]["mnist"]["real_subset"]
    assert (info["n"], info["of"], info["method"]) == (100, 60_000, REAL_SUBSET)
