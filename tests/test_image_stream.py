"""Statistics of a folder or zip read batch by batch (sources/image_stream.py) are those of the images read whole:
the same batches, pixel SHA-256, notes, statistics and saved features, whatever files are unreadable or RGB, and
memory that does not grow with the set."""

from __future__ import annotations

import shutil
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.features import get_extractor
from ganeval.memory import check_stats_memory
from ganeval.sources.base import image_digest
from ganeval.sources.image_stream import ImageStream, Recoloured
from ganeval.sources.samples import read_image_set
from ganeval.stats import compute_stats


def _set(path: Path, n: int, rgb=(), truncated=(), junk=(), size=(9, 7), zipped: bool = False) -> Path:
    """``n`` random PNGs ``img_0..``: RGB at ``rgb``, cut short after the header at ``truncated``, not images at
    ``junk``; in a zip when ``zipped``."""
    rng = np.random.default_rng(n)
    folder = path.with_suffix("") if zipped else path
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n):
        arr = rng.integers(0, 256, (*size, 3) if i in rgb else size, dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img_{i}.png")
        if i in truncated:
            (folder / f"img_{i}.png").write_bytes((folder / f"img_{i}.png").read_bytes()[:60])
        if i in junk:
            (folder / f"img_{i}.png").write_bytes(b"not an image")
    if not zipped:
        return folder
    with zipfile.ZipFile(path, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"set/{p.name}")
    return path


def _streamed(path: Path, limit: int | None, batch_size: int) -> tuple[ImageStream, torch.Tensor, list[int], int]:
    """Every batch of a pass (made again, as the stats pass does, where the colour was wrong), joined."""
    stream, restarts = ImageStream(path, limit), 0
    while True:
        try:
            got = list(stream.batches(batch_size))
            break
        except Recoloured:
            restarts += 1
    return stream, torch.cat([b for _, b in got]), [i for i, _ in got], restarts


CASES = {  # name: (set, limit, restarts expected)
    "gray, one truncated": (dict(n=23, truncated=(5,)), None, 0),
    "gray then RGB": (dict(n=23, rgb=(15, 20)), None, 0),
    "junk and truncated, limit": (dict(n=23, truncated=(3,), junk=(6,)), 12, 0),
    "RGB past the limit": (dict(n=23, rgb=(20,)), 12, 0),
    "RGB read in place of a truncated file": (dict(n=23, rgb=(12,), truncated=(2,)), 12, 1),
    "the only RGB file truncated": (dict(n=23, rgb=(9,), truncated=(9,)), None, 1),
    "zip, RGB and truncated": (dict(n=23, rgb=(4,), truncated=(1, 17), zipped=True), None, 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_streamed_set_is_the_set_read_whole(tmp_path: Path, case: str) -> None:
    spec, limit, restarts = CASES[case]
    path = _set(tmp_path / ("s.zip" if spec.get("zipped") else "s"), **spec)
    stream, images, indices, made_again = _streamed(path, limit, batch_size=5)
    whole = read_image_set(path, limit or 2**62)
    assert torch.equal(images, whole.images) and indices == list(range(len(indices)))
    assert stream.digest() == image_digest(whole.images)
    assert stream.notes == (whole.notes if limit else [n for n in whole.notes if "fewer than" not in n])
    assert stream.shape == tuple(whole.images.shape) and made_again == restarts


def test_statistics_and_saved_features_of_a_streamed_folder_equal_the_held_array(tmp_path: Path, mnist_dir: Path) -> None:
    """MNIST digits as PNGs, two truncated (the last batch shorter than the headers promised), against the same
    readable digits in an .npz (held whole): equal mean, covariance, pixel SHA-256 and features, bit for bit."""
    from ganeval.stats import dataset_images

    digits = dataset_images("mnist-test")[:203]
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, im in enumerate(digits):
        Image.fromarray(im).save(folder / f"{i:04d}.png")
    for i in (50, 190):
        (folder / f"{i:04d}.png").write_bytes((folder / f"{i:04d}.png").read_bytes()[:50])
    np.savez(tmp_path / "same.npz", images=np.delete(digits, [50, 190], axis=0))
    ex = get_extractor("mnist", device="cpu")
    for limit in (None, 100):
        a = compute_stats(folder, ex, 16, limit=limit, progress=False, keeps_features=True)
        b = compute_stats(tmp_path / "same.npz", ex, 16, limit=limit, progress=False, keeps_features=True)
        assert a.meta["n"] == b.meta["n"] == (limit or 201)
        assert a.meta["dataset_sha256"] == b.meta["dataset_sha256"] and a.meta["image_shape"] == [1, 28, 28]
        assert np.array_equal(a.mu, b.mu) and np.array_equal(a.sigma, b.sigma)
        assert a.features is not None and torch.equal(a.features, b.features)


def test_a_set_whose_colour_surprises_is_scored_again_in_its_true_colour(tmp_path: Path) -> None:
    """The headers of the first 12 readable files are gray, but one is truncated and the 13th, read in its place, is
    RGB: the pass is made again as RGB, and the statistics are those of the RGB array the one-array read holds."""
    path = _set(tmp_path / "s", 23, rgb=(12,), truncated=(2,), size=(28, 28))
    whole = read_image_set(path, 12).images
    np.save(tmp_path / "whole.npy", whole.numpy())
    ex = get_extractor("mnist", device="cpu")
    a = compute_stats(path, ex, 5, limit=12, progress=False)
    b = compute_stats(tmp_path / "whole.npy", ex, 5, progress=False)
    assert whole.shape == (12, 3, 28, 28) and a.meta["image_shape"] == [3, 28, 28]
    assert np.array_equal(a.mu, b.mu) and a.meta["dataset_sha256"] == b.meta["dataset_sha256"]


def test_images_of_another_size_are_refused_before_any_work(tmp_path: Path, cli) -> None:
    path = _set(tmp_path / "s", 6)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(path / "img_9.png")
    out = tmp_path / "ref" / "s_mnist.npz"
    code, _, err = cli("stats", "--dataset", path, "--extractor", "mnist", "--device", "cpu", "--no-progress", "--out", out)
    assert code == 2 and "images of different sizes (9×7 in img_0.png, 5×5 in img_9.png)" in err, err
    assert not out.parent.exists()


def test_a_stream_holds_a_batch_not_the_set(tmp_path: Path, monkeypatch) -> None:
    """tracemalloc (numpy's buffers are traced) over a pass: a set of 120 RGB 128×128 images (5.9 MB) read whole
    holds all of it at once; streamed in batches of 8, under a fifth of it. A pass made to identify the set first
    (its SHA-256) holds it where it may be kept for the pass that follows (within GANEVAL_HOLD_IMAGES_MB), which then
    holds no more."""
    from ganeval.sources import set_memo

    path = _set(tmp_path / "s", 120, rgb=range(120), size=(128, 128))
    set_bytes = 120 * 3 * 128 * 128
    monkeypatch.setattr(set_memo, "RACY_NS", -(10**12))  # files written just now may be remembered
    set_memo.forget()

    def peak(read) -> int:
        tracemalloc.start()
        try:
            read()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def stream() -> None:
        for _, batch in ImageStream(path).batches(8):
            del batch

    assert peak(lambda: read_image_set(path, 2**62)) >= set_bytes
    assert peak(stream) < set_bytes / 5 and set_memo.kept_bytes() == 0  # one pass, as `ganeval stats` reads: none kept
    for hold_mb in ("0", "5"):  # nothing kept; a set larger than what may be kept
        monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", hold_mb)
        set_memo.forget()
        assert peak(lambda: ImageStream(path).digest()) < set_bytes / 5 and set_memo.kept_bytes() == 0
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", "6")
    set_memo.forget()
    assert peak(lambda: ImageStream(path).digest()) >= set_bytes and set_memo.kept_bytes() == set_bytes
    assert peak(stream) < set_bytes / 5
    set_memo.forget()


def test_the_memory_check_counts_a_streamed_set_without_its_images() -> None:
    """60 million MNIST-size images held would need 47 GB (refused on a 24 GiB machine); streamed, one batch and
    the sums, whatever the count: passed. Saved features still grow with the set, and are refused by --limit."""
    args = dict(dataset="d", device=torch.device("cpu"), have=24 * 2**30, processes=1)
    with pytest.raises(Exception, match="give --limit"):
        check_stats_memory(60_000_000, 784, 64, "mnist", 128, **args)
    check_stats_memory(60_000_000, 784, 64, "mnist", 128, held=False, **args)
    with pytest.raises(Exception, match=r"per image: their saved features\).*give --limit"):
        check_stats_memory(60_000_000, 784, 64, "mnist", 128, held=False, keeps_features=True, **args)


def test_a_references_real_subset_is_read_from_its_folder_one_image_at_a_time(tmp_path: Path) -> None:
    """KID's and precision/recall's real images of a folder reference: the seeded subset, equal to indexing the set
    read whole, verified against the statistics' pixel SHA-256 (a changed image refused), and the same content key
    as the same pixels in an .npz."""
    from ganeval.errors import StatsError
    from ganeval.reference import _custom_images, dataset_key, real_subset

    path = _set(tmp_path / "s", 60, truncated=(4,), size=(28, 28))
    meta = compute_stats(path, get_extractor("mnist", device="cpu"), 16, progress=False).meta
    whole = read_image_set(path, 2**62).images
    idx = real_subset(59, 20)
    assert len(idx) == 20 and torch.equal(_custom_images(meta, idx), whole[torch.from_numpy(idx)])
    np.savez(tmp_path / "same.npz", images=whole.numpy())
    assert dataset_key(path) == dataset_key(tmp_path / "same.npz") == f"custom-{meta['dataset_sha256'][:16]}"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(path / "img_59.png")
    with pytest.raises(StatsError, match="the real images changed since the reference statistics were made"):
        _custom_images(meta, idx)


def test_a_real_floor_from_a_folder_is_the_one_from_its_images_held_whole(tmp_path: Path) -> None:
    """``--real-floor FOLDER``: counted and hashed in one decode-only pass, its seeded subset read in another (never
    the set whole): the same images and identity as the same pixels in an .npz."""
    from ganeval.real_floor import floor_source

    path = _set(tmp_path / "held", 50, truncated=(7,), size=(28, 28))
    np.savez(tmp_path / "held.npz", images=read_image_set(path, 2**62).images.numpy())
    ref = {"mnist": {"dataset": "mnist-train"}}
    (a, ia), (b, ib) = (floor_source(str(p), ref, 30, seed=3) for p in (path, tmp_path / "held.npz"))
    assert torch.equal(torch.as_tensor(a.extra["array"]), torch.as_tensor(b.extra["array"]))
    assert len(a.extra["array"]) == 30 and ia["n_available"] == ib["n_available"] == 49
    assert {k: v for k, v in ia.items() if k != "source"} == {k: v for k, v in ib.items() if k != "source"}
    with pytest.raises(Exception, match="49 held-out images, fewer than the 60 samples"):
        floor_source(str(path), ref, 60)


def test_with_a_limit_only_the_headers_it_needs_are_read(tmp_path: Path, monkeypatch) -> None:
    from ganeval.sources import image_stream

    path = _set(tmp_path / "s", 40, junk=(1,))
    seen: list[int] = []
    real = image_stream.header_shape

    def counted(fh):  # noqa: ANN001, ANN202
        seen.append(1)
        return real(fh)

    monkeypatch.setattr(image_stream, "header_shape", counted)
    stream = ImageStream(path, limit=5)
    assert len(seen) == 6 and stream.expected == 5  # img_0, the junk img_1, img_2..img_5: not the other 34
    assert ImageStream(path).expected == 39 and len(seen) == 6 + 40


def test_a_class_per_folder_tree_is_read_with_recursive_in_natural_path_order(tmp_path: Path, cli) -> None:
    """``stats --dataset TREE --recursive``: every image below TREE (hidden folders left out) in natural order of
    its path, the order a zip of the tree lists them, so both give one pixel SHA-256 and one set of statistics;
    recorded in the sidecar, so KID's re-read reads the tree again. Without --recursive: one line saying so."""
    from ganeval.reference import _custom_images
    from ganeval.stats import load_stats

    tree, rng = tmp_path / "tree", np.random.default_rng(0)
    names = ["a/img_1.png", "a/img_2.png", "a/img_10.png", "b/img_1.png", "b/sub/x.png", "top_3.png"]
    for name in [*reversed(names), ".hidden/y.png"]:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(tree / name)
    with zipfile.ZipFile(tmp_path / "tree.zip", "w") as zf:
        for name in [*reversed(names), ".hidden/y.png"]:  # a hidden folder is left out of a zip too
            zf.write(tree / name, name)
    common = ("stats", "--extractor", "mnist", "--device", "cpu", "--no-progress")
    code, _, err = cli(*common, "--dataset", tree, "--recursive", "--out", tmp_path / "r" / "t_mnist.npz")
    assert code == 0, err
    code, _, err = cli(*common, "--dataset", tmp_path / "tree.zip", "--out", tmp_path / "z" / "z_mnist.npz")
    assert code == 0, err
    a, b = load_stats(tmp_path / "r" / "t_mnist.npz"), load_stats(tmp_path / "z" / "z_mnist.npz")
    assert a.meta["n"] == 6 and a.meta["recursive"] is True and "recursive" not in b.meta
    assert a.meta["dataset_sha256"] == b.meta["dataset_sha256"] and np.array_equal(a.mu, b.mu)
    expected = torch.stack([torch.from_numpy(np.array(Image.open(tree / n)))[None] for n in names])
    assert torch.equal(_custom_images(a.meta, np.arange(6)), expected)
    code, _, err = cli(*common, "--dataset", tree, "--out", tmp_path / "x" / "t_mnist.npz")
    assert code == 2 and "tree: its subfolders hold images too, not read (--recursive reads the tree)" in err, err
    assert "1 image(s); statistics need at least 2" in err
    (tree / "top_3.png").unlink()
    code, _, err = cli(*common, "--dataset", tree, "--out", tmp_path / "x" / "t_mnist.npz")
    assert code == 2 and "no images in this folder, but its subfolders hold some: pass --recursive" in err, err
    code, _, err = cli(*common, "--dataset", tmp_path / "tree.zip", "--recursive", "--out", tmp_path / "x" / "t_mnist.npz")
    assert code == 2 and "--recursive reads a folder's tree" in err, err
    assert not (tmp_path / "x").exists()
