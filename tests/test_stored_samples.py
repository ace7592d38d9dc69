"""Stored samples (folders, zips, .npz): one scale for every image of a set, and a cache identity that tells
NaN samples from clean ones."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganeval.data import load_mnist
from ganeval.errors import GanevalError
from ganeval.sources.samples import decode_image, read_image_set

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
