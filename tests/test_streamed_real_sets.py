"""The copying test's own training and held-out sets given as folders or zips are read batch by batch: their
features (``reference.dataset_features``) and the nearest-training-images panel (``nearest.PixelSet``) equal those
of the same images held in an ``.npz``, and an RGB set is never decoded for the (gray-only) pixel panel."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.features import get_extractor
from ganeval.nearest import PixelSet, nearest_images, report_neighbours
from ganeval.reference import dataset_features
from ganeval.sources.image_stream import ImageStream
from ganeval.stats import dataset_images


def _folder(path: Path, images: np.ndarray, truncated: tuple[int, ...] = ()) -> Path:
    path.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(path / f"{i:05d}.png")
    for i in truncated:
        (path / f"{i:05d}.png").write_bytes((path / f"{i:05d}.png").read_bytes()[:50])
    return path


@pytest.mark.usefixtures("own_cache")
@pytest.mark.parametrize("container", ["folder", "zip"])
def test_features_of_a_folder_training_set_equal_the_held_npz(tmp_path: Path, mnist_dir: Path, container: str) -> None:
    """Two truncated files left out; batches of 64 over 298 images (a short last one); a second call reads the
    cache entry the first wrote (the same key as the .npz of those pixels, which reads it too)."""
    px = dataset_images("mnist-train")[:300]
    path = _folder(tmp_path / "train", px, truncated=(10, 250))
    if container == "zip":
        with zipfile.ZipFile(tmp_path / "train.zip", "w") as zf:
            for p in sorted(path.iterdir()):
                zf.write(p, f"train/{p.name}")
        path = tmp_path / "train.zip"
    np.savez(tmp_path / "same.npz", images=np.delete(px, [10, 250], axis=0))
    ex = get_extractor("mnist", device="cpu")
    streamed = dataset_features(str(path), ex, 64)
    held = dataset_features(str(tmp_path / "same.npz"), ex, 64, write_cache=False)
    assert streamed.shape == (298, ex.pool_dim) and torch.equal(streamed, held)
    computed = []
    real_call = ex.__class__.__call__
    ex.__class__.__call__ = lambda self, x: computed.append(1) or real_call(self, x)  # type: ignore[method-assign]
    try:
        assert torch.equal(dataset_features(str(path), ex, 64), held) and not computed  # a cache hit
    finally:
        ex.__class__.__call__ = real_call  # type: ignore[method-assign]


def test_nearest_images_in_chunks_equal_one_array(mnist_dir: Path) -> None:
    """Chunks of any size (an empty one too) give the distances and images of the array searched whole; of equal
    distances (the same image twice in the set) the earliest is kept either way."""
    train = dataset_images("mnist-train")[:2000].copy()
    train[1500] = train[300]  # a tie across chunks
    queries = np.concatenate([dataset_images("mnist-test")[:12], train[[300, 1999]]])
    whole = nearest_images(queries, train)
    for size in (7, 512, 5000):
        chunks = [train[s:s + size] for s in range(0, len(train), size)] + [train[:0]]
        got = nearest_images(queries, iter(chunks))
        assert np.array_equal(got.images, whole.images) and np.allclose(got.distances, whole.distances, atol=1e-6)
    assert whole.distances[-2:].tolist() == [0.0, 0.0]


def test_the_neighbours_panel_of_a_folder_equals_the_npz_and_skips_rgb_unread(tmp_path: Path, mnist_dir: Path,
                                                                              monkeypatch) -> None:
    px, test = dataset_images("mnist-train")[:700], dataset_images("mnist-test")[:40]
    np.savez(tmp_path / "train.npz", images=px)
    np.savez(tmp_path / "held.npz", images=test)
    folder, held_folder = _folder(tmp_path / "train", px), _folder(tmp_path / "held", test)
    samples = {"a": px[[5, 600]], "b": test[30:33], "c": np.zeros((2, 32, 32), np.uint8)}
    idx = [7, 3, 7, 20]  # unsorted, one twice: the held-out images the copying test found nearest
    want, want_scale = report_neighbours(samples, str(tmp_path / "train.npz"), str(tmp_path / "held.npz"), idx)
    got, scale = report_neighbours(samples, str(folder), str(held_folder), idx)
    assert list(got) == list(want) == ["a", "b"] and scale == pytest.approx(want_scale, abs=1e-6)
    for name in want:
        assert np.array_equal(got[name].images, want[name].images) and np.array_equal(got[name].samples, samples[name])
        assert np.allclose(got[name].distances, want[name].distances, atol=1e-6)
    assert got["a"].distances.tolist() == [0.0, 0.0]
    assert np.array_equal(PixelSet(str(held_folder)).take(idx, 30), test[idx])
    rgb = tmp_path / "rgb"  # an RGB training set: no pixel comparison, and not one file decoded to find that out
    _folder(rgb, np.repeat(px[:50, :, :, None], 3, axis=3))
    import ganeval.sources.decoding as stored

    decoded = []
    real = stored.decode_image
    monkeypatch.setattr(stored, "decode_image", lambda data: decoded.append(1) or real(data))
    assert report_neighbours(samples, str(rgb), None) == ({}, None) and not decoded


def test_a_subset_asked_for_in_any_order_or_twice_comes_back_so(tmp_path: Path, mnist_dir: Path) -> None:
    px = dataset_images("mnist-test")[:30]
    folder = _folder(tmp_path / "s", px)
    for positions in ([4, 2, 9], [9, 2, 9, 0], [0, 1, 2]):
        assert np.array_equal(ImageStream(folder).subset(np.array(positions))[:, 0].numpy(), px[positions])


@pytest.mark.usefixtures("own_cache")
def test_copying_with_folder_sets_scores_as_with_npz_sets(tmp_path: Path, mnist_dir: Path) -> None:
    """``score(..., copy_train=FOLDER, copy_heldout=FOLDER)``: the copying columns and the neighbours panel equal
    those of the same images as .npz files (training images as samples are flagged, as ever)."""
    from ganeval import score

    train_px, test_px = dataset_images("mnist-train")[:1200], dataset_images("mnist-test")[:600]
    np.savez(tmp_path / "copies.npz", images=train_px[:400])
    np.savez(tmp_path / "train.npz", images=train_px)
    np.savez(tmp_path / "held.npz", images=test_px)
    sets = {"npz": (tmp_path / "train.npz", tmp_path / "held.npz"),
            "folder": (_folder(tmp_path / "train", train_px), _folder(tmp_path / "held", test_px))}
    got = {}
    for kind, (train, held) in sets.items():
        df = score(tmp_path / "copies.npz", metrics=("mnist_fd", "copying"), bootstrap=0, device="cpu", progress=False,
                   copy_cells=4, num_samples=400, copy_train=str(train), copy_heldout=str(held), out=tmp_path / kind,
                   write_report=True)
        html = (tmp_path / kind / "report.html").read_text()
        panel = html[html.index("<h3>Nearest training images</h3>"):]
        got[kind] = df[["copying_ct", "copy_share", "data_copying"]].to_dict("list"), panel[:panel.index("</figure>")]
    (a, pa), (b, pb) = got["npz"], got["folder"]
    assert a == b and a["data_copying"] == [True]
    assert pa == pb and "For scale: the held-out real images" in pa and "exact copies 20 of 20" in pa


@pytest.mark.usefixtures("own_cache")
def test_a_training_folder_changed_between_its_passes_is_refused_not_cached(tmp_path: Path, mnist_dir: Path,
                                                                            monkeypatch) -> None:
    from ganeval.errors import StatsError

    folder = _folder(tmp_path / "train", dataset_images("mnist-train")[:100])
    real_batches = ImageStream.batches

    def changed_first(self, *args, **kwargs):  # a file rewritten after the SHA-256 pass, before the features' pass
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "00042.png")
        return real_batches(self, *args, **kwargs)

    monkeypatch.setattr(ImageStream, "batches", changed_first)
    ex = get_extractor("mnist", device="cpu")
    with pytest.raises(StatsError, match="its images changed while being read"):
        dataset_features(str(folder), ex, 32)
    monkeypatch.setattr(ImageStream, "batches", real_batches)
    cache = Path(os.environ["GANEVAL_CACHE_DIR"])
    assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing cached under the first pass's key
    assert dataset_features(str(folder), ex, 32).shape == (100, ex.pool_dim)  # read again: the set as it is now
    assert [p for p in cache.rglob("*") if p.is_file()]
