"""``ganeval watch`` against what happens around a long watch: a writer that pauses part-way through a checkpoint,
a disk too full for the report or for the private copy of a checkpoint, and a SIGTERM."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthetic import write_bank_checkpoint
from test_report_write_failures import file_size_limit
from test_watch import FAST, _old

import ganeval.early_stop as early_stop
from ganeval.early_stop import EarlyStopper
from ganeval.watching import KEEP_NAME, WATCH_NAME, watch

pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _half_written(run: Path, iteration: int) -> tuple[Path, bytes]:
    """A checkpoint whose writer stopped half-way for longer than ``--settle``: its path and its whole content."""
    path = write_bank_checkpoint(run, iteration)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return _old(path), whole


def test_a_checkpoint_seen_half_written_is_judged_once_its_writer_finishes(tmp_path: Path) -> None:
    """A writer paused longer than --settle: the half file failed, and stayed failed for good when it was finished
    (exit 1, nothing judged). A failed file that changes is judged again, while no later iteration is judged; the
    line names the checkpoint, not the watch's private link to it."""
    run = tmp_path / "run"
    path, whole = _half_written(run, 1000)
    lines: list[str] = []

    def emit(line: str) -> None:  # the writer finishes once the half file has been tried
        lines.append(line)
        if line.startswith(str(path)) and "could not be scored" in line:
            path.write_bytes(whole)
            _old(path)

    res = watch(run, EarlyStopper(patience=2, **FAST), interval_s=0.05, idle_timeout_s=1.0, settle_s=1, emit=emit)
    assert res.judged == [1000] and res.failed == {}, lines
    assert KEEP_NAME not in lines[0] and "truncated" in lines[0] and lines[0].count(str(path)) == 1, lines[0]
    assert any("changed since it could not be scored" in line for line in lines)
    assert json.loads((run / WATCH_NAME).read_text())["failed"] == {}


def test_a_failed_checkpoint_still_being_rewritten_when_the_watch_ends_stays_failed(tmp_path: Path) -> None:
    """A failed file that changed is judged again once settled; a watch that ends before that (idle, Ctrl-C,
    SIGTERM) still records it as not judged (exit 1): it was dropped from ``failed`` when the change was seen, so the
    record and the exit code said every checkpoint had been judged."""
    run = tmp_path / "run"
    path, whole = _half_written(run, 1000)

    def emit(line: str) -> None:  # the writer goes on, and is still writing when the watch ends
        if line.startswith(str(path)) and "could not be scored" in line:
            path.write_bytes(whole[: 3 * len(whole) // 4])

    res = watch(run, EarlyStopper(patience=2, **FAST), interval_s=0.05, idle_timeout_s=1.0, settle_s=30, emit=emit)
    assert res.reason == "idle" and res.judged == [] and list(res.failed) == [str(path)]
    assert list(json.loads((run / WATCH_NAME).read_text())["failed"]) == [str(path)]


def test_a_failed_checkpoint_finished_after_a_later_one_was_judged_stays_failed(tmp_path: Path) -> None:
    """Judged in iteration order, each once: a file finished after a later iteration was judged is not judged."""
    run = tmp_path / "run"
    path, whole = _half_written(run, 1000)
    _old(write_bank_checkpoint(run, 2000))

    def emit(line: str) -> None:
        if line.startswith("iteration 2000"):
            path.write_bytes(whole)
            _old(path)

    res = watch(run, EarlyStopper(patience=2, **FAST), interval_s=0.05, idle_timeout_s=0.6, settle_s=0, emit=emit)
    assert res.judged == [2000] and list(res.failed) == [str(path)]


def test_a_report_that_cannot_be_written_does_not_end_the_watch(tmp_path: Path) -> None:
    """A full disk (here a file-size limit: report.html is larger than it) under OUT/report/: the OSError ended the
    watch after the first checkpoint, watch.json said it never ended, and a trainer waiting on the stop file trained
    on. The report is noted as not written; the judging, watch.json and the stop file go on."""
    run, stop = tmp_path / "run", tmp_path / "STOP"
    for it, noise in ((1000, 0.0), (2000, 0.6), (3000, 0.7)):
        _old(write_bank_checkpoint(run, it, noise=noise))
    with file_size_limit(64 * 1024):
        res = watch(run, EarlyStopper(patience=2, threshold=0.1, **FAST), interval_s=0.05, idle_timeout_s=0.6,
                    settle_s=0, stop_file=stop, emit=lambda _: None,
                    report={"metrics": ("mnist_fd",), "num_samples": 400, "bootstrap": 0, "progress": False})
    assert res.reason == "stop rule" and res.judged == [1000, 2000, 3000] and stop.exists()
    assert res.report_errors and str(run / "report" / "report.html") in res.report_errors[0]
    assert "too large" in res.report_errors[0].lower()  # EFBIG, in the system's words
    assert json.loads((run / WATCH_NAME).read_text())["ended"] == "stop rule"
    # the report's files change as a set: not the tables alone (written, the page not), no temporary file
    assert list((run / "report").iterdir()) == []


def test_a_copy_that_fails_part_way_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OUT on another file system (no hard link) with less room than a checkpoint: the failed copy stayed in
    OUT/.ganeval_watch/ and filled the disk, so watch.json could not be written. It is removed; the checkpoint is
    judged where it is."""
    def no_link(src: object, dst: object) -> None:  # what os.link says across file systems
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(early_stop.os, "link", no_link)
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000)
    keep = tmp_path / "out" / KEEP_NAME
    stopper = EarlyStopper(**FAST)
    stopper.keep_dir = keep
    with file_size_limit(64 * 1024):  # the checkpoint is ~1.5 MB
        stopper.observe(ckpt, 1000)
    assert stopper.best == ckpt and stopper.history[0]["verdict"] == "first"
    assert [p for p in keep.rglob("*") if p.is_file()] == []


def test_sigterm_ends_the_watch_as_ctrl_c_does(tmp_path: Path) -> None:
    """``kill`` (or a service or batch-job stop) killed the watch outright: OUT/.ganeval_watch/ (links to, or copies
    of, checkpoints) stayed and watch.json never said the watch ended. Now: the record saved, the folder removed,
    exit 143 (128 + SIGTERM)."""
    run = tmp_path / "run"
    _old(write_bank_checkpoint(run, 1000))
    code, out, err = _sigterm_once_judged(run, ["-m", "ganeval_test_entry"])
    assert code == 128 + signal.SIGTERM, (out, err)
    assert "watch ended (interrupted) after 1 checkpoint(s)" in out
    assert json.loads((run / WATCH_NAME).read_text())["ended"] == "interrupted"
    assert not (run / KEEP_NAME).exists()


def test_a_file_in_the_way_of_what_the_watch_writes_is_refused_before_any_judging(tmp_path: Path, cli) -> None:
    """A file where --out, the stop file's folder or OUT/report should be: found by the first write, it ended the watch
    after the first checkpoint was judged (hours into a run), or when the rule fired, without the stop file."""
    run = tmp_path / "run"
    _old(write_bank_checkpoint(run, 1000))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report").write_text("")
    common = ("--interval", "0.05", "--idle-timeout", "0.5", "--settle", "0", "--num-samples", "200", "--device", "cpu")
    for args, named in (
        (("--out", blocker / "w"), f"--out {blocker / 'w'}: {blocker} exists and is not a folder"),
        (("--stop-file", blocker / "STOP"), f"--stop-file {blocker / 'STOP'}: {blocker} exists and is not a folder"),
        (("--out", tmp_path / "out", "--report"), f"{tmp_path / 'out' / 'report'}: exists and is not a folder"),
    ):
        code, out, err = cli("watch", run, *args, *common)
        assert code == 2 and named in err and "iteration 1000" not in out, (args, out, err)
        assert not (run / WATCH_NAME).exists()


def test_a_finished_run_extended_by_resume_is_not_finished_for_the_watch(tmp_path: Path, mnist_dir: Path) -> None:
    """train --resume --iterations MORE on a finished run: the state file kept saying "iteration 20 of 20" until the
    next checkpoint, so a watch started beside it ended at once as "training finished" and never judged the rest.
    The resumed trainer writes its new planned end at once."""
    import threading

    from ganeval.train.loop import train
    from ganeval.watching import training_target

    out = tmp_path / "mlp"
    kw = {"batch_size": 16, "checkpoint_every": 20, "log_every": 20, "device": "cpu", "progress": False}
    train(out, "mlp", iterations=20, **kw)
    assert training_target(out) == (20, 20)
    seen: set[tuple[int, int] | None] = set()
    done = threading.Event()

    def look() -> None:  # what a watch polling the folder reads while the run is extended
        while not done.is_set():
            seen.add(training_target(out))
            time.sleep(0.002)

    thread = threading.Thread(target=look)
    thread.start()
    try:
        train(out, resume=True, iterations=60, **kw)
    finally:
        done.set()
        thread.join()
    assert (20, 60) in seen, seen  # between the resume and its next checkpoint: not finished
    assert training_target(out) == (60, 60)


def _signal_as_the_folder_is_removed(monkeypatch: pytest.MonkeyPatch, signum: int) -> list[str]:
    """Send ``signum`` to this process as the watch starts removing its private folder; returns what it removed."""
    real = shutil.rmtree
    removing: list[str] = []

    def rmtree(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        if Path(path).name == KEEP_NAME and not removing:
            removing.append(str(path))
            os.kill(os.getpid(), signum)
        real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    return removing


def test_a_second_ctrl_c_while_the_watch_cleans_up_waits_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                ctrl_c_raises: None) -> None:
    """Ctrl-C ends the watch; a second one (pressed again) as it removed its private folder cut that short: the
    folder stayed, watch.json never said the watch ended, and a traceback came out of ``watch``. It now waits."""
    run = tmp_path / "run"
    _old(write_bank_checkpoint(run, 1000))
    removing = _signal_as_the_folder_is_removed(monkeypatch, signal.SIGINT)

    def emit(line: str) -> None:  # the first Ctrl-C, once the first checkpoint is judged (its link is held)
        if line.startswith("iteration 1000") and (run / KEEP_NAME).exists():
            os.kill(os.getpid(), signal.SIGINT)

    try:
        res = watch(run, EarlyStopper(**FAST), interval_s=0.05, idle_timeout_s=60, settle_s=0, emit=emit)
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C came out of watch()")
    assert removing and res.reason == "interrupted" and res.judged == [1000]
    assert not (run / KEEP_NAME).exists()
    assert json.loads((run / WATCH_NAME).read_text())["ended"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_as_the_watch_ends_by_itself_interrupts_after_its_cleanup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                          ctrl_c_raises: None) -> None:
    """A Ctrl-C as a watch that ended by itself (idle) removed its folder cut the removal short and left watch.json
    without why it ended. The record and the folder are now done first; then the Ctrl-C interrupts."""
    run = tmp_path / "run"
    _old(write_bank_checkpoint(run, 1000))
    removing = _signal_as_the_folder_is_removed(monkeypatch, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        watch(run, EarlyStopper(**FAST), interval_s=0.05, idle_timeout_s=0.3, settle_s=0, emit=lambda line: None)
    assert removing and not (run / KEEP_NAME).exists()
    assert json.loads((run / WATCH_NAME).read_text())["ended"] == "idle"


def test_a_second_sigterm_while_the_watch_cleans_up_still_exits_143(tmp_path: Path) -> None:
    """systemd, Kubernetes or a user send SIGTERM again while the watch ends: the second one, as the private folder
    was removed, left the folder behind, watch.json without why it ended, and exit 130 (Ctrl-C's) with no last
    line. Now the cleanup finishes and the watch ends as on one SIGTERM."""
    run = tmp_path / "run"
    _old(write_bank_checkpoint(run, 1000))
    entry = tmp_path / "entry.py"  # the CLI, with SIGTERM sent again as the watch starts removing its folder
    entry.write_text("import os, runpy, shutil, signal\n"
                     "real = shutil.rmtree\n"
                     "def rmtree(path, *args, **kwargs):\n"
                     f"    if os.path.basename(path) == {KEEP_NAME!r}:\n"
                     "        os.kill(os.getpid(), signal.SIGTERM)\n"
                     "    real(path, *args, **kwargs)\n"
                     "shutil.rmtree = rmtree\n"
                     "runpy.run_module('ganeval_test_entry', run_name='__main__')\n")
    code, out, err = _sigterm_once_judged(run, [str(entry)])
    assert code == 128 + signal.SIGTERM, (out, err)
    assert "watch ended (interrupted) after 1 checkpoint(s)" in out and err == "", (out, err)
    assert json.loads((run / WATCH_NAME).read_text())["ended"] == "interrupted"
    assert not (run / KEEP_NAME).exists()


def _sigterm_once_judged(run: Path, entry: list[str]) -> tuple[int, str, str]:
    """Watch ``run`` with the CLI (``entry``: how python runs it), SIGTERM it once its first checkpoint is judged (the
    best's private link held, the watch waiting); its exit code, stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, *entry, "watch", str(run), "--interval", "0.2", "--num-samples", "200",
                             "--bootstrap", "10", "--device", "cpu"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / WATCH_NAME).exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (run / KEEP_NAME).exists()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, out, err


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"report": {"metrics": ["mnist_fd"], "num_sample": 100}}, "report: unknown score option(s) ['num_sample']"),
    ({"report": ["mnist_fd"]}, "report must be a dict of ganeval.score keyword arguments"),
    ({"report": {"metrics": ["mnist_fd"], "out": "elsewhere"}}, "report: out set by the watch itself"),
    ({"until": "2000"}, "--until (an iteration) must be an integer of at least 0 (got '2000')"),
])
def test_report_and_until_mistakes_are_refused_before_judging(tmp_path: Path, kwargs: dict, message: str) -> None:
    """A misspelt report keyword was dropped by the check and failed every report ("report not written") while the
    watch judged on to its end; a report list or an --until string gave a raw AttributeError or TypeError, the
    latter after the first checkpoint had been judged."""
    from ganeval.errors import GanevalError

    run = tmp_path / "run"
    _old(write_bank_checkpoint(run, 1000))
    with pytest.raises(GanevalError, match=re.escape(message)):
        watch(run, EarlyStopper(**FAST), interval_s=0.05, idle_timeout_s=0.6, settle_s=0, emit=lambda _: None, **kwargs)
    assert not (run / WATCH_NAME).exists() and not (run / "report").exists()
