"""One trainer per run folder: an exclusive lock on a hidden file in it, held for the whole run.

Two ``ganeval train`` runs started into one empty ``--out`` both passed the "folder is empty" check, then wrote the
same checkpoint names (one failed, "exists with different weights") and one log holding both runs' rows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ganeval.train.recipes import TrainError

#: The lock file in a run folder (hidden: listing and scoring a run pass over it); removed when the run ends.
LOCK_NAME = ".ganeval-train.lock"


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold the run folder ``out`` (which exists) for this process, or refuse at once when another trainer holds it.
    Where locks are not available (no ``fcntl``, a file system without them) the run goes on unlocked, as before."""
    fd = _locked(out / LOCK_NAME)
    if fd is None:
        yield
        return
    try:
        try:  # a lock on a file another run removed meanwhile (at its end) is no lock on the name: busy, as it was
            same = fd >= 0 and os.stat(out / LOCK_NAME).st_ino == os.fstat(fd).st_ino
        except OSError:
            same = False
        if not same:
            raise TrainError(f"{out}: another ganeval train is writing this run folder; wait for it to end, or choose "
                             "another --out")
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(out / LOCK_NAME)  # still held: a trainer that opened it meanwhile sees it gone once it locks
    finally:
        if fd >= 0:
            os.close(fd)


def _locked(path: Path) -> int | None:
    """The open lock file, exclusively locked; -1 when another process holds it; None where it cannot be locked."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return None  # the run's own writes name the problem
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -1
    except OSError:  # no locks on this file system
        os.close(fd)
        return None
    return fd
