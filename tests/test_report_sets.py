"""A report folder changes as a set: every new file is written to a temporary file first, and all are renamed into
place together (signals held), so a failure part-way leaves the earlier report whole, never new tables beside an
earlier run's ``summary.json`` and page. Each file used to be written and renamed in turn (``summary.json`` removed
first): a failure after ``scores.csv`` left the new table beside the old page, no summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_report_html import make_result

from ganeval.atomic import write_set
from ganeval.report import write_reports


def _contents(folder: Path) -> dict[str, bytes]:
    """Every entry of ``folder`` (hidden ones too) by name: a file's bytes, a folder's ``b"<folder>"``."""
    return {p.name: b"<folder>" if p.is_dir() else p.read_bytes() for p in folder.iterdir()}


def test_a_rename_failing_part_way_puts_back_the_files_renamed_before_it(tmp_path: Path) -> None:
    """A folder where report.html goes (the third rename): scores.csv and scores.parquet were in place already and
    summary.json gone; all are put back as they were. Once the folder is out of the way, a run replaces every file."""
    write_reports(make_result(5), tmp_path)
    (tmp_path / "report.html").unlink()
    (tmp_path / "report.html").mkdir()
    before = _contents(tmp_path)
    with pytest.raises(IsADirectoryError) as info:
        write_reports(make_result(6), tmp_path)
    assert info.value.filename == str(tmp_path / "report.html")
    assert _contents(tmp_path) == before  # byte for byte, and no temporary file or link left

    (tmp_path / "report.html").rmdir()
    paths = write_reports(make_result(6), tmp_path)
    assert sorted(_contents(tmp_path)) == ["report.html", "scores.csv", "scores.parquet", "summary.json"]
    assert json.loads(paths["json"].read_text())["n_checkpoints"] == 6
    assert paths["csv"].read_text().count("\n") == 7 and pq.read_table(paths["parquet"]).num_rows == 6
    assert "iter_000600.pt" in paths["html"].read_text()


def test_a_set_writes_into_a_stream_and_replaces_the_files(tmp_path: Path) -> None:
    """A stream among the files (a link to ``/dev/stdout``) is written into once the others are in place; the link
    stays a link."""
    proc_fd = Path("/proc/self/fd")
    if not proc_fd.is_dir():
        pytest.skip("no /proc/self/fd")
    log = tmp_path / "log.txt"
    log.write_text("printed before\n")
    (tmp_path / "a.csv").write_text("old\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        stdout = tmp_path / "stdout"
        stdout.symlink_to(proc_fd / str(fd))
        write_set({tmp_path / "a.csv": b"new\n", stdout: b"the summary\n"})
    finally:
        os.close(fd)
    assert log.read_text() == "printed before\nthe summary\n" and stdout.is_symlink()
    assert (tmp_path / "a.csv").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "log.txt", "stdout"]


def test_an_interrupt_while_the_files_are_written_leaves_the_earlier_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                         ctrl_c_raises: None) -> None:
    """Ctrl-C as the second file's bytes are on disk: nothing renamed, the earlier files as they were."""
    import signal

    write_set({tmp_path / "a": b"old a", tmp_path / "b": b"old b", tmp_path / "mark": b"old mark"})
    real_fsync, synced = os.fsync, []

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(fd)
        if len(synced) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        write_set({tmp_path / "a": b"new a", tmp_path / "b": b"new b", tmp_path / "mark": b"new mark"})
    monkeypatch.undo()
    assert _contents(tmp_path) == {"a": b"old a", "b": b"old b", "mark": b"old mark"}
