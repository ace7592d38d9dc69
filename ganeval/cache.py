"""Where ganeval keeps its user cache (converted weights, real features, per-checkpoint results)."""

from __future__ import annotations

import contextlib
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ganeval.atomic import atomic_path


def cache_dir(*parts: str, create: bool = True) -> Path:
    """The user cache folder (``GANEVAL_CACHE_DIR`` or ``~/.cache/ganeval``), joined with ``parts`` (made unless
    ``create=False``: reading a cache never needs a folder it cannot make)."""
    root = os.environ.get("GANEVAL_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganeval"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def cache_write(path: Path, write: Callable[[IO[bytes]], None]) -> str | None:
    """Write one cache file atomically; a failure (disk full, a read-only cache) is returned as a note, never raised:
    a cache only saves time, and work already done must not be lost for it."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            write(fh)
    except OSError as exc:
        return (f"cache not written in {cache_dir(create=False)} ({exc.strerror or exc}): results stand, but will be "
                "computed again next time")
    return None


#: What reading a damaged cache entry (truncated, empty, overwritten, unreadable) raises from ``np.load`` and the
#: archive it opens: zip errors, an early end of file, a bad header or member, a failed read. Such an entry is a miss.
CACHE_READ_ERRORS: tuple[type[Exception], ...] = (
    OSError, EOFError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, zlib.error, struct.error,
    NotImplementedError,
)


def discard(path: Path) -> None:
    """Remove a damaged cache entry so it is written again; best effort (an entry that cannot be removed stays a
    miss, and is replaced by the next successful write)."""
    with contextlib.suppress(OSError):
        path.unlink()


def offline() -> bool:
    """True when ``GANEVAL_OFFLINE=1``: never attempt a download."""
    return os.environ.get("GANEVAL_OFFLINE", "") not in ("", "0", "false", "False")
