"""Outputs made of several files change as a set (:func:`ganeval.atomic.write_set`): statistics and their sidecar,
the floors and the sidecars that copy them, a seed screen's table and summary, an export's statistics, record and
KID features. Each was written one file after another: an interrupt, a full disk or a failed rename between two
writes left a new file beside an old one (a pair that disagrees). Now a failure part-way leaves the earlier files
byte for byte and no temporary file."""

from __future__ import annotations

import errno
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ganeval.atomic import write_set
from ganeval.stats import RefStats, load_stats, save_stats


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


def test_a_file_given_twice_in_a_set_is_refused_before_anything_changes(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """'a' written and './a' taken away in one set: the second entry took the new file away and noted it as the one
    to put back, so a hard link to the earlier file was left beside it ('.a.*.old.tmp') and a failing rename would
    have put back the new file. A file named twice (as a relative and an absolute path too) is the caller's mistake:
    refused before any file is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").write_bytes(b"old a")
    for files in ({"a": b"new a", "./a": None, "mark": b"m"}, {"a": b"one", str(tmp_path / "a"): b"two", "mark": b"m"}):
        with pytest.raises(ValueError, match="a file is given twice"):
            write_set(files)
        assert _contents(tmp_path) == {"a": b"old a"}


def test_statistics_keep_their_sidecar_when_the_npz_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecar was renamed into place before the npz: an npz rename failing (an I/O error) left the new sidecar
    beside the earlier statistics, refused from then on as corrupted. Now the earlier pair stays and loads."""
    out = tmp_path / "s.npz"
    save_stats(out, _stats(1.0))
    before = _contents(tmp_path)
    real = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst) == out and str(src).endswith(".tmp") and not str(src).endswith(".old.tmp"):
            monkeypatch.setattr(os, "replace", real)  # once: putting the earlier file back works
            raise OSError(errno.EIO, "Input/output error", str(src))
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError) as info:
        save_stats(out, _stats(2.0))
    monkeypatch.undo()
    assert info.value.errno == errno.EIO and info.value.filename == str(out)
    assert _contents(tmp_path) == before
    assert load_stats(out).mu[0] == 1.0


@pytest.mark.usefixtures("ctrl_c_raises")
def test_floors_and_their_sidecars_change_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``floors --write`` stopped as the second sidecar is written: floors.json and the first sidecar were new
    already, beside a sidecar with the earlier floors. Now every file is as it was, and the statistics still load."""
    from ganeval.floors import record_floors

    for split in ("test", "train"):
        save_stats(tmp_path / f"mnist-{split}_mnist.npz", _stats(1.0))
    record_floors({"package_version": "old", "mnist": {"fid_test_vs_train": 1.0}}, tmp_path)
    before = _contents(tmp_path)
    _ctrl_c_at(monkeypatch, ".mnist-train_mnist.json.")
    with pytest.raises(KeyboardInterrupt):
        record_floors({"package_version": "new", "mnist": {"fid_test_vs_train": 2.0}}, tmp_path)
    monkeypatch.undo()
    assert _contents(tmp_path) == before
    record_floors({"package_version": "new", "mnist": {"fid_test_vs_train": 2.0}}, tmp_path)
    for split in ("test", "train"):
        assert load_stats(tmp_path / f"mnist-{split}_mnist.npz").meta["floors"] == {"fid_test_vs_train": 2.0}


@pytest.mark.usefixtures("ctrl_c_raises", "mnist_dir")
def test_a_screen_stopped_mid_write_keeps_its_earlier_table_and_summary(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A seed screen re-scored (other --screen-samples) and stopped as screen.json is written: screen.csv was new
    already, beside the earlier screen.json (other numbers, maybe another chosen seed). Now both are as they were."""
    from ganeval.screening import screen_seeds

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "screen"
    kw: dict[str, Any] = {"model": "mlp", "iterations": 8, "checkpoint_every": 4, "log_every": 4, "bootstrap": 0,
                          "finish": False, "device": "cpu", "progress": False}
    screen_seeds(out, [0, 1], 4, num_samples=64, **kw)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert sorted(before) == ["screen.csv", "screen.json"]
    _ctrl_c_at(monkeypatch, ".screen.json.")
    with pytest.raises(KeyboardInterrupt):
        screen_seeds(out, [0, 1], 4, num_samples=80, **kw)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    screen_seeds(out, [0, 1], 4, num_samples=80, **kw)
    assert json.loads((out / "screen.json").read_text())["num_samples"] == 80


@pytest.mark.usefixtures("ctrl_c_raises")
def test_an_export_stopped_at_its_record_leaves_the_earlier_export_whole(tmp_path: Path, cli: Callable[..., Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-export stopped as its ``.ganeval.json`` is written: the new statistics were in place with no record (the
    earlier one taken away). Now the earlier export stays whole; run again, the record is the new statistics'."""
    from ganeval.atomic import sha256_file

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"

    def export(dataset: str) -> tuple[int, str, str]:
        return cli("stats", "--export", dataset, "--to", "torch-fidelity", "--name", "r", "--out", out)

    assert export("mnist-test")[0] == 0
    before = _contents(out)
    _ctrl_c_at(monkeypatch, ".ganeval.json.")
    code, _, err = export("mnist-train")
    monkeypatch.undo()
    assert code == 130 and err.strip().endswith("interrupted"), err
    assert _contents(out) == before
    assert export("mnist-train")[0] == 0
    (stats,) = [p for p in out.iterdir() if not p.name.endswith(".json")]
    side = json.loads(stats.with_name(stats.name + ".ganeval.json").read_text())
    assert side["exported"]["file_sha256"] == sha256_file(stats) and side["statistics"]["dataset"] == "mnist-train"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX locks between processes")
def test_two_processes_writing_one_folder_take_turns(tmp_path: Path) -> None:
    """Two writers of one report folder (``watch --report`` and ``score`` of one run) renamed their files in turn: 2–5
    of 300 rounds left one's summary.json beside the other's scores.csv, and some failed on the vanished mark. A set
    now renames under an exclusive lock of its folder: while another process holds it, nothing of the set lands."""
    import multiprocessing
    import time

    from ganeval.locks import WRITE_LOCK, lock_file, unlock_file

    out = tmp_path / "rep"
    names = ("scores.csv", "report.html", "summary.json")
    write_set({out / n: b"old" for n in names})
    ctx = multiprocessing.get_context("fork")
    fd = lock_file(out / WRITE_LOCK)  # another writer in the middle of its renames
    assert fd is not None and fd >= 0
    try:
        child = ctx.Process(target=write_set, args=({out / n: b"new" for n in names},))
        child.start()
        time.sleep(1.0)
        assert child.is_alive() and {n: (out / n).read_bytes() for n in names} == dict.fromkeys(names, b"old")
    finally:
        unlock_file(out / WRITE_LOCK, fd)  # removed as it lets go: the waiting writer locks the one it makes next
    child.join(30)
    assert child.exitcode == 0
    assert _contents(out) == dict.fromkeys(names, b"new")  # the whole set, and no temporary file

    def interruptible_writer() -> None:  # Ctrl-C raising KeyboardInterrupt, as in a terminal: a job started in the
        signal.signal(signal.SIGINT, signal.default_int_handler)  # background (CI's) inherits SIGINT ignored
        write_set({out / n: b"newer" for n in names})

    fd = lock_file(out / WRITE_LOCK)  # Ctrl-C while a writer waits for the folder: it stops, writing nothing
    try:
        child = ctx.Process(target=interruptible_writer)
        child.start()
        time.sleep(1.0)
        os.kill(child.pid, signal.SIGINT)
        child.join(5)
        assert not child.is_alive() and child.exitcode != 0
    finally:
        unlock_file(out / WRITE_LOCK, fd)
    assert _contents(out) == dict.fromkeys(names, b"new")

    def writer(tag: str, barrier: Any) -> None:
        barrier.wait()
        write_set({out / n: tag.encode() * 1000 for n in names})

    for i in range(20):  # racing writers: one whole set wins every time
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=writer, args=(f"P{k}-{i}|", barrier)) for k in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert [p.exitcode for p in procs] == [0, 0]
        got = _contents(out)
        assert set(got) == set(names) and len(set(got.values())) == 1, {k: v[:8] for k, v in got.items()}
