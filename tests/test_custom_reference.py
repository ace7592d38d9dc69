"""Reference statistics of your own real images (``ganeval stats --dataset FOLDER|ZIP|NPZ``): the same numbers as
the named MNIST split on the same pixels, usable by ``ganeval score --reference``, and KID re-reads the images
and refuses them once they have changed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.evaluate import score
from ganeval.features import get_extractor
from ganeval.features.base import iter_batches
from ganeval.metrics.fid import frechet_distance
from ganeval.metrics.kid import kid
from ganeval.metrics.prc import density_coverage
from ganeval.stats import compute_stats, dataset_images, load_stats, real_images, save_stats

N = 300


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture
def png_folder(tmp_path: Path, mnist_dir: Path) -> Path:
    """The first N MNIST test digits as PNG files."""
    folder = tmp_path / "real"
    folder.mkdir()
    for i, im in enumerate(dataset_images("mnist-test")[:N]):
        Image.fromarray(im).save(folder / f"digit_{i}.png")
    return folder


def test_folder_zip_and_npz_give_the_named_split_statistics(png_folder: Path, tmp_path: Path) -> None:
    ex = get_extractor("mnist", device="cpu")
    named = compute_stats("mnist-test", ex, limit=N)
    zpath = tmp_path / "real.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in png_folder.iterdir():
            zf.write(p, p.name)
    npz, npy = tmp_path / "real.npz", tmp_path / "real.npy"
    np.savez(npz, images=dataset_images("mnist-test")[:N])
    np.save(npy, dataset_images("mnist-test")[:N])  # read as score reads a .npy sample set (was refused here)
    digests = set()
    for source in (png_folder, zpath, npz, npy):
        got = compute_stats(source, ex)
        assert got.meta["dataset"] == "custom" and got.meta["n"] == N and got.meta["source"] == str(source.resolve())
        assert np.array_equal(got.mu, named.mu) and np.array_equal(got.sigma, named.sigma)
        digests.add(got.meta["dataset_sha256"])
    assert len(digests) == 1  # identified by pixels, not by file format
    assert compute_stats(png_folder, ex, limit=100).meta["dataset_sha256"] not in digests


def test_cli_stats_of_a_folder_and_bad_datasets(png_folder: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "ref" / "mine_mnist.npz"
    code, _, err = cli("stats", "--dataset", png_folder, "--extractor", "mnist", "--device", "cpu", "--out", out)
    assert code == 0, err
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["dataset"] == "custom" and side["n"] == N and side["image_shape"] == [1, 28, 28]
    code, _, err = cli("stats", "--dataset", tmp_path / "missing", "--extractor", "mnist", "--out", tmp_path / "x.npz")
    assert code == 2 and "missing: no such dataset" in err and not (tmp_path / "x.npz").exists()
    floats = tmp_path / "floats.npz"
    np.savez(floats, images=np.random.default_rng(0).random((8, 28, 28)))
    code, _, err = cli("stats", "--dataset", floats, "--extractor", "mnist", "--out", tmp_path / "y.npz")
    assert code == 2 and "must be a non-empty uint8 array" in err and not (tmp_path / "y.npz").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("stats", "--dataset", empty, "--extractor", "mnist", "--out", tmp_path / "z.npz")
    assert code == 2 and "no readable images" in err
    one = tmp_path / "one.npz"
    np.savez(one, images=np.zeros((1, 28, 28), np.uint8))
    bad = [(["--dataset", one], f"{one}: 1 image(s); statistics need at least 2"),
           (["--dataset", "mnist-test", "--limit", "1"], "mnist-test: 1 image(s); statistics need at least 2"),
           (["--dataset", "mnist-test", "--limit", "0"], "--limit must be a positive number of images (got 0)"),
           (["--dataset", "mnist-test", "--limit=-5"], "--limit must be a positive number of images (got -5)"),
           (["--dataset", "mnist-test", "--batch-size", "0"], "--batch-size must be an integer of at least 1 (got 0)")]
    for args, problem in bad:
        code, _, err = cli("stats", *args, "--extractor", "mnist", "--device", "cpu", "--out", tmp_path / "w_mnist.npz")
        assert code == 2 and problem in err and err.strip().count("\n") == 0, err
        assert not (tmp_path / "w_mnist.npz").exists()


def test_score_against_your_own_reference(png_folder: Path, tmp_path: Path) -> None:
    ex = get_extractor("mnist", device="cpu")
    ref = tmp_path / "ref"
    save_stats(ref / "mine_mnist.npz", compute_stats(png_folder, ex))
    target = tmp_path / "samples.npz"
    np.savez(target, images=dataset_images("mnist-test")[N : 2 * N])
    df = score(target, reference=ref, metrics=("mnist_fd",), num_samples=N, bootstrap=0, device="cpu", progress=False)
    row = df.iloc[0]
    assert row["status"] == "ok"
    a, b = compute_stats(target, ex), load_stats(ref / "mine_mnist.npz")
    assert row["mnist_fd"] == pytest.approx(frechet_distance(a.mu, a.sigma, b.mu, b.sigma), rel=1e-4)
    prov = df.attrs["summary"]["provenance"]["mnist"]
    assert prov["reference"] == "custom" and prov["reference_n"] == N and prov["reference_source"] == str(png_folder.resolve())
    assert prov["reference_images_sha256"] == b.meta["dataset_sha256"]


def test_kid_rereads_your_images_and_refuses_changed_ones(png_folder: Path, tmp_path: Path, extractor,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ex = extractor
    n = 60
    ref = tmp_path / "ref"
    save_stats(ref / "mine_inception.npz", compute_stats(png_folder, ex, limit=n))
    target = tmp_path / "samples.npz"
    fake = dataset_images("mnist-test")[N : N + n]
    np.savez(target, images=fake)
    opts = dict(reference=ref, metrics=("fid", "kid", "dc"), num_samples=n, bootstrap=0, device="cpu", progress=False)
    row = score(target, **opts).iloc[0]
    assert row["status"] == "ok"
    real = real_images(png_folder, limit=n).images
    feats = [torch.cat([ex(b)["pool"] for b in iter_batches(x, 64)]) for x in (fake, real)]
    assert row["kid_mean"] == pytest.approx(kid(feats[0], feats[1], subset_size=n)[0], rel=1e-4, abs=1e-7)
    assert (row["density"], row["coverage"]) == pytest.approx(density_coverage(feats[0], feats[1]), abs=0.02)
    assert 0 < row["coverage"] <= 1 and row["density"] > 0
    # Change one real image: with a fresh cache KID re-reads the folder and is unavailable, with the reason.
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(png_folder / "digit_0.png")
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache2"))
    df = score(target, **opts)
    assert np.isnan(df.iloc[0]["kid_mean"]) and np.isnan(df.iloc[0]["coverage"])
    assert df.iloc[0]["fid"] == pytest.approx(row["fid"], rel=1e-6)
    notes = [n for n in df.attrs["summary"]["notes"] if n.startswith("kid unavailable")]
    assert len(notes) == 1 and "changed since the reference statistics were made" in notes[0]
    assert str(png_folder.resolve()) in notes[0]


def test_rgb_images_of_gray_digits_match_the_gray_statistics(tmp_path: Path, mnist_dir: Path) -> None:
    """RGB real images are read as RGB (the sidecar says 3 channels); the MNIST extractor's luma of R = G = B
    digits is the digit itself, so the statistics equal the grayscale ones."""
    gray = dataset_images("mnist-test")[:100]
    folder = tmp_path / "rgb"
    folder.mkdir()
    for i, im in enumerate(gray):
        Image.fromarray(np.repeat(im[..., None], 3, axis=2), "RGB").save(folder / f"{i}.png")
    ex = get_extractor("mnist", device="cpu")
    rgb, named = compute_stats(folder, ex), compute_stats("mnist-test", ex, limit=100)
    assert rgb.meta["image_shape"] == [3, 28, 28]
    np.testing.assert_allclose(rgb.mu, named.mu, rtol=0, atol=1e-5)
    np.testing.assert_allclose(rgb.sigma, named.sigma, rtol=0, atol=1e-5)


def test_no_cache_rereads_the_real_images_as_it_says(png_folder: Path, tmp_path: Path) -> None:
    """``--no-cache`` ("recompute features even when cached") still read the real images' cached features: with the
    images changed since, KID kept its value under --no-cache and was unavailable only with an empty cache, so the
    same command gave a number or none by what the cache held."""
    ref = tmp_path / "ref"
    save_stats(ref / "mine_mnist.npz", compute_stats(png_folder, get_extractor("mnist", device="cpu")))
    target = tmp_path / "samples.npz"
    np.savez(target, images=dataset_images("mnist-test")[N : 2 * N])
    opts = dict(reference=ref, metrics=("mnist_fd", "mnist_kid"), num_samples=N, bootstrap=0, device="cpu", progress=False)
    warm = score(target, **opts).iloc[0]  # the real features are cached now
    assert np.isfinite(warm["mnist_kid_mean"])
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(png_folder / "digit_0.png")
    cached = score(target, **opts).iloc[0]  # the cache is keyed by the recorded pixel SHA-256: those images' features
    assert cached["mnist_kid_mean"] == warm["mnist_kid_mean"]
    fresh = score(target, **opts, use_cache=False)
    assert np.isnan(fresh.iloc[0]["mnist_kid_mean"]) and fresh.iloc[0]["mnist_fd"] == pytest.approx(warm["mnist_fd"], rel=1e-6)
    assert any(n.startswith("mnist_kid unavailable") and "changed since the reference statistics were made" in n
               for n in fresh.attrs["summary"]["notes"]), fresh.attrs["summary"]["notes"]
