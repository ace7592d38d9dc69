"""Locks between processes that write one folder: an exclusive ``flock`` on a hidden file in it, removed by its holder.

Used by :func:`ganeval.atomic.write_set` (a report set's renames) and by ``ganeval train`` (one trainer per run folder).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

#: The hidden file a folder's file sets are renamed under (:func:`write_set`), removed by its holder.
WRITE_LOCK = ".ganeval-write.lock"
#: Seconds a set waits for another process's set in the same folder (renames: milliseconds) before going on unlocked.
LOCK_WAIT = 30.0


@contextlib.contextmanager
def folders_locked(paths: list[Path]) -> Iterator[None]:
    """The lock of each folder a set renames into, held while it renames: two processes writing one report folder
    (``watch --report`` and ``score`` of one run) renamed their files in turn, leaving one's summary.json beside the
    other's scores.csv. Taken before Ctrl-C and SIGTERM are held, so a wait can be interrupted; where a folder cannot
    be locked (no ``fcntl``, a file system without locks, a holder that does not let go) the set is renamed unlocked."""
    with contextlib.ExitStack() as stack:
        for folder in sorted({os.path.realpath(p.parent) for p in paths}):
            path = Path(folder) / WRITE_LOCK
            if (fd := lock_file(path, LOCK_WAIT)) is not None and fd >= 0:
                stack.callback(unlock_file, path, fd)
        yield


def lock_file(path: Path, wait: float = 0.0) -> int | None:
    """An open descriptor holding the exclusive lock of the file ``path`` (made if missing); -1 while another process
    still holds it after ``wait`` seconds; None where it cannot be locked (no ``fcntl``, it cannot be made, a file
    system without locks). A file its holder removed (:func:`unlock_file`) while this one waited is no lock on the
    name: the one there now is locked instead."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                return -1
            time.sleep(0.01)
            continue
        except OSError:
            os.close(fd)
            return None
        try:
            here, held = os.stat(path), os.fstat(fd)
            if (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
                return fd
        except OSError:
            pass
        os.close(fd)


def unlock_file(path: Path, fd: int) -> None:
    """Remove the lock file ``path`` (still held, so no one locks it meanwhile) and let go of it."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    os.close(fd)
