"""A set of your images read by several readers in one run is read once per kind of work (sources/set_memo.py):
headers and the SHA-256 pass are remembered while the files are the same, and read again as soon as any is not."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganeval.sources.decoding as decoding
import ganeval.sources.image_stream as image_stream
from ganeval.features import get_extractor
from ganeval.reference import dataset_features, dataset_key
from ganeval.sources import set_memo
from ganeval.sources.image_stream import ImageStream
from ganeval.sources.samples import read_image_set


@pytest.fixture
def remembered(monkeypatch):
    """Every set may be remembered, even one written this instant (tests write their files just before reading)."""
    monkeypatch.setattr(set_memo, "RACY_NS", -(10**12))
    set_memo.forget()
    yield
    set_memo.forget()


@pytest.fixture
def counted(monkeypatch) -> dict[str, int]:
    """How many images are decoded and how many headers read from here on."""
    seen = {"decoded": 0, "headers": 0}
    decode, header = decoding.decode_image, image_stream.header_shape

    def decode_counted(*args, **kwargs):
        seen["decoded"] += 1
        return decode(*args, **kwargs)

    def header_counted(*args, **kwargs):
        seen["headers"] += 1
        return header(*args, **kwargs)

    monkeypatch.setattr(decoding, "decode_image", decode_counted)
    monkeypatch.setattr(image_stream, "header_shape", header_counted)
    return seen


def _folder(path: Path, n: int = 30, junk: tuple[int, ...] = (), fmt: str = "png") -> Path:
    rng = np.random.default_rng(n)
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).save(path / f"d_{i}.{fmt}")
        if i in junk:
            (path / f"d_{i}.{fmt}").write_bytes(b"not an image")
    return path


def _state(stream: ImageStream) -> tuple:
    return stream.digest(), stream.n, stream.n_bad, stream.notes, stream.shape, stream.first_name, stream.last_name


def test_a_second_reader_of_the_same_files_reads_no_header_and_decodes_nothing(tmp_path: Path, remembered,
                                                                              counted) -> None:
    folder = _folder(tmp_path / "set", junk=(4,))
    first = _state(ImageStream(folder))
    assert counted == {"decoded": 30, "headers": 30}
    again = ImageStream(folder)
    assert _state(again) == first and counted == {"decoded": 30, "headers": 30}
    assert first[0] == read_image_set(folder, 10**6).sha256 and first[2] == 1 and "d_4.png" in " ".join(first[3])
    assert torch.equal(torch.cat([b for _, b in again.batches(8)]), read_image_set(folder, 10**6).images)


def test_a_rewritten_file_is_read_again_even_with_its_size_and_time_put_back(tmp_path: Path, remembered,
                                                                         counted) -> None:
    folder = _folder(tmp_path / "set", fmt="bmp")  # uncompressed: another image of one size is a file of one size
    before = ImageStream(folder).digest()
    target = folder / "d_7.bmp"
    st = target.stat()
    Image.fromarray(np.full((12, 10), 3, np.uint8)).save(target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    counted["decoded"] = 0
    after = ImageStream(folder).digest()
    assert after != before and after == read_image_set(folder, 10**6).sha256 and counted["decoded"] == 60


@pytest.mark.parametrize("change", ["added", "removed", "renamed"])
def test_a_file_added_removed_or_renamed_is_seen(tmp_path: Path, remembered, change: str) -> None:
    folder = _folder(tmp_path / "set")
    before = _state(ImageStream(folder))
    if change == "added":
        Image.fromarray(np.zeros((12, 10), np.uint8)).save(folder / "d_99.png")
    elif change == "removed":
        (folder / "d_3.png").unlink()
    else:
        (folder / "d_3.png").rename(folder / "d_300.png")
    now = _state(ImageStream(folder))
    assert now != before and now[0] == read_image_set(folder, 10**6).sha256


def test_a_zip_is_known_by_its_own_file(tmp_path: Path, remembered, counted) -> None:
    folder = _folder(tmp_path / "set")
    zipped = tmp_path / "set.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, p.name)
    first = _state(ImageStream(zipped))
    assert _state(ImageStream(zipped)) == first and counted["decoded"] == 30
    with zipfile.ZipFile(zipped, "a") as zf:
        zf.writestr("d_99.png", (folder / "d_0.png").read_bytes())
    grown = ImageStream(zipped)
    assert grown.digest() != first[0] and grown.n == 31 and counted["decoded"] == 61


def test_files_written_just_now_are_read_every_time(tmp_path: Path, counted) -> None:
    set_memo.forget()
    folder = _folder(tmp_path / "set")  # within RACY_NS: two writes may share a time stamp
    assert set_memo.identity(folder, sorted(folder.iterdir())) is None
    ImageStream(folder).digest()
    ImageStream(folder).digest()
    assert counted == {"decoded": 60, "headers": 60}


def test_limits_and_recursive_reads_are_remembered_apart(tmp_path: Path, remembered) -> None:
    folder = _folder(tmp_path / "set")
    whole, first = ImageStream(folder), ImageStream(folder, limit=5)
    assert (whole.digest(), whole.n) == (read_image_set(folder, 10**6).sha256, 30)
    assert (first.digest(), first.n) == (read_image_set(folder, 5).sha256, 5)
    assert ImageStream(folder, limit=5).digest() == first.digest() != ImageStream(folder).digest()
    tree = tmp_path / "tree"
    _folder(tree / "a", n=4)
    _folder(tree / "b", n=5)
    assert ImageStream(tree, recursive=True).digest() == read_image_set(tree, 100, recursive=True).sha256


def test_the_copying_sets_training_folder_is_hashed_once_then_its_features_pass_made(tmp_path: Path, remembered,
                                                                                   counted, monkeypatch) -> None:
    """``dataset_key`` (the copying test's identity) and ``dataset_features`` of a folder: one SHA-256 pass, whose
    decoded images the features' pass reads (a second decoding pass where they may not be kept), and the features
    are those of the images held whole."""
    folder = _folder(tmp_path / "train", n=40)
    extractor = get_extractor("mnist", device="cpu")
    held = torch.cat([extractor(b)["pool"] for b in read_image_set(folder, 10**6).images.split(16)])
    for hold_mb, decoded in (("0", 80), ("", 40)):
        set_memo.forget()
        monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", hold_mb)
        counted["decoded"] = 0
        key = dataset_key(folder)
        assert counted["decoded"] == 40
        feats = dataset_features(folder, extractor, batch_size=16, write_cache=False)
        assert counted["decoded"] == decoded and key == f"custom-{read_image_set(folder, 10**6).sha256[:16]}"
        assert torch.allclose(feats, held, atol=1e-6)


def test_a_later_pass_reads_the_kept_images_and_hashes_them_again(tmp_path: Path, remembered, counted) -> None:
    """After one whole pass, batches, subsets and heads of the same files decode nothing, equal a fresh read's,
    and the pass's own SHA-256 is that of the images it gave; a reader that writes into a batch changes no other."""
    folder = _folder(tmp_path / "set", junk=(4,))
    fresh = read_image_set(folder, 10**6)
    first = ImageStream(folder)
    first.digest()
    counted["decoded"] = 0
    again = ImageStream(folder)
    batches = [b for _, b in again.batches(8)]
    assert counted["decoded"] == 0 and torch.equal(torch.cat(batches), fresh.images)
    assert again.pass_digest == fresh.sha256 and again.n == 29 and again.notes == first.notes
    batches[0].fill_(7)  # a reader's own copy
    assert torch.equal(torch.cat([b for _, b in ImageStream(folder).batches(8)]), fresh.images)
    assert torch.equal(again.subset(np.array([5, 0, 5])), fresh.images[[5, 0, 5]])
    assert torch.equal(again.head(3), fresh.images[:3]) and counted["decoded"] == 0
    again.expected = again.n + 1  # a pass hashes the count it is told: a wrong one gives another SHA-256
    assert list(again.batches(64)) and again.pass_digest != fresh.sha256


def test_kept_images_fit_the_hold_limit_and_the_oldest_set_is_dropped(tmp_path: Path, remembered, counted,
                                                                      monkeypatch) -> None:
    """A set's SHA-256 pass keeps its images for the pass that reads it, within ``GANEVAL_HOLD_IMAGES_MB`` over all
    sets and an eighth of the memory free (shared by a torchrun's processes): two sets of 0.64 MB each under 1 MiB,
    the first one's images are dropped for the second's; past the limit nothing is kept; a set forgotten takes its
    images with it."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(100):
            Image.fromarray(rng.integers(0, 256, (80, 80), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", "1")

    def passes(name: str) -> int:
        """Images decoded to identify the set and then read it."""
        before = counted["decoded"]
        stream = ImageStream(tmp_path / name)
        stream.digest()
        list(stream.batches(50))
        return counted["decoded"] - before

    assert (passes("a"), passes("a"), passes("b"), passes("b"), passes("a")) == (100, 0, 100, 0, 100)
    assert passes("b") == 0 and set_memo.kept_bytes() == 640_000  # only b's kept: a read batch by batch keeps none
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", "0")
    set_memo.forget()
    assert (passes("a"), passes("a"), set_memo.kept_bytes()) == (200, 100, 0)
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", "")
    monkeypatch.setattr(set_memo, "KEPT", 0)  # the pass's record not kept: nor its images
    set_memo.forget()
    assert (passes("a"), passes("a"), set_memo.kept_bytes()) == (200, 200, 0)
    ImageStream(tmp_path / "a").digest()
    assert set_memo.kept_bytes() == 0
    monkeypatch.setattr(set_memo, "KEPT", 1)  # a set forgotten for another: its images go with it
    assert (passes("a"), passes("b"), set_memo.kept_bytes(), passes("b"), passes("a")) == (100, 100, 640_000, 0, 100)
    set_memo.forget()
    monkeypatch.setattr(set_memo, "_free_memory", lambda: 5_000_000)  # an eighth of what is free: 625,000 bytes
    assert (passes("a"), passes("a"), set_memo.kept_bytes()) == (200, 100, 0)
    monkeypatch.setattr(set_memo, "_free_memory", lambda: 50_000_000)  # 6.25 MB: a fits ...
    set_memo.forget()
    assert (passes("a"), passes("a"), set_memo.kept_bytes()) == (100, 0, 640_000)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "10")  # ... unless ten torchrun processes share it
    set_memo.forget()
    assert (passes("a"), passes("a"), set_memo.kept_bytes()) == (200, 100, 0)
    set_memo.forget()



def test_a_file_changed_after_the_identifying_pass_leaves_the_kept_images_theirs(tmp_path: Path, remembered,
                                                                               monkeypatch) -> None:
    """Within one ``dataset_features``, the features' pass reads the images its identifying pass kept: a file
    rewritten in between changes neither the features nor the key they are cached under (both the first read's;
    with nothing kept, that pass decodes the new file and the run is refused, tests/test_streamed_real_sets.py), and
    the next reader, seeing the file's new stat, reads the set anew."""
    folder = _folder(tmp_path / "train", n=40)
    before = read_image_set(folder, 10**6)
    real_batches = ImageStream.batches

    def changed_first(self, *args, **kwargs):
        Image.fromarray(np.zeros((12, 10), np.uint8)).save(folder / "d_7.png")
        return real_batches(self, *args, **kwargs)

    monkeypatch.setattr(ImageStream, "batches", changed_first)
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    extractor = get_extractor("mnist", device="cpu")
    feats = dataset_features(folder, extractor, batch_size=16)
    monkeypatch.setattr(ImageStream, "batches", real_batches)
    assert torch.allclose(feats, torch.cat([extractor(b)["pool"] for b in before.images.split(16)]), atol=1e-6)
    cached = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and before.sha256[:16] in p.name]
    assert cached  # under the key of the images it holds
    after = read_image_set(folder, 10**6)
    assert after.sha256 != before.sha256 and dataset_key(folder) == f"custom-{after.sha256[:16]}"
