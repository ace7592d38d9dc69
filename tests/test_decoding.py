"""Stored images decoded in a thread pool (sources/decoding.py) come out as decoded one at a time: the same images
and unreadable files in file order, whatever the threads, chunking or where the reader stops."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.sources import decoding
from ganeval.sources.decoding import decoded
from ganeval.sources.samples import decoded_images, read_image_set


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _entries(n: int, side: int, bad: dict[int, bytes | Exception]) -> list[tuple[str, bytes | Exception]]:
    rng = np.random.default_rng(side)
    out: list[tuple[str, bytes | Exception]] = []
    for i in range(n):
        shape = (side, side, 3) if i % 7 == 3 else (side, side)
        out.append((f"f{i}", bad.get(i, _png(rng.integers(0, 256, shape, dtype=np.uint8)))))
    return out


@pytest.mark.parametrize("side", [9, 160])  # 81 bytes: one at a time; 25,600: in the pool
@pytest.mark.parametrize("threads", [2, 5])
def test_threads_give_the_sequential_images_and_reasons_in_order(side: int, threads: int) -> None:
    bad = {0: b"junk first", 5: OSError("cannot read"), 17: b"\x89PNG\r\n\x1a\n", 40: b""}
    entries = _entries(61, side, bad)
    one = list(decoded(iter(entries), 1))
    many = list(decoded(iter(entries), threads))
    assert [n for n, _ in many] == [n for n, _ in one] == [n for n, _ in entries]
    for (_, a), (_, b) in zip(one, many, strict=True):
        assert (a == b) if isinstance(a, str) else np.array_equal(a, b)
    assert [n for n, got in one if isinstance(got, str)] == ["f0", "f5", "f17", "f40"] and one[5][1] == "cannot read"


def test_a_reader_stopping_early_stops_the_pool_and_counts_no_file_past_it(tmp_path: Path, monkeypatch) -> None:
    """``decoded_images`` asks ``enough()`` before each image is taken: with threads, files past the stop are decoded
    ahead but neither yielded nor counted as unreadable; closing drops the tasks not started."""
    folder = tmp_path / "s"
    folder.mkdir()
    for name, data in _entries(200, 160, {3: b"junk", 150: b"junk"}):
        (folder / f"{name}.png").write_bytes(data)  # type: ignore[arg-type]
    calls = []
    real = decoding.decode_image
    monkeypatch.setattr(decoding, "decode_image", lambda data: calls.append(1) or real(data))
    for threads in (1, 3):
        calls.clear()
        bad: list[tuple[str, str]] = []
        taken: list[str] = []
        for _, _, name, _ in decoded_images(folder, bad, lambda taken=taken: len(taken) >= 40, threads=threads):
            taken.append(name)
        assert taken == [f"f{i}.png" for i in range(41) if i != 3] and [b[0] for b in bad] == ["f3.png"]
        assert len(calls) == 41 if threads == 1 else 41 <= len(calls) <= 41 + 1 + decoding.AHEAD * threads


def test_a_held_read_with_threads_is_the_read_one_at_a_time(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    for name, data in _entries(50, 12, {9: b"junk"}):
        (folder / f"{name}.png").write_bytes(data)  # type: ignore[arg-type]
    got = {}
    for threads in (1, 4):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        assert decoding.decode_threads() == threads
        got[threads] = read_image_set(folder, 30)
    assert torch.equal(got[1].images, got[4].images) and got[1].notes == got[4].notes and got[1].n_bad == 1
