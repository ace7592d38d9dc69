"""``--resize clean``: clean-fid's resize, the same network after it, statistics kept apart from the TF-1.x ones."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from cleanfid.fid import frechet_distance as cleanfid_frechet_distance
from cleanfid.resize import make_resizer

from ganeval.errors import StatsError
from ganeval.features.inception import RESIZE_MODE, InceptionExtractor
from ganeval.features.inception_weights import fid_helper_source
from ganeval.features.resize import CLEAN_RESIZE_MODE, clean_resize
from ganeval.metrics.fid import FIDReference
from ganeval.reference import reference_stats
from ganeval.stats import compute_stats, dataset_images, save_stats

CLEANFID_RESIZE = make_resizer("PIL", False, "bicubic", (299, 299))  # what cleanfid.resize.build_resizer("clean") returns


def _rgb(img: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB, as clean-fid reads every image (``Image.open(...).convert('RGB')``)."""
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


@pytest.fixture(scope="module")
def clean(weights) -> InceptionExtractor:
    return InceptionExtractor(weights, device="cpu", resize="clean")


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 3), (64, 48, 3), (512, 400, 3)])
def test_clean_resize_equals_cleanfid_bit_for_bit(shape: tuple[int, ...]) -> None:
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    want = CLEANFID_RESIZE(_rgb(img)).transpose(2, 0, 1)
    chw = torch.from_numpy(img[None] if img.ndim == 2 else img.transpose(2, 0, 1).copy())
    got = clean_resize(chw.unsqueeze(0))[0].numpy()
    assert got.dtype == np.float32 and got.shape == (chw.shape[0], 299, 299)
    assert np.array_equal(np.broadcast_to(got, want.shape), want)  # a gray image's channel equals each tiled one


def test_clean_features_equal_cleanfid_pipeline(clean: InceptionExtractor) -> None:
    """clean-fid's clean mode: its resize, then (x - 128) / 128 into the TF Inception graph (here fid-helper's
    TorchScript of it, the network clean-fid loads as ``inception-2015-12-05.pt``'s ``layers``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = torch.jit.load(str(fid_helper_source()), map_location="cpu").eval()
    gray = dataset_images("mnist-test")[:6].copy()
    color = np.random.default_rng(1).integers(0, 256, (3, 40, 36, 3), dtype=np.uint8)
    for batch, chw in ((gray, torch.from_numpy(gray).unsqueeze(1)), (color, torch.from_numpy(color.transpose(0, 3, 1, 2).copy()))):
        resized = torch.from_numpy(np.stack([CLEANFID_RESIZE(_rgb(im)).transpose(2, 0, 1) for im in batch]))
        with torch.inference_mode():
            theirs = ts((resized - 128) / 128)
        ours = clean(chw)["pool"]
        assert (ours - theirs).abs().max().item() <= 5e-5
    tf1x = InceptionExtractor(clean.weights, device="cpu")(torch.from_numpy(gray).unsqueeze(1))["pool"]
    assert (tf1x - clean(torch.from_numpy(gray).unsqueeze(1))["pool"]).abs().max().item() > 0.1  # the resize matters


def test_fid_formula_equals_cleanfid() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(600, 32)), rng.normal(0.2, 1.1, size=(500, 32))
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    assert FIDReference(mu2, s2).fid(mu1, s1) == pytest.approx(cleanfid_frechet_distance(mu1, s1, mu2, s2), rel=1e-6)


def test_clean_statistics_are_kept_apart(clean: InceptionExtractor, tmp_path: Path) -> None:
    assert (clean.stats_name, clean.provenance()["resize"]) == ("inception-clean", CLEAN_RESIZE_MODE)
    assert InceptionExtractor(clean.weights, device="cpu").provenance()["resize"] == RESIZE_MODE
    stats = compute_stats("mnist-test", clean, limit=40)
    assert stats.meta["resize"] == CLEAN_RESIZE_MODE
    save_stats(tmp_path / "ref" / "mine_inception-clean.npz", stats)
    assert reference_stats(tmp_path / "ref", clean).meta["resize"] == CLEAN_RESIZE_MODE
    # a TF-1.x statistic under the clean name (or asked for directly) is refused, naming the resize
    bad = tmp_path / "bad" / "x_inception-clean.npz"
    save_stats(bad, compute_stats("mnist-test", InceptionExtractor(clean.weights, device="cpu"), limit=40))
    with pytest.raises(StatsError, match="resize"):
        reference_stats(bad, clean)
    with pytest.raises(ValueError, match="resize"):
        InceptionExtractor(clean.weights, device="cpu", resize="lanczos")


def test_score_with_clean_resize(clean: InceptionExtractor, tmp_path: Path, cli) -> None:
    n = 48
    ref = tmp_path / "ref"
    code, _, err = cli("stats", "--dataset", "mnist-test", "--extractor", "inception-clean", "--limit", str(n),
                       "--device", "cpu", "--no-progress", "--out", str(ref / "test_inception-clean.npz"))
    assert code == 0, err
    samples = tmp_path / "samples.npz"
    fake = dataset_images("mnist-train")[:n]
    np.savez(samples, images=fake)
    out = tmp_path / "rep"
    code, _, err = cli("score", str(samples), "--reference", str(ref), "--resize", "clean", "--metrics", "fid",
                       "--num-samples", str(n), "--bootstrap", "0", "--device", "cpu", "--out", str(out))
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["inception"]["resize"] == CLEAN_RESIZE_MODE
    feats = clean(torch.from_numpy(fake).unsqueeze(1))["pool"].double()
    real = compute_stats("mnist-test", clean, limit=n)
    want = FIDReference(real.mu, real.sigma).fid(feats.mean(0).numpy(), torch.cov(feats.T).numpy())
    assert summary["rows"][0]["fid"] == pytest.approx(want, rel=1e-5)
    # the same folder without --resize clean has no TF-1.x statistics: one clear line, exit 2
    code, _, err = cli("score", str(samples), "--reference", str(ref), "--metrics", "fid", "--num-samples", str(n),
                       "--bootstrap", "0", "--device", "cpu", "--out", str(tmp_path / "rep2"))
    assert code == 2 and "_inception.npz" in err
