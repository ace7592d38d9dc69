"""Outputs that are streams (a FIFO, ``/dev/null``, ``/dev/stdout``): written into, never replaced by a regular file.
An atomic write renames a temporary file over its target; over ``/dev/null`` as root that deleted the system's null
device, and ``--junit /dev/stdout`` replaced the link instead of printing (as another user both were refused)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from ganeval.atomic import output_file, write_text

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")


def _reader(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    """A thread that reads ``fifo`` to its end (a FIFO opened for writing waits for a reader)."""
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, got


def test_junit_into_a_fifo_and_a_link_to_it(tmp_path: Path, cli: Any) -> None:
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    link = tmp_path / "junit.xml"
    link.symlink_to(fifo)
    for target in (fifo, link):
        thread, got = _reader(fifo)
        assert output_file(target, "--junit") == target
        code, _, err = cli("gate", tmp_path / "missing", "--max-fid", "1", "--junit", target)
        thread.join(10)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert got and got[0].startswith(b"<?xml") and b"missing" in got[0]
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()  # neither replaced by a regular file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.fifo", "junit.xml"]  # no temporary left


@pytest.mark.parametrize("relative", [False, True])
def test_a_process_file_link_is_appended_to(tmp_path: Path, relative: bool) -> None:
    """``/dev/stdout`` links to ``/proc/self/fd/1``: the bytes go to what that descriptor is open on (here a file
    opened for appending, as ``>> log`` does), after what was already written, and the link stays (also when the
    link is written relative: ``../../proc/self/fd/N``)."""
    proc_fd = Path("/proc/self/fd")
    if not proc_fd.is_dir():
        pytest.skip("no /proc/self/fd")
    log = tmp_path / "log.txt"
    log.write_text("printed before\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        stdout = tmp_path / "stdout"
        target = proc_fd / str(fd)
        stdout.symlink_to(os.path.relpath(target, tmp_path) if relative else target)
        output_file(stdout, "--junit")
        write_text(stdout, "the XML\n")
    finally:
        os.close(fd)
    assert log.read_text() == "printed before\nthe XML\n"
    assert stdout.is_symlink() and os.readlink(stdout).endswith(f"proc/self/fd/{fd}")
