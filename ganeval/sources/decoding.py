"""Decoding stored images: one file's bytes to uint8 pixels (:func:`decode_image`), and a folder's or zip's files in
order (:func:`decoded`), larger images decoded a few ahead by a thread pool: Pillow's decoders release the GIL, so
they are decoded on as many cores as scoring uses (torch's threads, ``--threads``), as clean-fid's and
torch-fidelity's data loader workers do, while the images still come out in file order, whatever finishes first.
"""

from __future__ import annotations

import io
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

#: Images of up to SMALL bytes decoded are decoded one at a time in the reading thread: for them Python's share of
#: the work (holding the GIL) is most of it, and a pool only adds contention (benchmarks/decode_threads.py). Larger
#: ones go to a pool, at most AHEAD per thread decoded ahead of the one taken.
SMALL, AHEAD = 16 << 10, 2
MAX_THREADS = 8


def decode_threads() -> int:
    """Threads that decode stored images: torch's CPU threads (one per core, or ``--threads``), at most 8."""
    return max(1, min(MAX_THREADS, torch.get_num_threads()))


def declared_bits(img: Any) -> int:
    """Bits per sample a 32-bit integer ('I' mode) image declares: a TIFF's BitsPerSample; 16 for the others Pillow
    reads as 'I' (16-bit PGM/PPM, scaled by Pillow to 0..65535; 16-bit PNG in older Pillow)."""
    tags = getattr(img, "tag_v2", None)
    bits = tags.get(258) if tags is not None else None
    bits = bits[0] if isinstance(bits, tuple) and bits else bits
    return int(bits) if isinstance(bits, int) else 16


def decode_image(data: bytes) -> np.ndarray:
    """Image bytes → uint8 ``(H, W)`` (grayscale) or ``(H, W, 3)``; raises on unreadable or truncated data.

    16-bit data keeps its top 8 bits, whatever the values (the file's declared depth decides, never its content, so
    every image of a set is read on one scale); a 32-bit integer image is refused: it does not say whether it holds
    8-, 16- or 32-bit values, nor a 32-bit float image whether it holds [0, 1], [-1, 1] or 0..255 values."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if img.mode.startswith("I;16"):
            return (np.asarray(img, dtype=np.int64) >> 8).astype(np.uint8)
        if img.mode == "I":
            bits = declared_bits(img)
            if bits > 16:
                raise ValueError(f"a {bits}-bit integer image, whose values may be 8-, 16- or {bits}-bit data: "
                                 "save it as an 8- or 16-bit image")
            arr = np.asarray(img, dtype=np.int64)
            return np.clip(arr >> max(bits - 8, 0), 0, 255).astype(np.uint8)
        if img.mode == "F":  # converted, [0, 1] floats became black 'RGB' images
            raise ValueError("a 32-bit float image, which does not say whether it holds [0, 1], [-1, 1] or 0..255 "
                             "values: save it as an 8- or 16-bit image, or the values in an .npz (with --output-range)")
        if img.mode in ("1", "L", "LA", "La"):
            return np.asarray(img.convert("L"), dtype=np.uint8)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _reason(exc: Exception) -> str:
    """Why an image could not be read, without the object reprs PIL puts in (``<_io.BytesIO object at 0x7f…>``): an
    address differs in every process, so the note, and the summary.json holding it, differed between identical runs."""
    return f"{exc.__class__.__name__}: " + re.sub(r"\s*<[^<>]*\bat 0x[0-9a-fA-F]+>", "", str(exc))


def _one(data: bytes | Exception) -> np.ndarray | str:
    """A file's image, or why it could not be read (its read's error, or its decoding's)."""
    if isinstance(data, Exception):
        return str(data)
    try:
        return decode_image(data)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        return _reason(exc)


def decoded(entries: Iterator[tuple[str, bytes | Exception]], threads: int = 1) -> Iterator[tuple[str, np.ndarray | str]]:
    """Each ``(name, bytes or read error)`` entry as ``(name, image or why it is unreadable)``, in order: one at a
    time until the first readable image, and after it too where it holds at most :data:`SMALL` bytes or ``threads``
    is 1; otherwise in a pool of ``threads`` (the bytes still read here, one file at a time)."""
    for name, data in entries:
        image = _one(data)
        yield name, image
        if isinstance(image, np.ndarray):
            break
    else:
        return
    if threads <= 1 or image.nbytes <= SMALL:
        for name, data in entries:
            yield name, _one(data)
        return
    pending: deque[tuple[str, Future[np.ndarray | str]]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="ganeval-decode") as pool:
        try:
            for name, data in entries:
                pending.append((name, pool.submit(_one, data)))
                while len(pending) > AHEAD * threads:
                    name, future = pending.popleft()
                    yield name, future.result()
            while pending:
                name, future = pending.popleft()
                yield name, future.result()
        finally:  # closed early (enough images): what has not started is dropped
            for _, future in pending:
                future.cancel()
