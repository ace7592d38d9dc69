"""Report writes that fail part-way (a full disk, here a file-size limit): the earlier report stays whole, byte for
byte (the folder once held the new tables beside the earlier page, its ``summary.json`` / ``compare.json`` removed),
and the one-line error names the file that could not be written."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from synthetic import write_bank_checkpoint
from test_report_html import make_result

from ganeval.atomic import write_text
from ganeval.report import write_reports

resource = pytest.importorskip("resource")  # RLIMIT_FSIZE: POSIX only
LIMIT = 64 * 1024  # above the tables' sizes, below report.html's (≈ 115 KB with its images)


@contextlib.contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    """``ulimit -f`` for this process: a longer write fails with EFBIG (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_atomic_write_error_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "big.txt"
    with file_size_limit(1024), pytest.raises(OSError) as info:
        write_text(target, "x" * 4096)
    assert info.value.errno == errno.EFBIG and info.value.filename == str(target)
    assert str(target) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary



def test_a_short_numpy_write_names_the_file(tmp_path: Path) -> None:
    """``np.save`` into a file (numpy's ``tofile``) cut short raises "N requested and M written", no errno, no file:
    ``stats --save-features`` on a full disk printed only "256000 requested and 10208 written"."""
    import numpy as np

    from ganeval.atomic import atomic_path

    target = tmp_path / "features.npy"
    with file_size_limit(1024), pytest.raises(OSError) as info, atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.zeros(10_000))
    assert info.value.filename == str(target) and info.value.errno == errno.EIO
    assert "write cut short (10000 requested and " in str(info.value) and "is the disk full?" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` (hidden ones too: a temporary file) by name, with its bytes."""
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_write_failing_part_way_leaves_the_earlier_report_whole(tmp_path: Path) -> None:
    old = write_reports(make_result(5), tmp_path)
    before = _contents(tmp_path)
    new = make_result(6)
    with file_size_limit(LIMIT), pytest.raises(OSError) as info:
        write_reports(new, tmp_path)
    assert info.value.errno == errno.EFBIG and info.value.filename == str(old["html"])
    assert _contents(tmp_path) == before  # not the new tables beside the old page; no temporary file
    paths = write_reports(new, tmp_path)  # room again: a complete report
    assert json.loads(paths["json"].read_text())["report"]["html"] == str(paths["html"])


def test_nothing_is_written_when_a_file_cannot_be_rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ganeval.report.html as html

    old = write_reports(make_result(5), tmp_path)
    before = {p: p.read_bytes() for p in old.values()}

    def broken(result: object) -> str:
        raise RuntimeError("cannot render")

    monkeypatch.setattr(html, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_reports(make_result(6), tmp_path)
    assert {p: p.read_bytes() for p in old.values()} == before  # the earlier report, whole and untouched


def test_cli_error_line_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       cli: Callable[..., tuple[int, str, str]]) -> None:
    import ganeval.report

    write_bank_checkpoint(tmp_path / "run", 100)
    args = ("score", tmp_path / "run", "--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 0, "--device", "cpu",
            "--no-progress")
    assert cli(*args)[0] == 0
    report = tmp_path / "run" / "report"
    before = _contents(report)

    def limited(result: object, out: Path) -> dict[str, Path]:
        with file_size_limit(16 * 1024):  # one checkpoint: tables ≈ 10 KB, report.html ≈ 27 KB
            return write_reports(result, out)

    monkeypatch.setattr(ganeval.report, "write_reports", limited)  # what `ganeval score` imports when it writes
    code, _, err = cli(*args)
    assert code == 2 and err.strip().splitlines()[-1] == f"ganeval: error: {report / 'report.html'}: File too large"
    assert _contents(report) == before  # the earlier report, whole


def test_comparison_failing_part_way_leaves_the_earlier_one_whole(tmp_path: Path) -> None:
    from ganeval.comparing import compare
    from ganeval.report.comparison import write_comparison

    a = write_bank_checkpoint(tmp_path / "a", 100)
    b = write_bank_checkpoint(tmp_path / "b", 100, digits=(1, 7))
    out = tmp_path / "cmp"
    comp = compare([a, b], metrics=("mnist_fd",), num_samples=200, bootstrap=0, permutations=0, device="cpu",
                   progress=False, out=out)
    assert (out / "compare.json").exists() and (out / "compare.html").stat().st_size > 24 * 1024
    before = _contents(out)
    comp.summary["date"] = "a later run"
    with file_size_limit(24 * 1024), pytest.raises(OSError) as info:
        write_comparison(comp, out)
    assert info.value.errno == errno.EFBIG and info.value.filename == str(out / "compare.html")
    assert _contents(out) == before  # tables and compare.json as they were; no temporary file


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing can be written into: a chmod 555 folder for a user, /proc/sys for root (whom permissions do
    not stop; it is refused to every user)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    elif Path("/proc/sys").is_dir() and not os.access("/proc/sys", os.W_OK):
        yield Path("/proc/sys")
    else:
        pytest.skip("no folder this user cannot write")


def test_a_folder_that_cannot_be_written_is_refused_before_scoring(tmp_path: Path, unwritable: Path, cli) -> None:
    """A read-only --out (a read-only mount, a folder without write permission) was found by the report's write,
    after all the scoring (an OSError, exit 2, work lost); ganeval watch judged every checkpoint first. Refused now
    before any work, one line naming the folder."""
    from ganeval import score
    from ganeval.errors import GanevalError

    ckpt = write_bank_checkpoint(tmp_path / "run", 1000)
    with pytest.raises(GanevalError, match=f"{unwritable / 'report'}: cannot write reports there: {unwritable}"):
        score(ckpt, out=unwritable / "report", metrics=("mnist_fd",), num_samples=200, bootstrap=0, device="cpu",
              progress=False)
    assert not list((tmp_path / "cache").rglob("*.npz"))  # nothing was scored
    code, out, err = cli("watch", tmp_path / "run", "--out", unwritable / "w", "--settle", "0", "--idle-timeout", "1",
                         "--num-samples", "200", "--device", "cpu")
    assert code == 2 and f"--out {unwritable / 'w'}: {unwritable}" in err and "iteration" not in out, (out, err)


def test_a_folder_at_a_report_files_name_is_refused_before_scoring(tmp_path: Path, cli) -> None:
    """A folder named summary.json in --out was found by the report's rename, after all the scoring (exit 2)."""
    from ganeval.atomic import report_folder
    from ganeval.errors import GanevalError

    ckpt = write_bank_checkpoint(tmp_path / "run", 1000)
    (tmp_path / "rep" / "summary.json").mkdir(parents=True)
    code, _, err = cli("score", ckpt, "--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 0, "--device", "cpu",
                       "--no-progress", "--out", tmp_path / "rep")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / 'rep' / 'summary.json'}: a folder stands where the report file goes; move it away" in err
    assert not list((tmp_path / "cache").rglob("*.npz"))  # nothing was scored
    (tmp_path / "cmp" / "compare.md").mkdir(parents=True)
    code, _, err = cli("compare", ckpt, ckpt, "--metrics", "mnist_fd", "--num-samples", 200, "--device", "cpu",
                       "--no-progress", "--out", tmp_path / "cmp")
    assert code == 2 and "cmp/compare.md: a folder stands where the report file goes" in err, err
    assert report_folder(tmp_path / "rep", Path(), ("scores.csv",)) == tmp_path / "rep"  # compare's names do not block score
    with pytest.raises(GanevalError, match="summary.json: a folder stands"):
        report_folder(tmp_path / "rep", Path())


def test_a_second_ctrl_c_while_an_interrupted_write_cleans_up_leaves_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctrl_c_raises: None) -> None:
    """Ctrl-C while scores.parquet is written, and Ctrl-C again as its temporary file is being removed (users press
    it twice): the second cut the removal short and left ``.scores.parquet.*.tmp`` in the report folder. It now
    waits for the removal of every temporary file, then interrupts as the first did."""
    import signal

    real_fsync, real_exists = os.fsync, os.path.exists
    fsyncs: list[int] = []
    second: list[str] = []

    def fsync(fd: int) -> None:
        real_fsync(fd)
        fsyncs.append(fd)
        if len(fsyncs) == 2:  # scores.csv is written; scores.parquet's bytes are on disk, not yet renamed
            os.kill(os.getpid(), signal.SIGINT)

    def exists(path: str | os.PathLike[str]) -> bool:
        if str(path).endswith(".tmp") and len(fsyncs) >= 2 and not second:
            second.append(str(path))
            os.kill(os.getpid(), signal.SIGINT)  # the cleanup has just begun
        return real_exists(path)

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os.path, "exists", exists)
    with pytest.raises(KeyboardInterrupt):
        write_reports(make_result(5), tmp_path)
    monkeypatch.undo()
    assert second and second[0].endswith(".tmp")
    assert list(tmp_path.iterdir()) == []  # no temporary file, and no report file: none was renamed into place
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
