"""``ganeval watch`` against what happens around a long watch: a writer that pauses part-way through a checkpoint,
a disk too full for the report or for the private copy of a checkpoint, and a SIGTERM."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthetic import write_bank_checkpoint
from test_report_write_failures import file_size_limit

import ganeval.early_stop as early_stop
from ganeval.early_stop import EarlyStopper
from ganeval.watching import KEEP_NAME, WATCH_NAME, watch

FAST = {"num_samples": 400, "bootstrap": 60, "device": "cpu"}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))


def _old(path: Path, seconds: float = 60.0) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def _half_written(run: Path, iteration: int) -> tuple[Path, bytes]:
    """A checkpoint whose writer stopped half-way for longer than ``--settle``: its path and its whole content."""
    path = write_bank_checkpoint(run, iteration)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return _old(path), whole


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
