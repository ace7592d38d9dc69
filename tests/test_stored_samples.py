"""Stored samples (folders, zips, .npz): one scale for every image of a set, and a cache identity that tells
NaN samples from clean ones."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.data import load_mnist
from ganeval.errors import GanevalError
from ganeval.sources.base import ImageSamples
from ganeval.sources.samples import array_images, decode_image, open_array, read_image_set

pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _tiff(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "TIFF")
    return buf.getvalue()


def test_integer_images_are_scaled_by_their_declared_depth_never_by_their_content(tmp_path: Path) -> None:
    """A 32-bit integer ('I') image was scaled by its own maximum: a frame of 256s read as 1, one of 200s as 200, so
    a near-black 16-bit frame came out bright among its set's dim-scaled images. 16-bit data now keeps its top 8 bits
    whatever the values; a 32-bit image, which does not say what range it holds, is left out with that reason."""
    dark16 = b"P5 4 4 65535\n" + np.full(16, 200, ">u2").tobytes()  # a 16-bit PGM: Pillow reads it as 'I'
    bright16 = b"P5 4 4 65535\n" + np.full(16, 256 * 200, ">u2").tobytes()
    assert decode_image(dark16).max() == 0 and decode_image(bright16).max() == 200
    for fill in (200, 256):
        with pytest.raises(ValueError, match="32-bit integer image"):
            decode_image(_tiff(np.full((4, 4), fill, np.int32)))
    digits = load_mnist("test")[0][:4].astype(np.int32)
    (tmp_path / "set").mkdir()
    for i, im in enumerate(digits):
        (tmp_path / "set" / f"img_{i}.tif").write_bytes(_tiff(im))
    (tmp_path / "set" / "img_9.png").write_bytes(b"")  # a truly unreadable file beside them
    with pytest.raises(GanevalError, match=r"no readable images \(5 unreadable: img_0.tif: ValueError: a 32-bit") as exc:
        read_image_set(tmp_path / "set", 10)
    assert "\n" not in str(exc.value)
    Image.fromarray(digits[0].astype(np.uint8)).save(tmp_path / "set" / "img_9.png")
    got = read_image_set(tmp_path / "set", 10)
    assert len(got.images) == 1 and got.n_bad == 4 and "save it as an 8- or 16-bit image" in got.notes[0]


def _row(tmp_path: Path, cli, name: str, out: str) -> dict[str, str]:
    code, _, err = cli("score", tmp_path / f"{name}.npz", "--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 0,
                       "--device", "cpu", "--no-progress", "--out", tmp_path / out)
    assert code == 0, err
    with open(tmp_path / out / "scores.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    return row


def test_nan_samples_and_clean_samples_of_the_same_pixels_are_cached_apart(tmp_path: Path, cli) -> None:
    """NaN is converted to a finite pixel, and the stored-samples cache key was the converted pixels only: a set with
    NaN pixels was served a clean set's cached features (status ok, a finite FD), and the other way round."""
    x = load_mnist("test")[0][:200].astype(np.float32) / 127.5 - 1
    clean, bad = x.copy(), x.copy()
    clean[0, 0, 0] = clean[5, 3, 3] = 0.0
    bad[0, 0, 0] = bad[5, 3, 3] = np.nan  # converted to 0.0 -> pixel 128, as in clean
    np.savez(tmp_path / "clean.npz", images=clean)
    np.savez(tmp_path / "withnan.npz", images=bad)
    first = {name: _row(tmp_path, cli, name, f"rep_{name}") for name in ("clean", "withnan")}
    assert first["clean"]["status"] == "ok" and float(first["clean"]["mnist_fd"]) < 100
    assert first["withnan"]["status"] == "nan_samples" and first["withnan"]["mnist_fd"] == "inf"
    assert first["clean"]["sha256"] != first["withnan"]["sha256"]
    for name in ("withnan", "clean"):  # again, from the cache: each keeps its own status and FD
        again = _row(tmp_path, cli, name, f"rep2_{name}")
        assert {k: again[k] for k in ("status", "mnist_fd", "sha256")} == {k: first[name][k] for k in ("status", "mnist_fd", "sha256")}


def _stored_set(tmp_path: Path, suffix: str, arr: np.ndarray) -> Path:
    path = tmp_path / f"samples{suffix}"
    np.save(path, arr) if suffix == ".npy" else np.savez_compressed(path, images=arr)
    return path


def _as_before(arr: np.ndarray, n: int, path: Path, output_range: str) -> ImageSamples:
    """What scoring opened before: every image converted (``array_images``), then the first ``n`` kept."""
    images, flags, notes = array_images(arr, output_range, str(path))
    return open_array(images, flags, n, path.name, notes)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
@pytest.mark.parametrize("dtype", ["uint8-nhwc", ">f4-nan", "float16"])
def test_a_stored_set_scored_at_n_reads_only_its_first_n_images(tmp_path: Path, suffix: str, dtype: str) -> None:
    """--num-samples N of a stored .npy/.npz read and converted every image before the first N were kept (a
    50,000-image 256×256 set at N = 1,000: ~10 GB, and a float tensor of all of it). Now only N are read; the images,
    NaN flags and notes are the ones the whole read gave."""
    import tracemalloc

    from ganeval.inputs import resolve_target

    rng = np.random.default_rng(0)
    if dtype == "uint8-nhwc":
        arr = rng.integers(0, 256, (3000, 16, 16, 3), dtype=np.uint8)  # channels last: converted to NCHW
    else:
        arr = rng.uniform(-1, 1, (3000, 28, 28)).astype(dtype.removesuffix("-nan"))  # a big-endian float too
        if dtype.endswith("-nan"):
            arr[2, 3, 3], arr[7, 0, 0], arr[2000, 1, 1] = np.nan, np.inf, np.nan
    path = _stored_set(tmp_path, suffix, arr)
    (source,) = resolve_target(path).sources
    tracemalloc.start()
    try:
        got = source.open(torch.device("cpu"), 10, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    want = _as_before(arr, 10, path, "-1,1")
    assert torch.equal(got.images, want.images) and got.notes == want.notes and got.cache_key == want.cache_key
    assert np.array_equal(got.nonfinite, want.nonfinite) and got.nonfinite.sum() == (2 if dtype.endswith("nan") else 0)
    assert peak < arr.nbytes // 4, f"{peak} bytes traced reading 10 of 3000 images"
    short = source.open(torch.device("cpu"), 5000, 0)  # fewer than asked: the same note, every image read
    want = _as_before(arr, 5000, path, "-1,1")
    assert torch.equal(short.images, want.images) and short.notes == want.notes and len(short.notes) == 1
    assert np.array_equal(short.nonfinite, want.nonfinite)


def test_scores_of_the_first_n_stored_images_equal_the_whole_arrays(tmp_path: Path) -> None:
    """The scores of a stored set read N images at a time equal those of the same images passed as an array
    (converted whole, then the first N kept, as stored sets were read before)."""
    import ganeval

    x = load_mnist("test")[0][:300].astype(np.float32) / 127.5 - 1
    x[4, 0, 0] = np.nan
    path = _stored_set(tmp_path, ".npz", x)
    options = {"metrics": ["mnist_fd"], "num_samples": 200, "bootstrap": 0, "device": "cpu", "progress": False,
               "use_cache": False}
    stored, array = ganeval.score(path, **options), ganeval.score(x, **options)
    for col in ("status", "mnist_fd", "n_samples", "sha256"):
        assert stored[col].iloc[0] == array[col].iloc[0], col
    assert stored["status"].iloc[0] == "nan_samples"


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_stored_images_past_memory_are_refused_naming_num_samples(tmp_path: Path, cli, suffix: str) -> None:
    """The memory check counted features per sample, not the stored images a set's first N hold: a million float64
    3×4096×4096 images (366 TiB, plus their uint8 copy) passed it and were then read. Now they are counted from the
    array's header, and refused in one line naming --num-samples before anything is read."""
    import zipfile

    path = tmp_path / "big.npy"
    with open(path, "wb") as fh:  # the header alone: the check never reads the data
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 3, 4096, 4096)})
    if suffix == ".npz":
        with zipfile.ZipFile(tmp_path / "big.npz", "w") as z:
            z.write(path, "images.npy")
        path = tmp_path / "big.npz"
    code, _, err = cli("score", path, "--metrics", "mnist_fd", "--num-samples", 10**6, "--device", "cpu", "--no-progress",
                       "--out", tmp_path / "rep")
    assert code == 2 and "error: --num-samples 1000000 would hold at least 4" in err and "the stored images)" in err, err
    assert re.search(r"lower it \(at most [1-9]\d* could fit here\)$", err.strip()), err
    assert err.strip().count("\n") == 0 and not (tmp_path / "rep").exists()


def _png_header(width: int, height: int, color: int = 2) -> bytes:
    """A PNG's signature, IHDR (8-bit; color 2: RGB, 0: grayscale) and IEND: its size told, no pixels stored."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_image_sets_past_memory_are_refused_from_their_headers(tmp_path: Path, cli, container: str, monkeypatch) -> None:
    """Folders and zips of images were not sized before reading: a set of big images started decoding every one of
    them (into a list, then stacked twice) and died of MemoryError or the OOM killer. Now the files are counted and
    one image's header read (an 8000×8000 RGB PNG: 192 MB as read), and a set to be held (GANEVAL_HOLD_IMAGES_MB
    above it; by default so big a set is streamed, tests/test_streamed_samples.py) refused in one line naming
    --num-samples; its images are counted once each, as it holds fewer than N."""
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", str(10**9))
    path, files = _header_set(tmp_path, container)
    code, _, err = cli("score", path, "--metrics", "mnist_fd", "--num-samples", 10**6, "--device", "cpu", "--no-progress",
                       "--out", tmp_path / "rep")
    assert code == 2 and "error: --num-samples 1000000 would hold at least" in err, err
    assert f"{3 * 8000 * 8000 * files / 2**30:.3g} GiB for the stored set's {files} images as read)" in err, err
    assert re.search(r"lower it \(at most [1-9]\d* could fit here\)$", err.strip()), err
    assert err.strip().count("\n") == 0 and not (tmp_path / "rep").exists()


def _header_set(tmp_path: Path, container: str) -> tuple[Path, int]:
    """A folder or zip of one 8000×8000 RGB PNG header (192 MB as read) and enough empty .png files beside it that the
    set, sized from that header, is past this machine's memory, whatever it is; no image in it can be decoded."""
    from ganeval.memory import physical_memory

    files = (physical_memory() or 2**40) // (3 * 8000 * 8000) + 2
    names = {f"img_{i}.png": _png_header(8000, 8000) if i == 1 else b"" for i in range(1, files + 1)}
    if container == "zip":
        import zipfile

        path = tmp_path / "set.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in names.items():
                z.writestr(f"samples/{name}", data)
    else:
        path = tmp_path / "set"
        path.mkdir()
        for name, data in names.items():
            (path / name).write_bytes(data)
    return path, files


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_stats_of_an_image_set_past_memory_is_streamed_not_refused(tmp_path: Path, cli, container: str) -> None:
    """``ganeval stats --dataset`` of a folder or zip reads it batch by batch (sources/image_stream.py): a set whose
    images together are past this machine's memory is not refused for it (it was, in one line naming --limit); here
    every file is unreadable, so the read's own error is what stops it, before anything is written."""
    path, files = _header_set(tmp_path, container)
    out = tmp_path / "ref" / "set_mnist.npz"
    code, _, err = cli("stats", "--dataset", path, "--extractor", "mnist", "--device", "cpu", "--no-progress", "--out", out)
    assert code == 2 and f"no readable images ({files} unreadable" in err and "would hold" not in err, err
    assert err.strip().count("\n") == 0, err
    assert not out.exists()


def test_a_stored_set_shorter_than_n_counts_only_its_images() -> None:
    """A stored set holding fewer images than --num-samples is read whole: its images were counted N times, so two
    3×4096×4096 float64 images (each 403 MB stored plus its uint8 copy) at N = 100,000 were refused as 45 TB. The
    most that could fit, past the set's images, grows by the features alone: the N named passes, one more does not."""
    from ganeval.memory import check_memory

    def check(n: int, images: int) -> None:
        check_memory(n, 0, ["mnist_fd"], have=2**33, image_bytes=3 * 4096 * 4096 * 9, stored_images=images)

    check(100_000, 2)  # 0.8 GB of images and 0.3 GB of features: fits in 8 GiB
    for n, images in ((100_000, 20), (10**7, 2)):  # the images do not fit; the features of 10 million samples do not
        with pytest.raises(GanevalError, match=rf"for the stored set's {images} images as read\), more than") as info:
            check(n, images)
        most = int(re.search(r"at most (\d+) could fit here\)$", str(info.value)).group(1))
        assert (most < images) == (images == 20), most
        check(most, images)
        with pytest.raises(GanevalError):
            check(most + 1, images)


def test_a_short_stored_array_is_read_not_refused_for_images_it_does_not_hold(tmp_path: Path, cli) -> None:
    """Two 3×4096×4096 float64 images scored at --num-samples 100000 were refused as 41 TiB; the array's header
    says it holds two (0.8 GB), so it is read, and this one, its data missing, is refused for that instead."""
    path = tmp_path / "two.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (2, 3, 4096, 4096)})
    code, _, err = cli("score", path, "--metrics", "mnist_fd", "--num-samples", 100_000, "--bootstrap", 0, "--device", "cpu",
                       "--no-progress", "--out", tmp_path / "rep")
    assert "would hold" not in err and f"{path}: not a readable .npy array of images" in err, err


@pytest.mark.parametrize("kind", ["gray", "rgb", "gray-then-rgb"])
def test_an_image_folder_is_read_into_one_array_holding_each_image_once(tmp_path: Path, kind: str) -> None:
    """A folder or zip was decoded into a list of arrays, stacked, and for RGB copied channels-first: three copies of
    every image at once (two for grayscale), ~29 GB at the peak for 50,000 256×256 RGB samples of 9.8 GB. Each image
    is now decoded into one preallocated array: tracemalloc sees each further image cost its bytes once (4/3 for a set
    turned from gray to RGB part-way, its gray array held while copied), with the same pixels, order and errors."""
    import tracemalloc

    rng = np.random.default_rng(0)
    folder = tmp_path / "set"
    folder.mkdir()
    want = []
    for i in range(40):
        gray = kind == "gray" or (kind == "gray-then-rgb" and i < 8)
        px = rng.integers(0, 256, (64, 64) if gray else (64, 64, 3), dtype=np.uint8)
        if gray and i == 2:  # 16-bit: read as its top 8 bits
            Image.fromarray(px.astype(np.uint16) * 257).save(folder / f"img_{i}.png")
        elif not gray and i == 12:  # alpha dropped
            Image.fromarray(np.dstack([px, rng.integers(0, 256, (64, 64), dtype=np.uint8)])).save(folder / f"img_{i}.png")
        else:
            Image.fromarray(px).save(folder / f"img_{i}.png")
        want.append(torch.from_numpy(px).permute(2, 0, 1) if px.ndim == 3 else torch.from_numpy(px)[None])
    (folder / "img_4x.png").write_bytes(b"not an image")  # between img_4 and img_5: left out, counted
    want_images = torch.stack([w.expand(3, -1, -1) if kind != "gray" else w for w in want])
    read_image_set(folder, 100)  # whatever PIL imports or caches on first use, before anything is traced
    peaks = {}
    for n in (20, 40):
        tracemalloc.start()
        try:
            got = read_image_set(folder, n)
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert torch.equal(got.images, want_images[:n]) and got.images.is_contiguous() and got.n_bad == 1, n
    per_image = (peaks[40] - peaks[20]) / want_images[20:].numel()
    assert per_image < 1.5, f"{per_image:.2f} bytes traced per byte of each further image"
    got = read_image_set(folder, 100)  # room for all 41 files allocated, the 40 read kept
    assert torch.equal(got.images, want_images) and got.images.is_contiguous() and got.n_bad == 1
    assert "only 40 readable images" in got.notes[-1] and got.meta == {"files": 41, "first": "img_0.png", "last": "img_39.png"}
    for i, side in ((25, 32), (30, 48)):  # the first image of another size is named, with the first image
        Image.fromarray(np.zeros((side, side), np.uint8)).save(folder / f"img_{i}.png")
    with pytest.raises(GanevalError, match=r"set: images of different sizes \(64×64 in img_0.png, 32×32 in img_25.png\); "):
        read_image_set(folder, 100)


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_a_set_turning_rgb_after_gray_images_is_sized_as_rgb(tmp_path: Path, container: str) -> None:
    """A folder or zip whose first images are grayscale and later ones RGB is read as RGB (ImageStack): its size from
    the headers counts 3 channels (it counted the first image's 1), and reading it gives as many."""
    import zipfile

    from ganeval.sources.sizing import image_set_shape, stored_set_size

    rng = np.random.default_rng(0)
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(100):  # RGB from the 60th image on: past the first 8 headers, among the spread ones
        shape = (28, 28, 3) if i >= 60 else (28, 28)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i:03d}.png")
    path = folder
    if container == "zip":
        path = tmp_path / "set.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(folder.iterdir()):
                zf.write(f, f.name)
    assert image_set_shape(path) == (100, 28, 28, 3)
    assert stored_set_size(path, "images") == (28 * 28 * 3, 100)
    assert read_image_set(path, 100).images.shape == (100, 3, 28, 28)  # what the count stands for
    for f in folder.glob("0[6-9]?.png"):
        Image.open(f).convert("L").save(f)  # all gray again
    if container == "folder":
        assert image_set_shape(path) == (100, 28, 28, 1)
