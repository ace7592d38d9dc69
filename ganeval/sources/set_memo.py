"""What reading an image folder or zip found, remembered for the rest of the process, while its files stay the same.

One run reads a set of your images several times: the copying test's training set is identified (a SHA-256 pass),
then its features are computed (the SHA-256 again, for the cache key, then the features' pass), then its pixels are
searched for nearest neighbours, each reader first reading every file's header. Remembered, the headers are read
once and the SHA-256 pass is made once: what a pass found is reused by a reader of the same set (path, limit,
``recursive``) whose files are the ones that pass read.

"The same files" is told by every image file's name, size, inode, modification and change times (a zip's own),
taken when a reader opens the set: a file rewritten, added, removed or renamed since changes them, and the set is
read again. The change time cannot be set back by a user; a file changed within :data:`RACY_NS` of that moment
(clocks tick coarsely: two writes may share a time) makes the set's identity unusable, so a set being written is
always read, as git does for its index. Passes that read every image still check their SHA-256 against the one
remembered (``reference.dataset_features``, ``streamed_samples``), so a change is caught however it was made.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

#: Files changed this recently (nanoseconds before the identity is taken) make it unusable.
RACY_NS = 2_000_000_000
#: Sets remembered at once (the oldest used is forgotten first).
KEPT = 16
_memory: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def identity(path: Path, files: list[Path] | None) -> str | None:
    """SHA-256 of the names and stats of a folder's image ``files`` (None: ``path`` is a zip, its own stat), or None
    where a file changed within :data:`RACY_NS` or cannot be looked at (nothing is remembered for such a set)."""
    h = hashlib.sha256()
    newest = 0
    for p in files if files is not None else [path]:
        try:
            st = os.stat(p)
        except OSError:  # a link to nothing: read (and named) as unreadable every time
            return None
        newest = max(newest, st.st_ctime_ns, st.st_mtime_ns)
        h.update(f"{p}\0{st.st_size}\0{st.st_ino}\0{st.st_dev}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode())
    if newest >= time.time_ns() - RACY_NS:
        return None
    return h.hexdigest()


def recall(kind: str, key: tuple[Any, ...], ident: str | None) -> Any:
    """What was remembered of ``kind`` for the set ``key`` with this identity (None: nothing, or other files)."""
    if ident is None or (found := _memory.get((kind, *key))) is None or found[0] != ident:
        return None
    _memory.move_to_end((kind, *key))
    return found[1]


def remember(kind: str, key: tuple[Any, ...], ident: str | None, value: Any) -> None:
    """Keep ``value`` of ``kind`` for the set ``key`` while its identity is ``ident`` (None: nothing kept)."""
    if ident is None:
        return
    _memory[(kind, *key)] = (ident, value)
    _memory.move_to_end((kind, *key))
    while len(_memory) > KEPT * 2:  # two kinds per set
        _memory.popitem(last=False)


def forget() -> None:
    """Forget every set (tests; a caller that wants every set read afresh)."""
    _memory.clear()
