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
always read, as git does for its index. Passes that decode every image still check their SHA-256 against the one
remembered (``reference.dataset_features``, ``streamed_samples``), so a change made meanwhile is caught.

The decoded images of a pass made to identify a set (its SHA-256 before its images are read) are kept too, where
they fit what a set of samples may hold (:func:`~ganeval.sources.sizing.hold_limit`, ``GANEVAL_HOLD_IMAGES_MB``) and
an eighth of the memory free (shared by a torchrun's processes), all sets together (the oldest used dropped first):
the passes that follow (the features', the report's nearest training images) read them rather than decoding every
file again. They are the images the remembered SHA-256 names, hashed again by each pass.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

#: Files changed this recently (nanoseconds before the identity is taken) make it unusable.
RACY_NS = 2_000_000_000
#: Sets remembered at once (the oldest used is forgotten first).
KEPT = 16
#: At most this share of the memory free (counting what is kept already) holds kept decoded images.
FREE_SHARE = 0.125
_memory: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_pixels: OrderedDict[tuple[Any, ...], tuple[str, np.ndarray]] = OrderedDict()


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
        (dropped, *set_key), _ = _memory.popitem(last=False)
        if dropped == "pass":  # its images are read only with it
            _pixels.pop(tuple(set_key), None)


def pixel_room() -> int:
    """Bytes of decoded images that may be kept, over all sets: :func:`~ganeval.sources.sizing.hold_limit`, and no
    more than :data:`FREE_SHARE` of the memory free now, shared by the processes of a torchrun on this machine (kept
    images only save decoding: they must never be what runs short)."""
    from ganeval.devices import local_processes
    from ganeval.sources.sizing import hold_limit

    room = hold_limit()
    free = _free_memory()
    return room if free is None else min(room, int((free + kept_bytes()) * FREE_SHARE / local_processes()))


def _free_memory() -> int | None:
    """Memory the kernel says is available to a new allocation without swapping (None: it does not say)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def recall_pixels(key: tuple[Any, ...], ident: str | None) -> np.ndarray | None:
    """The decoded images (read-only ``(n, C, H, W)`` uint8) of a whole pass over the set ``key`` with this identity
    (None: none kept, or other files)."""
    if ident is None or (found := _pixels.get(key)) is None or found[0] != ident:
        return None
    _pixels.move_to_end(key)
    return found[1]


def remember_pixels(key: tuple[Any, ...], ident: str | None, images: np.ndarray) -> None:
    """Keep a whole pass's decoded ``images`` of the set ``key`` while its identity is ``ident`` (read only with the
    pass's record, so kept only beside it), dropping the oldest used sets' until all fit :func:`pixel_room` (a set
    larger than that, or with no identity, is not kept)."""
    room = pixel_room()
    _pixels.pop(key, None)
    if ident is None or images.nbytes > room or recall("pass", key, ident) is None:
        return
    images.flags.writeable = False  # handed to every later reader: none may change it
    _pixels[key] = (ident, images)
    while kept_bytes() > room:
        _pixels.popitem(last=False)


def kept_bytes() -> int:
    """Bytes of decoded images kept now, over all sets."""
    return sum(found[1].nbytes for found in _pixels.values())


def forget() -> None:
    """Forget every set, and free the images kept (tests; a caller that wants every set read afresh)."""
    _memory.clear()
    _pixels.clear()
