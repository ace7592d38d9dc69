"""Atomic file writes: a temporary file in the same folder, then ``os.replace``."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from ganeval.interrupts import held_signals
from ganeval.locks import folders_locked
from ganeval.names import REPORT_FILES


def _blocker(path: Path, itself: bool) -> Path | None:
    """The file standing where ``path`` (``itself``) or one of its folders should be: the nearest existing one, or a
    link to nothing (no folder can be made there: ``mkdir`` found it only after the work)."""
    for where in ((path, *path.parents) if itself else path.parents):
        if where.exists():
            return None if where.is_dir() else where
        if where.is_symlink():
            return where
    return None


def _blocking(where: Path) -> str:
    """What stands at ``where`` (a :func:`_blocker`), as the refusal says it."""
    return "is a link to nothing" if where.is_symlink() and not where.exists() else "exists and is not a folder"


#: Where a link chain through ``/proc/<pid>/fd`` or ``/dev/fd`` leads: a process's open file (``/dev/stdout``).
_FD_LINKS = ("/proc/", "/dev/fd/")


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is, or links to, something written into rather than replaced: a device, FIFO or socket
    (``/dev/null``), or a process's open file (``/dev/stdout``, ``>(cmd)``). A rename over it would put a regular
    file in its place (as root: the system's ``/dev/null`` gone, ``/dev/stdout`` no longer the output)."""
    where = str(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if where.startswith(_FD_LINKS):
            return True
        try:
            where = os.path.normpath(os.path.join(os.path.dirname(where), os.readlink(where)))
        except (OSError, ValueError):  # not a link (or nothing there)
            break
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _unwritable(path: Path, itself: bool) -> str | None:
    """Why nothing can be written at ``path`` (``itself``) or into its folder: the nearest existing folder is on a
    read-only file system or not writable by this user; None when it is writable (or a file blocks it: _blocker's).
    A stream (``/dev/null``, ``/dev/stdout``) is written into, not beside: its own permission is what counts."""
    if not itself and is_stream(path):
        return None if os.access(path, os.W_OK) else f"{path} is not writable (permission denied)"
    for where in ((path, *path.parents) if itself else path.parents):
        if not where.exists():
            continue
        if not where.is_dir():
            return None
        if hasattr(os, "statvfs") and os.statvfs(where).f_flag & os.ST_RDONLY:
            return f"{where} is on a read-only file system"
        if not os.access(where, os.W_OK | os.X_OK):
            return f"{where} is not writable (permission denied)"
        return None
    return None


def report_folder(out: str | os.PathLike[str] | None, default: Path,
                  files: Iterable[str] = REPORT_FILES.values()) -> Path:
    """The folder reports go to (``out``, else ``default``), refused at once when a file or a file-blocked path
    stands there, a folder stands at the name of one of its ``files`` (score's report by default), or it cannot be
    written (read-only): checked before scoring, so no hour of work ends in a failed write."""
    from ganeval.errors import GanevalError, as_path

    folder = as_path(out, "out") if out is not None else default
    if (where := _blocker(folder, itself=True)) is not None:
        raise GanevalError(f"{where}: {_blocking(where)}; reports need a folder at {folder}")
    for name in files:
        if (folder / name).is_dir():
            raise GanevalError(f"{folder / name}: a folder stands where the report file goes; move it away")
    if (why := _unwritable(folder, itself=True)) is not None:
        raise GanevalError(f"{folder}: cannot write reports there: {why}")
    return folder


def output_file(path: str | os.PathLike[str], what: str, error: type[Exception] | None = None) -> Path:
    """``path`` as a file to write, refused at once (one line naming ``what``, e.g. ``--out``) when a folder stands
    there, a file blocks a parent folder, or its folder cannot be written: checked before the work, not found by the
    write after it."""
    from ganeval.errors import GanevalError, as_path

    error = error or GanevalError
    path = as_path(path, what, error)
    if path.is_dir():
        raise error(f"{what} {path}: is a folder; give a file path")
    if (where := _blocker(path, itself=False)) is not None:
        raise error(f"{what} {path}: {where} {_blocking(where)}")
    if (why := _unwritable(path, itself=False)) is not None:
        raise error(f"{what} {path}: {why}")
    return path


def output_folder(path: str | os.PathLike[str], what: str, error: type[Exception] | None = None) -> Path:
    """``path`` as a folder to write into, refused at once when it or one of its parents is a file, or it (else its
    nearest existing parent) cannot be written."""
    from ganeval.errors import GanevalError, as_path

    error = error or GanevalError
    path = as_path(path, what, error)
    if (where := _blocker(path, itself=True)) is not None:
        raise error(f"{what} {path}: {where} {_blocking(where)}")
    if (why := _unwritable(path, itself=True)) is not None:
        raise error(f"{what} {path}: {why}")
    return path


def _naming(exc: OSError, path: Path, tmp: str | None) -> OSError:
    """``exc`` naming ``path`` when it names no file or only the temporary one (a write on a full disk raises
    ``[Errno 28]`` without a file name; numpy's ``tofile`` only "N requested and M written"), so the one-line error
    says which file could not be written."""
    if exc.errno is None and exc.filename is None and " requested and " in str(exc):  # numpy's tofile: no errno
        return OSError(errno.EIO, f"write cut short ({exc}): is the disk full?", str(path))
    if exc.errno is None or exc.filename not in (None, tmp):
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))  # same errno, so the same subclass


def _tmp_prefix(path: Path) -> str:
    """``.<name>.``, the name cut to 100 bytes: a legal name of 241-255 bytes grown by mkstemp's and ``.old.tmp``'s
    characters failed ("File name too long") only at the final write, after all the work."""
    return f".{os.fsdecode(os.fsencode(path.name)[:100])}."


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only on success. An ``OSError`` that names
    no file (a full disk, a file-size limit) or the temporary one is raised again naming ``path``. A stream
    (:func:`is_stream`: ``/dev/null``, ``/dev/stdout``) gets the complete bytes appended instead, never replaced."""
    path = Path(path)
    if is_stream(path):
        with _into_stream(path) as tmp:
            yield tmp
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: str | None = None
    try:
        with held_signals():  # an interrupt between making the file and knowing its name would leave it behind
            try:
                fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent)
            except OSError as exc:
                if (named := _naming(exc, path, exc.filename)) is exc:
                    raise
                raise named from exc
            os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        if (named := _naming(exc, path, tmp)) is exc:
            raise
        raise named from exc
    finally:
        with held_signals():  # a second Ctrl-C here left the temporary file behind
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)


@contextlib.contextmanager
def _into_stream(path: Path) -> Iterator[Path]:
    """Yield a temporary path (in the system's temporary folder); its bytes go into the stream ``path`` once the
    block succeeded, appended (``/dev/stdout`` redirected to a file keeps what was printed before)."""
    tmp: str | None = None
    try:
        with held_signals():  # as atomic_path: no interrupt between making the file and knowing its name
            fd, tmp = tempfile.mkstemp(prefix=".ganeval.", suffix=".tmp")
            os.close(fd)
        yield Path(tmp)
        _append(tmp, path)
    except OSError as exc:  # the block's own writes too (a full temporary folder): named as the stream
        if (named := _naming(exc, path, tmp)) is exc:
            raise
        raise named from exc
    finally:
        with held_signals(), contextlib.suppress(OSError):
            if tmp is not None:
                os.unlink(tmp)


def _append(tmp: str, stream: Path) -> None:
    """Append the bytes of ``tmp`` to ``stream`` (what was printed before stays); an error names the stream."""
    try:
        with open(tmp, "rb") as src, open(stream, "ab") as dst:
            shutil.copyfileobj(src, dst)
    except OSError as exc:
        if (named := _naming(exc, stream, tmp)) is exc:
            raise
        raise named from exc


#: What :func:`write_set` puts at a path: its bytes; a writer given the open temporary file (a large array saved
#: straight to disk rather than first into memory), called in the set's order, so it may use what an earlier writer
#: noted (a file's digest); or None: the file there leaves with the set (put back if the set fails).
Content = bytes | Callable[[BinaryIO], object] | None


def write_set(files: Mapping[str | os.PathLike[str], Content]) -> None:
    """Write ``files`` (path: :data:`Content`, in order) as one set, as a report folder must change: every file goes
    to a temporary file beside its target first; only once all are written are they renamed into place (and those
    given None taken away), one after another with Ctrl-C and SIGTERM held. An interrupt or a failed write (a full
    disk) leaves the earlier files whole and no temporary, never new files beside old ones; a rename that fails
    part-way (a folder where a file should go) puts back the files it had replaced or taken away. The last file
    (written, not None) is the set's mark (``summary.json``): its earlier version is taken away before the first
    rename and the new one comes last, so even a kill no handler sees (SIGKILL) between two renames leaves no mark
    beside a mixed set. A stream among them (:func:`is_stream`: a link to ``/dev/stdout``) is written into, after
    the others are in place; a stream is never taken away. Errors name the target, not the temporary file."""
    items = [(Path(p), data) for p, data in files.items()]
    if not items:
        return
    if items[-1][1] is None:
        raise ValueError("write_set: the last file is the set's mark and must be written, not taken away")
    if len({(p.parent.resolve(), p.name) for p, _ in items}) < len(items):  # 'a', './a': one rename's undo lost
        raise ValueError(f"write_set: a file is given twice (as {', '.join(str(p) for p, _ in items)})")
    temps: list[tuple[str, Path, bool]] = []  # (temporary file, target, taken away)
    streams: list[tuple[str, Path]] = []  # (temporary file in the system's folder, stream)
    try:
        for path, data in items:
            stream = is_stream(path)
            if stream and data is None:
                continue
            if not stream:
                path.parent.mkdir(parents=True, exist_ok=True)
            tmp: str | None = None
            try:
                with held_signals():  # an interrupt between making the file and listing it would leave it behind
                    fd, tmp = (tempfile.mkstemp(prefix=".ganeval.", suffix=".tmp") if stream else
                               tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent))
                    if stream:
                        streams.append((tmp, path))
                    else:
                        temps.append((tmp, path, data is None))
                    os.close(fd)
                if data is None:
                    continue  # a name beside the target, where its earlier file waits during the renames
                with open(tmp, "wb") as fh:
                    if callable(data):
                        data(fh)
                    else:
                        fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                if not stream:
                    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
            except OSError as exc:
                if (named := _naming(exc, path, tmp if tmp is not None else exc.filename)) is exc:
                    raise
                raise named from exc
        if temps:
            with folders_locked([path for _, path, _ in temps]), held_signals():  # all renamed, or none: an interrupt waits
                _swap(temps)
            temps = []
        for tmp, path in streams:
            _append(tmp, path)
    finally:
        with held_signals():  # a second Ctrl-C here left temporary files behind
            for tmp, *_ in (*temps, *streams):
                if os.path.exists(tmp):
                    os.unlink(tmp)


def _swap(temps: list[tuple[str, Path, bool]]) -> None:
    """Rename each temporary file over its target (or, ``taken away``, the target's file onto the temporary name),
    the mark's earlier file taken away first (see :func:`write_set`); a failing rename puts back every earlier file
    from a hard link made to it beforehand (where the file system has none, the new file stays) and is raised naming
    its target."""
    earlier: dict[Path, str] = {}  # target: a hard link to the file it held before (or that file, taken away)
    absent: set[Path] = set()  # targets that held nothing
    moved: list[Path] = []  # targets whose earlier file is no longer at its name
    mark_tmp, mark, _ = next((t for t in reversed(temps) if not t[2]), (None, None, True))
    try:
        if mark_tmp is not None and mark is not None:
            _keep(mark, mark_tmp, earlier, absent)
            if mark in earlier:
                os.unlink(mark)
                moved.append(mark)
        for tmp, path, away in temps:
            if away:
                if os.path.isfile(path) or os.path.islink(path):  # a folder there is no file of the set: left alone
                    os.replace(path, tmp)
                    earlier[path] = tmp
                    moved.append(path)
                else:
                    os.unlink(tmp)  # nothing to take away: its name is not needed
                continue
            if path != mark:
                _keep(path, tmp, earlier, absent)
            try:
                os.replace(tmp, path)
            except OSError as exc:
                if (named := _naming(exc, path, tmp)) is exc:
                    raise
                raise named from exc
            if path not in moved:
                moved.append(path)
    except BaseException:
        for path in reversed(moved):
            with contextlib.suppress(OSError):
                if path in earlier:
                    os.replace(earlier.pop(path), path)
                elif path in absent:
                    os.unlink(path)
        raise
    finally:
        for link in earlier.values():
            with contextlib.suppress(OSError):
                os.unlink(link)


def _keep(path: Path, tmp: str, earlier: dict[Path, str], absent: set[Path]) -> None:
    """Note what ``path`` holds before its rename: nothing (``absent``), or a file now also linked at a name beside
    ``tmp`` (``earlier``). A file that cannot be linked (a folder, no hard links on this file system) is noted as
    neither: it cannot be put back."""
    if not os.path.lexists(path):
        absent.add(path)
        return
    link = tmp.removesuffix(".tmp") + ".old.tmp"  # mkstemp's names hold no dot: never another file's temporary
    with contextlib.suppress(OSError):
        os.link(path, link, follow_symlinks=False)
        earlier[path] = link


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
