"""A folder or zip of images read batch by batch, never held whole: statistics of a set larger than memory.

The batches, the SHA-256 of the pixels and the notes are those of :func:`~ganeval.sources.samples.read_image_set`'s
one array (the same images in the same order, unreadable files left out, a set with any RGB image read as RGB), so
statistics made either way are equal. Colour and size come from the files' headers (every file's; with a limit N,
the first N that read) before the first batch. The SHA-256 is hashed as the images go by, for the count the headers
promise; where a file with a readable header turns out unreadable, that count (part of the hash) was wrong, and a
decode-only pass hashes the set again. Another reader of the same files in the same process takes the headers and
a whole pass's count, notes and SHA-256 from the first (:mod:`ganeval.sources.set_memo`) instead of reading them again,
and the images the pass that identified the set decoded, where they could be kept, instead of decoding every file again.
"""

from __future__ import annotations

import contextlib
import hashlib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.errors import GanevalError
from ganeval.sources import set_memo
from ganeval.sources.samples import decoded_images, image_files, image_set_notes, subfolder_images, zip_images
from ganeval.sources.sizing import header_shape


class Recoloured(Exception):
    """The set's colour turned out other than its headers said (an RGB file after the first N, read in place of an
    unreadable one; the only RGB files unreadable): the pass must be made again with :attr:`ImageStream.channels`."""


def is_image_set(path: Path) -> bool:
    """Whether ``path`` is a folder or zip of images (what :class:`ImageStream` reads; an ``.npz`` is a zip of
    arrays)."""
    return path.is_dir() or (path.is_file() and path.suffix.lower() not in (".npz", ".npy") and zipfile.is_zipfile(path))


def _listing(path: Path, recursive: bool, unread: list[str]) -> list[Path] | None:
    """A folder's image files in the read's order (a note in ``unread`` where subfolders hold images that are not
    read); None for a zip."""
    if not path.is_dir():
        return None
    files = image_files(path, recursive)
    if not recursive and subfolder_images(path):
        if not files:
            raise GanevalError(f"{path}: no images in this folder, but its subfolders hold some: pass --recursive to "
                               "read the whole tree")
        unread.append(f"{path.name}: its subfolders hold images too, not read (--recursive reads the tree)")
    return files


def _readable_shapes(path: Path, limit: int | None, files: list[Path] | None) -> list[tuple[str, tuple[int, int, int]]]:
    """The name and ``(H, W, C)`` of each image file (a folder's ``files``; None: the zip's) whose header reads, in the
    read's order, up to ``limit``."""
    def shapes(names: list[str], opener: Callable[[int], object]) -> list[tuple[str, tuple[int, int, int]]]:
        out: list[tuple[str, tuple[int, int, int]]] = []
        for k, name in enumerate(names):
            if limit and len(out) >= limit:
                break
            try:
                with opener(k) as fh:  # type: ignore[attr-defined]
                    out.append((name, header_shape(fh)))
            except Exception:  # noqa: BLE001 - PIL raises many types for bad files; the read names them
                continue
        return out

    if files is not None:
        return shapes([p.relative_to(path).as_posix() for p in files], lambda k: open(files[k], "rb"))
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zip_images(zf)
            return shapes([i.filename for i in infos], lambda k: zf.open(infos[k]))
    except (zipfile.BadZipFile, OSError) as exc:
        raise GanevalError(f"{path}: not a readable zip file ({exc})") from exc


def _headers(path: Path, limit: int | None, files: list[Path] | None) -> tuple[int, int]:
    """How many image files' headers read (up to ``limit``) and the set's colour (3: any RGB among them, as the
    one-array read holds it); raises where they are of different sizes."""
    take = _readable_shapes(path, limit, files)
    for name, (h, w, _) in take[1:]:
        if (h, w) != take[0][1][:2]:
            raise GanevalError(f"{path}: images of different sizes ({take[0][1][0]}×{take[0][1][1]} in {take[0][0]}, "
                               f"{h}×{w} in {name}); resize them to one size")
    return len(take), 3 if any(s[2] == 3 for _, s in take) else 1


class ImageStream:
    """The first ``limit`` (None: all) readable images of a folder (``recursive``: its tree) or zip, as uint8
    ``(B, C, H, W)`` batches.

    After a full :meth:`batches` pass: :attr:`n` images were read, :attr:`notes` say what was left out, and
    :meth:`digest` is :func:`~ganeval.sources.base.image_digest` of them as one array. ``keep``: the images of the
    pass :meth:`digest` makes may be kept for the passes that follow (:mod:`~ganeval.sources.set_memo`; False: a set
    streamed to hold no more than a batch)."""

    def __init__(self, path: Path, limit: int | None = None, recursive: bool = False, keep: bool = True) -> None:
        self.path, self.limit, self.recursive, self.keep = path, limit, recursive, keep
        self._unread: list[str] = []
        files = _listing(path, recursive, self._unread)
        # What an earlier reader of these same files found (ganeval.sources.set_memo): headers, and a whole pass.
        self._key, self._ident = (str(path.resolve()), limit, recursive), set_memo.identity(path, files)
        headers = set_memo.recall("headers", self._key, self._ident)
        if headers is None:
            headers = _headers(path, limit, files)
            set_memo.remember("headers", self._key, self._ident, headers)
        #: Images the headers promise, and their colour (3: any RGB among them, as the one-array read holds it).
        self.expected, self.channels = headers
        self.n, self.notes, self.first_name, self.last_name = 0, [], "", ""
        self.n_bad = 0  # unreadable files passed over by the last whole pass
        self.size: tuple[int, int] | None = None
        self._digest: str | None = None
        self._read = False  # a whole pass made

    def batches(self, batch_size: int, mine: Callable[[int], bool] = lambda b: True) -> Iterator[tuple[int, torch.Tensor]]:
        """``(index, batch)`` of every batch whose index ``mine`` takes; every image is decoded (the batches' bounds
        depend on which files read) and hashed. Raises :class:`Recoloured` where the colour was wrong."""
        buf: np.ndarray | None = None
        b = filled = 0
        for chw in self._pass():
            if mine(b):
                if buf is None:
                    buf = np.empty((batch_size, *chw.shape), np.uint8)
                buf[filled] = chw
            filled += 1
            if filled == batch_size:
                if buf is not None:
                    yield b, torch.from_numpy(buf)
                b, filled, buf = b + 1, 0, None
        if filled and buf is not None:
            yield b, torch.from_numpy(buf[:filled].copy())

    def subset(self, positions: np.ndarray) -> torch.Tensor:
        """The images at ``positions`` (among those read, in file order) as ``(len, C, H, W)``, in that order, from
        one pass that hashes every image (:meth:`digest`): a reference's real subset without the set in memory. A
        position asked for twice is read once."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        unique, inverse = np.unique(positions, return_inverse=True)
        where = {int(p): k for k, p in enumerate(unique)}
        while True:
            out: np.ndarray | None = None
            try:
                for pos, chw in enumerate(self._pass()):
                    if (k := where.get(pos)) is not None:
                        if out is None:
                            out = np.empty((len(where), *chw.shape), np.uint8)
                        out[k] = chw
            except Recoloured:
                continue
            if out is None or max(where, default=-1) >= self.n:
                raise GanevalError(f"{self.path}: {self.n} readable images, fewer than the {max(where) + 1} the reference "
                                   "was made from")
            return torch.from_numpy(out if np.array_equal(unique, positions) else out[inverse.reshape(-1)])

    def _pass(self, keeping: bool = False) -> Iterator[np.ndarray]:
        """Each image read, C-contiguous ``(C, H, W)`` in the set's colour, hashed on the way; :attr:`n`,
        :attr:`notes` and the digest are set at the end (``keeping``: and the images kept for later passes, where
        they may be). Raises :class:`Recoloured` where the colour was wrong."""
        if (held := self._held()) is not None:  # an earlier whole pass's images, kept: read, not decoded
            yield from self._held_pass(*held)
            return
        hasher, size, rgb_seen = None, None, False
        bad: list[tuple[str, str]] = []
        keep: np.ndarray | None = None  # the images decoded, kept for later passes where they fit
        self.n = 0
        for name, image in self._decoded(bad):
            if size is None:
                size, self.first_name = image.shape[:2], name
                hasher = self._hasher(size)
                keep = self._keeping(size) if keeping else None
            elif image.shape[:2] != size:
                raise GanevalError(f"{self.path}: images of different sizes ({size[0]}×{size[1]} in {self.first_name}, "
                                   f"{image.shape[0]}×{image.shape[1]} in {name}); resize them to one size")
            if image.ndim == 3:
                if self.channels == 1:
                    self.channels = 3
                    raise Recoloured(f"{self.path}: {name} is RGB")
                rgb_seen = True
            chw = _channels_first(image, self.channels)
            hasher.update(memoryview(chw).cast("B"))  # type: ignore[union-attr]
            if keep is not None:
                keep = _kept(keep, self.n, chw)
            self.n += 1
            self.last_name = name
            yield chw
        self.size = size
        self._finish(bad, rgb_seen, hasher, keep)

    def _hasher(self, size: tuple[int, int]) -> hashlib._Hash:
        """A pass's SHA-256, begun with what :func:`~ganeval.sources.base.image_digest` hashes before the pixels: the
        array's dtype and shape, for the count the pass is told to expect."""
        return hashlib.sha256(f"uint8{(self.expected, self.channels, *size)}".encode())

    def _keeping(self, size: tuple[int, int]) -> np.ndarray | None:
        """Room for the images a whole pass promises (:attr:`expected`), where they fit what may be kept
        (:func:`~ganeval.sources.set_memo.pixel_room`) and these files can be told apart from others (None: not kept)."""
        shape = (self.expected, self.channels, *size)
        if not self.keep or self._ident is None or not 0 < int(np.prod(shape)) <= set_memo.pixel_room():
            return None
        return np.empty(shape, np.uint8)

    def _held(self) -> tuple[tuple[Any, ...], np.ndarray] | None:
        """An earlier whole pass over these same files: its record and its kept images (None: not both kept)."""
        record = set_memo.recall("pass", self._key, self._ident)
        images = set_memo.recall_pixels(self._key, self._ident) if record is not None else None
        return (record, images) if images is not None and len(images) == record[1] else None  # type: ignore[index]

    def _held_pass(self, record: tuple[Any, ...], images: np.ndarray) -> Iterator[np.ndarray]:
        """:meth:`_pass` over kept images (read-only): hashed again, so :attr:`pass_digest` is this pass's own."""
        _, _, bad, self.channels, size, self.first_name, last_name = record
        hasher = self._hasher(size)
        self.n = 0
        for chw in images:
            hasher.update(memoryview(chw).cast("B"))
            self.n += 1
            yield chw
        self.size, self.last_name = size, last_name
        self._finish(list(bad), self.channels == 3, hasher)

    def _drain(self) -> None:
        """One whole pass for its count, notes and digest alone (again where the colour was wrong), whose images are
        kept where they may be: a pass made to identify a set is followed by one that reads it (a single pass, as
        ``ganeval stats`` makes, hashes as it reads, and keeps nothing)."""
        while True:
            try:
                for _ in self._pass(keeping=True):
                    pass
                return
            except Recoloured:
                continue

    def first(self) -> torch.Tensor | None:
        """The first readable image as a ``(1, C, H, W)`` batch in the set's colour (None: none reads)."""
        return self.head(1)

    def head(self, k: int) -> torch.Tensor | None:
        """The first ``k`` readable images (fewer where the set holds fewer) as ``(k, C, H, W)`` in the set's colour,
        decoding no more files than that takes (None: none reads)."""
        k = min(k, self.limit) if self.limit else k
        if (held := self._held()) is not None:
            return torch.from_numpy(held[1][:k].copy()) if len(held[1]) else None
        out: list[np.ndarray] = []
        with contextlib.closing(self._decoded([], lambda: len(out) >= k, threads=1)) as images:  # none decoded ahead
            for _, image in images:  # enough() sees each one appended
                out.append(_channels_first(image, self.channels))
        return torch.from_numpy(np.stack(out)) if out else None

    def _decoded(self, bad: list[tuple[str, str]], enough: Callable[[], bool] | None = None,
                 threads: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """Each readable image in order, until ``enough()`` (default: the limit's count read by this pass); the
        unreadable ones' names and reasons go to ``bad``; ``threads``: :func:`decoded_images`'."""
        def limit_read() -> bool:  # asked before each image is taken: one past the first N plays no part
            return bool(self.limit) and self.n >= self.limit  # type: ignore[operator]

        with contextlib.closing(decoded_images(self.path, bad, enough or limit_read, self.recursive, threads)) as images:
            for _, _, name, image in images:
                yield name, image

    def _finish(self, bad: list[tuple[str, str]], rgb_seen: bool, hasher: hashlib._Hash | None,
                keep: np.ndarray | None = None) -> None:
        self.n_bad = len(bad)
        self.notes = image_set_notes(self.path, bad, self.n, self.limit or self.n) + self._unread
        if self.channels == 3 and not rgb_seen:  # the RGB files the headers showed were unreadable: a gray set
            self.channels = 1
            raise Recoloured(f"{self.path}: no RGB image read")
        self._digest = hasher.hexdigest() if hasher is not None and self.n == self.expected else None
        self._read = True
        if self._digest is not None:  # the count hashed is the count read: the digest() of these files
            set_memo.remember("pass", self._key, self._ident, (self._digest, self.n, bad, self.channels, self.size,
                                                                self.first_name, self.last_name))
            if keep is not None and len(keep) == self.n:
                set_memo.remember_pixels(self._key, self._ident, keep)

    def _recalled(self) -> bool:
        """Whether an earlier whole pass over these same files (:mod:`~ganeval.sources.set_memo`) is taken as this
        one's: its count, notes, colour, size and digest."""
        found = set_memo.recall("pass", self._key, self._ident)
        if found is None:
            return False
        self._digest, self.n, bad, self.channels, self.size, self.first_name, self.last_name = found
        self.n_bad = len(bad)
        self.notes = image_set_notes(self.path, bad, self.n, self.limit or self.n) + self._unread
        self._read = True
        return True

    def digest(self) -> str:
        """SHA-256 of the images read as one uint8 ``(n, C, H, W)`` array: :func:`~ganeval.sources.base.image_digest`
        of the one-array read (a decode-only pass where none was made, or where the count the headers promised, part
        of the hash, was wrong)."""
        if self._digest is None and not self._read and not self._recalled():
            self._drain()
        if self._digest is None:
            expected, self.expected = self.expected, self.n
            try:
                self._drain()
            finally:
                self.expected = expected
        return str(self._digest)

    @property
    def pass_digest(self) -> str | None:
        """The SHA-256 the last whole pass hashed (None: none ended, or the count it hashed, :attr:`expected`, was
        not the count read)."""
        return self._digest

    @property
    def unread_notes(self) -> list[str]:
        """The notes on images in subfolders that a folder's read (not ``recursive``) leaves out."""
        return list(self._unread)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n, C, H, W)`` of the images read (after a pass)."""
        return (self.n, self.channels, *(self.size or (0, 0)))


def _kept(keep: np.ndarray, k: int, chw: np.ndarray) -> np.ndarray | None:
    """``keep`` with image ``k`` stored in it (None: more images read than the headers promised, none kept)."""
    if k >= len(keep):
        return None
    keep[k] = chw
    return keep


def _channels_first(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 ``(H, W)`` or ``(H, W, 3)`` → C-contiguous ``(C, H, W)`` (gray repeated over 3 channels in an RGB set)."""
    if image.ndim == 3:
        return np.ascontiguousarray(np.moveaxis(image, 2, 0))
    return np.ascontiguousarray(np.broadcast_to(image, (channels, *image.shape)))
