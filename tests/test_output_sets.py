"""Outputs made of several files change as a set (:func:`ganeval.atomic.write_set`): statistics and their sidecar,
the floors and the sidecars that copy them, a seed screen's table and summary, an export's statistics, record and
KID features. Each was written one file after another: an interrupt, a full disk or a failed rename between two
writes left a new file beside an old one (a pair that disagrees). Now a failure part-way leaves the earlier files
byte for byte and no temporary file."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ganeval.atomic import write_set
from ganeval.stats import RefStats


def _contents(folder: Path) -> dict[str, bytes]:
    """Every entry of ``folder`` (hidden ones too: a temporary file) by name: a file's bytes, a folder's marker."""
    return {p.name: b"<folder>" if p.is_dir() else p.read_bytes() for p in folder.iterdir()}


def _ctrl_c_at(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Ctrl-C the moment the first file whose name holds ``name`` is synced: its bytes complete, not yet renamed."""
    real = os.fsync

    def fsync(fd: int) -> None:
        real(fd)
        if name in os.path.basename(os.readlink(f"/proc/self/fd/{fd}")):
            monkeypatch.setattr(os, "fsync", real)  # once
            os.kill(os.getpid(), signal.SIGINT)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("no /proc/self/fd")
    monkeypatch.setattr(os, "fsync", fsync)


def _stats(value: float, n: int = 4) -> RefStats:
    return RefStats(np.full(n, value), np.eye(n) * value, {"n": 10, "extractor": "mnist"})


def test_a_set_takes_a_file_away_and_puts_it_back_when_a_rename_fails(tmp_path: Path) -> None:
    """A file given None leaves with the set, and comes back when a later rename fails (a folder where the mark
    goes); a writer is given the open temporary file, in order, so a later one can record what an earlier wrote."""
    (tmp_path / "a").write_bytes(b"old a")
    (tmp_path / "gone").write_bytes(b"old gone")
    (tmp_path / "mark").mkdir()
    before = _contents(tmp_path)
    with pytest.raises(IsADirectoryError) as info:
        write_set({tmp_path / "a": b"new a", tmp_path / "gone": None, tmp_path / "mark": b"new mark"})
    assert info.value.filename == str(tmp_path / "mark") and _contents(tmp_path) == before

    (tmp_path / "mark").rmdir()
    seen: list[int] = []

    def big(fh: Any) -> None:
        fh.write(b"x" * 1000)
        seen.append(fh.tell())

    write_set({tmp_path / "a": big, tmp_path / "gone": None, tmp_path / "mark": lambda fh: fh.write(b"%d" % seen[0])})
    assert _contents(tmp_path) == {"a": b"x" * 1000, "mark": b"1000"}
