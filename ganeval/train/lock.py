"""One trainer per run folder: the lock of a hidden file in it (:mod:`ganeval.locks`), held for the whole run.

Two ``ganeval train`` runs started into one empty ``--out`` both passed the "folder is empty" check, then wrote the
same checkpoint names (one failed, "exists with different weights") and one log holding both runs' rows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ganeval.locks import lock_file, unlock_file
from ganeval.train.recipes import TrainError

#: The lock file in a run folder (hidden: listing and scoring a run pass over it); removed when the run ends.
LOCK_NAME = ".ganeval-train.lock"
_HELD: set[tuple[int, str]] = set()  # (process, run folder) held: early stopping and seed screening train in segments


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold the run folder ``out`` (which exists) for this process, or refuse at once when another process holds it;
    within a hold of this process (a run trained in segments) it holds nothing more. Where locks are not available
    (no ``fcntl``, a file system without them) the run goes on unlocked, as before."""
    key = (os.getpid(), os.path.realpath(out))  # a forked child holds nothing of its parent's
    if key in _HELD:
        yield
        return
    path = out / LOCK_NAME
    fd = lock_file(path)
    if fd == -1 or (fd is None and not out.is_dir()):  # held, or the folder went (a failed start of another trainer)
        raise TrainError(f"{out}: another ganeval train is writing this run folder; wait for it to end, or choose "
                         "another --out")
    _HELD.add(key)
    try:
        yield
    finally:
        _HELD.discard(key)
        if fd is not None:
            unlock_file(path, fd)


@contextlib.contextmanager
def held_runs(*outs: Path) -> Iterator[None]:
    """Hold the run folders ``outs`` (made here where missing) across everything the block trains into them: early
    stopping and seed screening train in segments, judging between them (minutes), when another trainer could take a
    folder. Folders made here are removed again when the block fails with them still empty."""
    made: list[Path] = []  # each missing folder on the way to each run folder
    for o in outs:
        while not o.exists() and o not in made:
            made.append(o)
            o = o.parent
    try:
        with contextlib.ExitStack() as stack:
            for o in outs:
                o.mkdir(parents=True, exist_ok=True)
                stack.enter_context(run_lock(o))
            yield
    except BaseException:
        for o in sorted(made, key=lambda p: len(p.parts), reverse=True):  # a folder inside another goes first
            with contextlib.suppress(OSError):
                o.rmdir()
        raise
