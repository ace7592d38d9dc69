"""The data-copying test (Meehan et al. 2020): its U statistic and C_T against independent computations, its
behaviour on copies / fresh samples / underfit samples, and end to end on real MNIST pixels (a "generator" that
returns training images is flagged; one that returns unseen real images is not)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from ganeval.evaluate import score
from ganeval.metrics.copying import assign_cells, copying_test, kmeans, mann_whitney_z, nn_distance
from ganeval.stats import dataset_images


def _mixture(n: int, gen: torch.Generator, d: int = 16, spread: float = 1.0) -> torch.Tensor:
    centres = torch.randn(8, d, generator=torch.Generator().manual_seed(1)) * 4
    return centres[torch.randint(8, (n,), generator=gen)] + spread * torch.randn(n, d, generator=gen)


@pytest.fixture(scope="module")
def sets() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {"train": _mixture(6000, g), "heldout": _mixture(2000, g), "fresh": _mixture(2000, g),
            "wide": _mixture(2000, g, spread=1.5)}


def test_mann_whitney_z_equals_scipy_u_and_pair_count() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.gamma(2.0, size=300), rng.gamma(2.2, size=500)
    a[:20] = b[:20]  # ties count half
    m, n = len(a), len(b)
    pairs = float((a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum())
    u_scipy = float(mannwhitneyu(a, b, alternative="less").statistic)
    assert pairs == pytest.approx(u_scipy)
    expected = (pairs - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12)
    assert mann_whitney_z(a, b) == pytest.approx(expected, abs=1e-12)
    assert mann_whitney_z(b * 0 + 100, b) > 20 and mann_whitney_z(a * 0, b) < -20


def test_ct_equals_a_direct_computation(sets: dict[str, torch.Tensor]) -> None:
    """C_T from the module equals the definition computed here with numpy brute force and scipy, on the same cells."""
    train, heldout, gen = sets["train"], sets["heldout"], sets["wide"][:700]
    centroids = kmeans(train, 12, seed=3)
    got = copying_test(gen, heldout, train, centroids=centroids, min_samples=60)
    tr, he, ge, c = (x.double().numpy() for x in (train, heldout, gen, centroids))
    cell = {k: ((v[:, None, :] - c[None]) ** 2).sum(-1).argmin(1) for k, v in (("t", tr), ("p", he), ("q", ge))}
    num = den = 0.0
    used = 0
    for i in range(len(c)):
        q, p, t = ge[cell["q"] == i], he[cell["p"] == i], tr[cell["t"] == i]
        if len(q) <= 60 or not len(p):
            continue
        lq = np.sqrt(((q[:, None] - t[None]) ** 2).sum(-1)).min(1)
        lp = np.sqrt(((p[:, None] - t[None]) ** 2).sum(-1)).min(1)
        u = mannwhitneyu(lq, lp, alternative="less").statistic
        z = (u - (len(q) * len(p) / 2 - 0.5)) / math.sqrt(len(q) * len(p) * (len(q) + len(p) + 1) / 12)
        w = len(p) / len(he)
        num, den, used = num + w * z, den + w, used + 1
    assert used == got["copying_cells"] and 0 < used < 12  # some cells are left out: the threshold is exercised
    assert got["copying_ct"] == pytest.approx(num / den, abs=1e-4)
    lq_all = np.sqrt(((ge[:, None] - tr[None]) ** 2).sum(-1)).min(1)
    lp_all = np.sqrt(((he[:, None] - tr[None]) ** 2).sum(-1)).min(1)
    assert got["copy_share"] == pytest.approx(float((lq_all < np.quantile(lp_all, 0.01)).mean()))


def test_copies_fresh_and_underfit_samples(sets: dict[str, torch.Tensor]) -> None:
    train, heldout = sets["train"], sets["heldout"]
    fresh = copying_test(sets["fresh"], heldout, train, cells=10)
    assert abs(fresh["copying_ct"]) < 3 and fresh["copy_share"] < 0.03
    copies = copying_test(train[:2000] + 1e-3 * torch.randn(2000, 16), heldout, train, cells=10)
    assert copies["copying_ct"] < -15 and copies["copy_share"] == 1.0
    partial = torch.cat([train[:600], sets["fresh"][:1400]])  # 30 % memorised
    part = copying_test(partial, heldout, train, cells=10)
    assert part["copying_ct"] < -3 and 0.28 < part["copy_share"] < 0.35
    wide = copying_test(sets["wide"], heldout, train, cells=10)
    assert wide["copying_ct"] > 3  # farther from the training points than held-out data: underfitting, not copying


def test_kmeans_is_deterministic_and_finds_separated_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    x = centres.repeat_interleave(250, 0) + 0.5 * torch.randn(1000, 2, generator=g)
    a, b = kmeans(x, 4, seed=5), kmeans(x, 4, seed=5)
    assert torch.equal(a, b)
    found = a[assign_cells(centres, a)]
    assert torch.allclose(found, centres, atol=0.2)
    assert len(set(assign_cells(x, a).tolist())) == 4
    assert torch.allclose(nn_distance(x[:5], x), torch.zeros(5), atol=1e-3)


def test_the_nearest_samples_panel_fits_no_cells_and_the_test_fits_them_once(sets: dict[str, torch.Tensor],
                                                                              monkeypatch) -> None:
    """``closest`` (the report's panel, all a run with cached values needs) reads distances only; the first ``test``
    fits the k-means cells, later ones reuse them, and the values are those of a reference built with its cells."""
    import ganeval.metrics.copying as copying

    fits = []
    monkeypatch.setattr(copying, "kmeans", lambda *a, **k: fits.append(1) or kmeans(*a, **k))
    train, heldout, gen = sets["train"], sets["heldout"], sets["fresh"]
    ref = copying.CopyingReference(heldout, train, cells=10, seed=4)
    near = ref.closest(gen, 20)
    assert ref.closest(None, 20) and not fits
    d = torch.cdist(gen, train).min(1).values
    assert near == torch.argsort(d, stable=True)[:20].tolist()
    first, again = ref.test(gen), ref.test(sets["wide"])
    assert len(fits) == 1 and first == copying_test(gen, heldout, train, cells=10, seed=4)
    assert again == copying_test(sets["wide"], heldout, train, centroids=ref.centroids)


# -- end to end on real MNIST pixels ------------------------------------------------------------------------------------
def _npz(path: Path, images: np.ndarray) -> Path:
    np.savez(path, images=images)
    return path


OPTS = dict(metrics=("mnist_fd", "copying"), bootstrap=0, device="cpu", progress=False, copy_cells=10)


@pytest.mark.usefixtures("own_cache")
def test_score_flags_memorised_training_images_only(tmp_path: Path, mnist_dir: Path, cli) -> None:
    """Own training/held-out sets: training images as samples are flagged (and fail the gate); unseen real images
    are not. Changing the held-out set recomputes the metric instead of reusing the cached value."""
    train_px, test_px = dataset_images("mnist-train")[:6000], dataset_images("mnist-test")
    train = _npz(tmp_path / "train.npz", train_px)
    held = _npz(tmp_path / "held.npz", test_px[:1500])
    copies = _npz(tmp_path / "copies.npz", train_px[:1500])
    unseen = _npz(tmp_path / "unseen.npz", test_px[1500:3000])
    opts = dict(OPTS, num_samples=1500, copy_train=str(train), copy_heldout=str(held))
    df = score([copies, unseen], **opts)
    ct = dict(zip(df["checkpoint"], df["copying_ct"], strict=True))
    assert ct["copies.npz"] < -10 and abs(ct["unseen.npz"]) < 3
    assert df.set_index("checkpoint").loc["copies.npz", "copy_share"] > 0.9
    assert df["data_copying"].tolist() == [True, False]
    summary = df.attrs["summary"]
    assert summary["data_copying"]["checkpoints"] == ["copies.npz"]
    assert "Data copying" in summary["verdict"] and "copies.npz" in summary["verdict"]

    other = _npz(tmp_path / "held2.npz", test_px[3000:4500])
    again = score([copies, unseen], **dict(opts, copy_heldout=str(other)))
    assert again["copying_ct"].tolist() != df["copying_ct"].tolist()  # another held-out set: not a cache hit

    code, out, _ = cli("gate", copies, "--min-copying-ct", "-3", "--metrics", "mnist_fd", "copying", "--num-samples", "1500",
                       "--bootstrap", "0", "--device", "cpu", "--copy-train", train, "--copy-heldout", held,
                       "--copy-cells", "10", "--out", tmp_path / "gate_report")
    assert code == 1 and "FAIL min_copying_ct" in out
    code, out, _ = cli("gate", tmp_path / "gate_report", "--min-copying-ct", "-30")
    assert code == 0 and "PASS min_copying_ct" in out
    html = (tmp_path / "gate_report" / "report.html").read_text()
    assert "Data copying" in html and "data copying" in html
    assert "Nearest training images" in html and "exact copies 20 of 20" in html  # the panel: every sample is a copy


def test_nearest_images_and_the_paired_panel(mnist_dir: Path) -> None:
    from ganeval.nearest import nearest_images, report_neighbours
    from ganeval.report.neighbours import paired_rows

    train, test = dataset_images("mnist-train")[:5000], dataset_images("mnist-test")[:12]
    nb = nearest_images(train[[7, 4999, 0]], train)
    assert nb.distances.tolist() == [0.0, 0.0, 0.0] and np.array_equal(nb.images, train[[7, 4999, 0]])
    honest = nearest_images(test, train)
    flat = (train.reshape(len(train), -1) / 255.0)[None] - (test.reshape(12, -1) / 255.0)[:, None]
    assert np.allclose(honest.distances, np.sqrt((flat ** 2).sum(-1)).min(1), atol=1e-5)
    assert honest.distances.min() > 1.0  # unseen digits are no copies
    rows = paired_rows(test, honest.images, cols=10)
    assert rows.shape == (40, 28, 28) and np.array_equal(rows[10:20], honest.images[:10])
    assert np.array_equal(rows[30:32], honest.images[10:]) and (rows[22:30] == 128).all() and (rows[32:] == 128).all()
    shown, scale = report_neighbours({"a": test[:5], "b": np.zeros((5, 32, 32), np.uint8)}, "mnist-test", "mnist-train")
    assert list(shown) == ["a"] and shown["a"].distances.tolist() == [0.0] * 5 and scale is not None and scale > 1.0
    assert np.array_equal(shown["a"].samples, test[:5])


@pytest.mark.usefixtures("own_cache")
def test_default_sets_are_the_mnist_splits(tmp_path: Path, mnist_dir: Path) -> None:
    """With an MNIST reference the test uses mnist-train (all 60,000) and mnist-test; its report says which."""
    copies = _npz(tmp_path / "copies.npz", dataset_images("mnist-train")[-1000:])
    df = score(copies, **dict(OPTS, num_samples=1000, copy_cells=50), out=tmp_path / "rep")
    assert df["copying_ct"].iloc[0] < -5 and bool(df["data_copying"].iloc[0])
    opts = json.loads((tmp_path / "rep" / "summary.json").read_text())["options"]
    assert opts["copy_cells"] == 50 and opts["copying_threshold"] == -3.0


@pytest.mark.usefixtures("own_cache")
def test_unavailable_without_sets_and_bad_sets(tmp_path: Path, mnist_dir: Path) -> None:
    from ganeval.errors import GanevalError
    from ganeval.features import get_extractor
    from ganeval.stats import compute_stats, save_stats

    px = dataset_images("mnist-test")[:400]
    real = _npz(tmp_path / "real.npz", px)
    ref = tmp_path / "ref"
    ref.mkdir()
    save_stats(ref / "own_mnist.npz", compute_stats(real, get_extractor("mnist", device="cpu"), progress=False))
    samples = _npz(tmp_path / "s.npz", dataset_images("mnist-train")[:300])
    df = score(samples, **dict(OPTS, num_samples=300, reference=str(ref)))
    assert math.isnan(df["copying_ct"].iloc[0]) and df["data_copying"].isna().iloc[0]  # unavailable: not tested, not "no"
    assert any("copying unavailable" in n and "--copy-train" in n for n in df.attrs["summary"]["notes"])
    with pytest.raises(GanevalError, match="same images"):
        score(samples, **dict(OPTS, num_samples=300, copy_train=str(real), copy_heldout=str(real)))
    with pytest.raises(GanevalError, match="no such dataset"):
        score(samples, **dict(OPTS, num_samples=300, copy_train=str(tmp_path / "missing")))
    with pytest.raises(GanevalError, match="copy-cells"):
        score(samples, **dict(OPTS, num_samples=300, copy_cells=0))


def test_report_plot_gets_a_copying_panel() -> None:
    import io

    import pandas as pd
    from PIL import Image

    from ganeval.report.plots import series_plot

    df = pd.DataFrame({"iteration": [1, 2, 3], "checkpoint": ["a", "b", "c"], "mnist_fd": [3.0, 2.0, 1.0],
                       "copying_ct": [5.0, -1.0, -4.0], "is_best": [False, False, True]})
    with_ct, without = series_plot(df), series_plot(df.drop(columns="copying_ct"))
    assert with_ct.png is not None and without.png is not None
    h_with, h_without = (Image.open(io.BytesIO(r.png)).size[1] for r in (with_ct, without))
    assert h_with > 1.4 * h_without  # a third panel
    assert not any("copying_ct" in n for n in without.notes)  # not computed: no panel and no "skipped" note


@pytest.mark.usefixtures("own_cache")
def test_inception_copying_on_your_own_sets(tmp_path: Path, mnist_dir: Path, weights: object) -> None:
    """The same test in Inception features (for domains the MNIST classifier does not know): training images as
    samples are flagged, unseen ones are not, and the gate reads the Inception column."""
    train_px, test_px = dataset_images("mnist-train")[:120], dataset_images("mnist-test")
    train = _npz(tmp_path / "train.npz", train_px)
    held = _npz(tmp_path / "held.npz", test_px[:60])
    copies = _npz(tmp_path / "copies.npz", train_px[:60])
    unseen = _npz(tmp_path / "unseen.npz", test_px[60:120])
    opts = dict(metrics=("mnist_fd", "inception_copying"), num_samples=60, bootstrap=0, device="cpu", progress=False,
                copy_cells=1, copy_train=str(train), copy_heldout=str(held))
    df = score([copies, unseen], out=tmp_path / "rep", **opts).set_index("checkpoint")
    assert df.loc["copies.npz", "inception_copying_ct"] < -8 and df.loc["copies.npz", "inception_copy_share"] == 1.0
    assert abs(df.loc["unseen.npz", "inception_copying_ct"]) < 3 and df.loc["unseen.npz", "inception_copying_cells"] == 1
    assert df["data_copying"].tolist() == [True, False]
    from ganeval.gating import gate

    res = gate(tmp_path / "rep", min_inception_copying_ct=-3, checkpoint="copies.npz")
    assert not res.passed and "inception_copying_ct" in res.lines()[1]


@pytest.mark.usefixtures("own_cache")
def test_panel_shows_the_most_copy_like_samples(tmp_path: Path, mnist_dir: Path) -> None:
    """25 memorised digits hidden at the end of 1,500 unseen ones: the first samples show no copy, but the panel
    (the samples the copying test finds nearest to the training set) shows only copies."""
    train_px, test_px = dataset_images("mnist-train")[:6000], dataset_images("mnist-test")
    train = _npz(tmp_path / "train.npz", train_px)
    held = _npz(tmp_path / "held.npz", test_px[:1500])
    mixed = _npz(tmp_path / "mixed.npz", np.concatenate([test_px[3000:4475], train_px[100:125]]))
    df = score(mixed, out=tmp_path / "rep", **dict(OPTS, num_samples=1500, copy_train=str(train), copy_heldout=str(held)))
    assert 0.015 <= df["copy_share"].iloc[0] < 0.05  # ~25 near-copies among 1,500 (plus the 1 % of honest ones)
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "exact copies 20 of 20" in html
    from ganeval.nearest import nearest_images

    assert nearest_images(test_px[3000:3030], train_px).distances.min() > 0.5  # the first 30 samples hold no copy
