"""A folder or zip of samples larger than ``GANEVAL_HOLD_IMAGES_MB`` is scored batch by batch
(sources/streamed_samples.py): the same samples, SHA-256, notes, counts, grid and scores as the set read into one
array, with memory that holds a batch rather than the set."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from test_image_stream import CASES, _set

from ganeval.data import load_mnist
from ganeval.sources.samples import read_image_set
from ganeval.sources.sizing import hold_limit, stored_set_plan, stored_set_size, streams_samples
from ganeval.sources.streamed_samples import StreamedImageSamples, open_image_set


@pytest.mark.parametrize("case", [c for c, (_, _, restarts) in CASES.items() if not restarts] +
                         ["RGB read in place of a truncated file", "the only RGB file truncated"])
def test_streamed_samples_are_the_samples_read_whole(tmp_path: Path, case: str) -> None:
    """Batches in order and out of order, other batch sizes, chosen rows (repeated, unsorted) and the grid: each
    equal to the one array's; SHA-256, notes, unreadable count and the first/last names too."""
    spec, limit, _ = CASES[case]
    path = _set(tmp_path / ("s.zip" if spec.get("zipped") else "s"), **spec)
    n = limit or 40  # more than the set holds where no limit: the shortfall note
    whole, streamed = read_image_set(path, n), StreamedImageSamples(path, n)
    try:
        assert (streamed.n, streamed.sha256, streamed.cache_key) == (whole.n, whole.sha256, whole.cache_key)
        assert (streamed.notes, streamed.n_bad, streamed.meta, streamed.shape) == (whole.notes, whole.n_bad, whole.meta,
                                                                                   whole.shape)
        for bs in (4, 7):
            order = [*range(-(-whole.n // bs)), 1, 0]  # an earlier batch asked for again starts a new pass
            for b in order:
                got, want = streamed.batch(b, bs), whole.batch(b, bs)
                assert torch.equal(got.images, want.images) and got.nonfinite == want.nonfinite == 0
        rows = [5, 0, 5, whole.n - 1, 2]
        assert torch.equal(streamed.scored_rows(rows, 4), whole.scored_rows(rows, 4))
        assert torch.equal(streamed.rows(3, 9).images, whole.rows(3, 9).images)
        assert np.array_equal(streamed.grid(30, 4), whole.grid(30, 4))
        assert streamed.scored_rows([], 4).shape == (0, *whole.shape)
    finally:
        streamed.close()


def test_the_grid_decodes_only_its_images(tmp_path: Path, monkeypatch) -> None:
    """The report's first 30 samples are read from the first files alone, not by a pass over the set."""
    import ganeval.sources.decoding as samples

    path = _set(tmp_path / "s", 80)
    streamed = StreamedImageSamples(path, 80)
    decoded = []
    real = samples.decode_image
    monkeypatch.setattr(samples, "decode_image", lambda data: decoded.append(1) or real(data))
    assert streamed.grid(30, 8).shape == (30, 9, 7) and len(decoded) == 30


def test_only_sets_past_the_limit_are_streamed(tmp_path: Path, monkeypatch) -> None:
    """A set held would take 60 × 9 × 7 bytes at N = 60 (30 × 63 at N = 30): read whole at or under the limit,
    streamed over it, and then counted by the memory check without its images; a bad limit is one clear line."""
    path = _set(tmp_path / "s", 60)
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", "0")
    assert hold_limit() == 0 and streams_samples(path, 1) and isinstance(open_image_set(path, 60), StreamedImageSamples)
    assert stored_set_plan(path, "images", 60) == (63, 60, True) and stored_set_size(path, "images") == (63, 60)
    monkeypatch.delenv("GANEVAL_HOLD_IMAGES_MB")
    assert hold_limit() == 512 << 20 and not streams_samples(path, 60)
    assert not isinstance(open_image_set(path, 60), StreamedImageSamples) and stored_set_plan(path, "images", 60) == (63, 60, False)
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", "1")
    big = _set(tmp_path / "big", 3, size=(600, 600))  # 360,000 bytes each: 2 held fit in 1 MiB, 3 do not
    assert not streams_samples(big, 2) and streams_samples(big, 3)
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", "lots")
    with pytest.raises(Exception, match="GANEVAL_HOLD_IMAGES_MB must be a whole number of MiB"):
        hold_limit()


def test_streamed_samples_hold_a_batch_not_the_set(tmp_path: Path) -> None:
    """tracemalloc over opening and reading every batch: 120 RGB 128×128 images (5.9 MB) read whole hold all of
    it; streamed in batches of 8, under a fifth of it."""
    path = _set(tmp_path / "s", 120, rgb=range(120), size=(128, 128))

    def peak(samples_of) -> int:
        tracemalloc.start()
        try:
            samples = samples_of()
            for b in range(15):
                samples.batch(b, 8)
            samples.close()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    set_bytes = 120 * 3 * 128 * 128
    assert peak(lambda: read_image_set(path, 120)) >= set_bytes
    assert peak(lambda: StreamedImageSamples(path, 120)) < set_bytes / 5


def _digits(folder: Path, n: int, truncated: tuple[int, ...] = ()) -> Path:
    _digits_from(folder, load_mnist("test")[0][:n])
    for i in truncated:
        (folder / f"{i:04d}.png").write_bytes((folder / f"{i:04d}.png").read_bytes()[:50])
    return folder


@pytest.mark.parametrize("extra", [[], ["--metrics", "mnist_fd", "mnist_realism"]])
def test_scores_of_a_streamed_folder_equal_the_held_ones(tmp_path: Path, cli, monkeypatch, extra: list[str]) -> None:
    """``ganeval score FOLDER`` held and streamed: the same rows (every metric, SHA-256, unreadable count), notes and
    report grid; the realism panel re-opens the set and show the same samples; the cache entry written by
    one is used by the other."""
    folder = _digits(tmp_path / "digits", 230, truncated=(3, 100))
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    opened: list[int] = []
    real_init = StreamedImageSamples.__init__
    monkeypatch.setattr(StreamedImageSamples, "__init__", lambda self, *a: opened.append(1) or real_init(self, *a))
    runs = {}
    for tag, mb in (("held", "512"), ("streamed", "0"), ("streamed again", "0")):
        monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", mb)
        out = tmp_path / tag
        code, _, err = cli("score", folder, "--num-samples", "200", "--batch-size", "32", "--bootstrap", "20", "--device",
                           "cpu", "--no-progress", "--out", out, *(extra or ["--metrics", "mnist_fd", "mnist_is", "modes"]))
        assert code == 0, err
        assert bool(opened) == (mb == "0")
        runs[tag] = json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()
    (a, ha), (b, hb), (c, _) = runs["held"], runs["streamed"], runs["streamed again"]
    rows = [{k: v for k, v in r["rows"][0].items() if k != "seconds"} for r in (a, b)]
    assert rows[0] == rows[1] and rows[0]["n_bad_images"] == 2 and rows[0]["n_samples"] == 200
    assert a["notes"] == b["notes"]
    images = [[s for s in h.split('"') if s.startswith("data:image/png")] for h in (ha, hb)]
    assert images[0] == images[1] and len(images[0]) >= (3 if extra else 1)
    assert c["rows"][0]["mnist_fd"] == a["rows"][0]["mnist_fd"]


def test_a_set_past_memory_held_is_refused_and_streamed_is_read(tmp_path: Path, cli, monkeypatch) -> None:
    """Headers saying 8000×8000 RGB (192 MB each as read), enough of them that the set is past this machine's memory:
    held (a limit above it), refused in one line naming --num-samples before anything is read; streamed (the default
    limit), two batches of them held at a time: at the default --batch-size 100 past memory too, refused naming
    --batch-size; at 2, read, and the read's own error (no file decodes) is its row's."""
    from test_stored_samples import _header_set

    from ganeval.memory import physical_memory

    path, files = _header_set(tmp_path, "folder")
    args = ("score", path, "--metrics", "mnist_fd", "--num-samples", 10**6, "--device", "cpu", "--no-progress", "--out",
            tmp_path / "rep")
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", str(10**9))
    code, _, err = cli(*args)
    assert code == 2 and f"{3 * 8000 * 8000 * files / 2**30:.3g} GiB for the stored set's {files} images as read)" in err
    monkeypatch.delenv("GANEVAL_HOLD_IMAGES_MB")
    code, _, err = cli(*args)
    most = int((physical_memory() or 2**40) // 2 // (2 * 3 * 8000 * 8000))  # two decoded batches in half the memory
    assert code == 2 and "--batch-size 100: one batch of 100 images in the feature networks (and two of them decoded " \
        "from the stored set) would hold at least" in err and err.strip().count("\n") == 0, err
    assert 1 <= int(err.split("give --batch-size ")[1].split()[0]) <= most
    assert not (tmp_path / "rep").exists()
    code, _, err = cli(*args, "--batch-size", "2")
    assert code != 0 and "would hold" not in err and f"no readable images ({files} unreadable" in err, err
    row = json.loads((tmp_path / "rep" / "summary.json").read_text())["rows"][0]  # its error row, as any bad source
    assert row["status"] == "error" and f"no readable images ({files} unreadable" in row["error"]


def test_the_memory_check_counts_two_batches_of_a_streamed_set() -> None:
    """100,000 stored 256×256 RGB samples held: 19.7 GB of images, refused on 8 GiB; streamed: two batches of them
    (39 MB at --batch-size 100) whatever N, passed; streamed at a batch size whose two batches do not fit, refused
    naming --batch-size and a size that fits."""
    from ganeval.errors import GanevalError
    from ganeval.memory import check_memory

    args = dict(have=8 * 2**30, processes=1, image_bytes=3 * 256 * 256, stored_images=100_000)
    with pytest.raises(GanevalError, match="--num-samples 100000 would hold"):
        check_memory(100_000, 0, ["mnist_fd"], 100, **args)
    check_memory(100_000, 0, ["mnist_fd"], 100, streamed=True, **args)
    with pytest.raises(GanevalError, match=r"--batch-size 50000: .*two of them decoded") as exc:
        check_memory(100_000, 0, ["mnist_fd"], 50_000, streamed=True, **args)
    most = int(str(exc.value).split("give --batch-size ")[1].split()[0])
    check_memory(100_000, 0, ["mnist_fd"], most, streamed=True, **args)


@pytest.mark.parametrize("change", ["pixels", "removed"])
def test_a_set_changed_while_scored_fails_its_row_and_caches_nothing(tmp_path: Path, cli, monkeypatch, change: str) -> None:
    """The features are cached under the SHA-256 of the first pass: a file rewritten or removed before the batches
    are read fails the source (its row names why) at its last batch, before any cache entry is written under it."""
    from PIL import Image

    folder = _digits(tmp_path / "digits", 100)
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", "0")
    real_grid = StreamedImageSamples.grid

    def grid_then_change(self, k, batch_size):  # the grid is read after opening, before the batches
        if change == "pixels":
            Image.fromarray(np.full((28, 28), 255, np.uint8)).save(folder / "0050.png")
        else:
            (folder / "0050.png").unlink()
        return real_grid(self, k, batch_size)

    monkeypatch.setattr(StreamedImageSamples, "grid", grid_then_change)
    code, _, err = cli("score", folder, "--metrics", "mnist_fd", "--num-samples", "100", "--batch-size", "32",
                       "--bootstrap", "0", "--device", "cpu", "--no-progress", "--out", tmp_path / "rep")
    row = json.loads((tmp_path / "rep" / "summary.json").read_text())["rows"][0]
    assert code != 0 and row["status"] == "error" and "its images changed while being scored" in row["error"], err
    assert not list((tmp_path / "cache").rglob("*.npz")) and not list((tmp_path / "cache").rglob("*.npy"))


def test_an_unchanged_set_passes_the_check_at_its_last_batch(tmp_path: Path) -> None:
    path = _set(tmp_path / "s", 30, truncated=(4,), junk=(9,))
    samples = StreamedImageSamples(path, 30)
    assert samples.n == 28 and [len(samples.batch(b, 8).images) for b in range(4)] == [8, 8, 8, 4]
    assert samples.stream.pass_digest == samples.sha256


@pytest.mark.usefixtures("own_cache")
def test_recursive_scores_a_class_per_folder_tree_as_one_set(tmp_path: Path, cli, monkeypatch) -> None:
    """``score TREE --recursive`` (``recursive=True``): every image below it (hidden folders left out) in natural
    order of its path, held or streamed, as one sample set; the same SHA-256 and scores as a zip of the tree. Without
    it the tree is refused with the hint; with checkpoints, the flag is refused as read by nothing."""
    import zipfile

    from synthetic import write_bank_checkpoint

    from ganeval import score
    from ganeval.errors import GanevalError

    digits = load_mnist("test")[0][:90]
    tree = tmp_path / "tree"
    for c in range(3):
        _digits_from(tree / f"class_{c}", digits[30 * c:30 * c + 30])
    _digits_from(tree / ".hidden", digits[:5])
    (tree / "class_1" / "0007.png").write_bytes(b"junk")
    with zipfile.ZipFile(tmp_path / "tree.zip", "w") as zf:
        for p in sorted(tree.rglob("*.png")):
            if ".hidden" not in p.parts:
                zf.write(p, p.relative_to(tmp_path).as_posix())
    opts = dict(metrics=("mnist_fd", "modes"), num_samples=100, bootstrap=0, device="cpu", progress=False)
    rows = {}
    for tag, target, mb, recursive in (("held", tree, "512", True), ("streamed", tree, "0", True),
                                       ("zip", tmp_path / "tree.zip", "512", None)):
        monkeypatch.setenv("GANEVAL_HOLD_IMAGES_MB", mb)
        df = score(target, recursive=recursive, **opts)
        rows[tag] = df[["n_samples", "n_bad_images", "sha256", "mnist_fd", "modes_covered"]].iloc[0].to_dict()
    assert rows["held"] == rows["streamed"] and rows["held"]["n_samples"] == 89 and rows["held"]["n_bad_images"] == 1
    assert rows["zip"] == rows["held"]
    with pytest.raises(GanevalError, match="pass --recursive"):
        score(tree, **opts)
    gate = ("gate", tree, "--metrics", "mnist_fd", "--max-mnist-fd", "1000", "--num-samples", "100", "--bootstrap", "0",
            "--device", "cpu", "--no-progress", "--out", tmp_path / "gate")
    code, out, err = cli(*gate, "--recursive")
    assert code == 0 and "PASS max_mnist_fd" in out, err
    code, _, err = cli(*gate)
    assert code == 2 and "pass --recursive" in err
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, _, err = cli("score", tmp_path / "run", "--recursive", "--metrics", "mnist_fd", "--device", "cpu")
    assert code == 2 and "--recursive is read only by folders of sample images" in err


def _digits_from(folder: Path, images: np.ndarray) -> None:
    """``images`` as ``folder/0000.png``, …"""
    from PIL import Image

    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:04d}.png")
