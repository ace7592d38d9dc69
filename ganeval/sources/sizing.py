"""What a stored sample set holds in memory as read, told before reading it (the memory check, ``ganeval.memory``).

A folder or zip of images is sized from its listing and one image's header (no image decoded); an ``.npy``/``.npz``
from its array's header (:func:`ganeval.sources.samples.stored_image_bytes`).
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from ganeval.errors import GanevalError
from ganeval.sources.samples import array_header, image_files, stored_image_bytes, zip_images

#: Headers tried, in file order, for an image set's size: unreadable first files are left out by the read too; as
#: many again, spread over the rest of the set, are looked at for colour (a set mixing both is read as RGB).
HEADER_TRIES = 8
#: Default of :func:`hold_limit`, in MiB.
HOLD_IMAGES_MB = 512
T = TypeVar("T")


def header_shape(fh: IO[bytes]) -> tuple[int, int, int]:
    """``(H, W, C)`` of one image as ``decode_image`` reads it (uint8, C = 1 for grayscale, else 3), from its header
    alone (PIL's ``Image.open`` without ``load``); raises as PIL does on an unreadable header."""
    from PIL import Image

    with warnings.catch_warnings():  # a large image's header is read, not decoded: no decompression bomb here
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(fh) as img:
            gray = img.mode in ("1", "L", "LA", "La", "I", "F") or img.mode.startswith("I;16")
            return img.size[1], img.size[0], 1 if gray else 3


def image_set_shape(path: Path, recursive: bool = False) -> tuple[int, int, int, int] | None:
    """``(files, H, W, C)`` of a folder or zip of images, from its listing and headers alone (no image decoded): H, W
    from the first readable header of its first :data:`HEADER_TRIES` image files, C = 3 where any of those or of as
    many spread over the rest is RGB (the read holds such a set as RGB), else 1; None where no header tells (the
    read then names the problem). ``recursive``: a folder's whole tree."""
    try:
        if path.is_dir():
            files = image_files(path, recursive)
            found = _set_shape([lambda p=p: open(p, "rb") for p in _sampled(files)])
            return (len(files), *found) if found else None
        with zipfile.ZipFile(path) as zf:
            infos = zip_images(zf)
            found = _set_shape([lambda i=i: zf.open(i) for i in _sampled(infos)])
            return (len(infos), *found) if found else None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return None


def _sampled(items: list[T]) -> list[T]:
    """The first :data:`HEADER_TRIES` items, then as many spread evenly over the rest."""
    rest = items[HEADER_TRIES:]
    return items[:HEADER_TRIES] + rest[:: max(1, -(-len(rest) // HEADER_TRIES))]


def _set_shape(opens: list[Callable[[], IO[bytes]]]) -> tuple[int, int, int] | None:
    """``(H, W, C)``: the first header that reads gives H and W, any RGB one C = 3 (None: none reads)."""
    size: tuple[int, int] | None = None
    channels = 1
    for i, opener in enumerate(opens):
        if size is None and i >= HEADER_TRIES:
            return None  # none of the first files reads: as before, the read names the problem
        try:
            with opener() as fh:
                h, w, c = header_shape(fh)
        except Exception:  # noqa: BLE001 - PIL raises many types for bad files; the read leaves them out too
            continue
        size, channels = size or (h, w), max(channels, c)
    return (*size, channels) if size else None


def hold_limit() -> int:
    """Bytes of decoded images up to which a folder or zip of samples is read into one array (one decoding pass);
    a larger set is decoded batch by batch, twice (``ganeval.sources.streamed_samples``). ``GANEVAL_HOLD_IMAGES_MB``
    sets it (default :data:`HOLD_IMAGES_MB`; 0 streams every set)."""
    text = os.environ.get("GANEVAL_HOLD_IMAGES_MB", "").strip()
    if not text:
        return HOLD_IMAGES_MB << 20
    if not text.isdigit():
        raise GanevalError(f"GANEVAL_HOLD_IMAGES_MB must be a whole number of MiB (0 or more), not {text!r}")
    return int(text) << 20


def streams_samples(path: Path, n: int, found: tuple[int, int, int, int] | None | bool = False,
                    recursive: bool = False) -> bool:
    """Whether the first ``n`` images of the folder (``recursive``: its tree) or zip ``path`` (``found``: its
    :func:`image_set_shape`, when already read) are scored batch by batch: held, they would take more than
    :func:`hold_limit` bytes."""
    found = image_set_shape(path, recursive) if found is False else found
    if not found:
        return False  # no header reads: the one-array read names the problem
    files, h, w, c = found  # type: ignore[misc]
    return h * w * c * min(files, n) > hold_limit()


def stored_set_plan(path: Path, kind: str, n: int, recursive: bool = False) -> tuple[int, int | None, bool]:
    """:func:`stored_set_size` of a stored sample set (``recursive``: a folder's whole tree) and whether its first
    ``n`` images are read batch by batch (:func:`streams_samples`), its headers read once."""
    if kind != "images":
        return (*stored_set_size(path, kind), False)
    found = image_set_shape(path, recursive)
    return (found[1] * found[2] * found[3], found[0], streams_samples(path, n, found)) if found else (0, 0, False)


def stored_set_size(path: Path, kind: str) -> tuple[int, int | None]:
    """Bytes each image of a stored sample set (``kind`` images: a folder or zip; npz: an ``.npy``/``.npz``) holds as
    read, and how many images it holds (None: unknown), from headers alone; ``(0, None)`` for any other kind. A folder's
    or zip's first readable image's size stands for all (others of another size are refused as read); it counts as RGB
    where one of the headers looked at is (:func:`image_set_shape`)."""
    if kind == "images":  # decoded into one uint8 (N, C, H, W) array (sources/image_stack.py): each image held once
        found = image_set_shape(path)
        return (found[1] * found[2] * found[3], found[0]) if found else (0, 0)
    if kind == "npz":
        header = array_header(path)
        return stored_image_bytes(header), (int(header[0][0]) if header is not None and header[0] else None)
    return 0, None
