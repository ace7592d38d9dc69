"""Stored samples: a folder or zip of PNG/JPEG images, an ``.npz`` or ``.npy``, or an in-memory array.

Images are read in natural file-name order (``img_2`` before ``img_10``); the first N readable ones are
used. Grayscale images stay 1-channel, anything else becomes RGB (alpha dropped, palette expanded); a set
mixing both is scored as RGB. 16-bit grayscale is scaled to 8 bits. Unreadable or truncated files are
counted (``n_bad_images``) and named in a note, never silently dropped.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.errors import GanevalError
from ganeval.sources.base import ImageSamples, convert_output, range_note
from ganeval.sources.decoding import decode_image, decode_threads, decoded  # noqa: F401 - decode_image re-exported
from ganeval.sources.image_stack import ImageStack

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
_DIGIT_RUNS = re.compile(r"(\d+)")
NPZ_KEYS = ("images", "samples", "x", "arr_0")
READ_CHUNK = 1 << 24  # bytes read at a time from a stored array


def natural_key(name: str) -> tuple[list[Any], str]:
    """Sort key treating digit runs as numbers; names it cannot tell apart (``img_1``/``img_01``, ``A``/``a``) fall
    back to the name itself, so the order never depends on how a folder or zip happens to list them."""
    parts: list[Any] = _DIGIT_RUNS.split(name)  # text at even positions, digit runs at odd ones
    parts[0::2] = map(str.lower, parts[0::2])
    parts[1::2] = map(int, parts[1::2])
    return parts, name


def is_image_name(name: str) -> bool:
    """A visible file name with an image extension, in no hidden folder (a zip member's path)."""
    parts = name.split("/")
    return (os.path.splitext(parts[-1])[1].lower() in IMAGE_EXTS
            and not any(p.startswith(".") and p not in (".", "..") for p in parts))


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files directly in ``folder`` (``recursive``: in its whole tree, hidden folders and links to folders
    left out) in natural order of their paths below it, as a zip of the tree lists them; a link to nothing is listed
    too, so that reading it fails and it is counted and named with the other unreadable files rather than silently
    left out."""
    def listed(entry: os.DirEntry[str]) -> bool:  # the name first: a stat only for image names
        return is_image_name(entry.name) and (entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path)))

    if not recursive:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if listed(e)]
        return [folder / name for name in sorted(names, key=natural_key)]
    found: list[str] = []  # paths below the folder, as a zip of the tree names them
    folders = [("", str(folder))]
    while folders:
        below, top = folders.pop()
        try:
            with os.scandir(top) as entries:
                for e in entries:
                    if e.is_dir(follow_symlinks=False):  # links to folders are not followed: no cycles, no set read twice
                        if not e.name.startswith("."):
                            folders.append((f"{below}{e.name}/", e.path))
                    elif listed(e):
                        found.append(below + e.name)
        except OSError:  # a folder that cannot be listed holds nothing readable (as os.walk has it)
            continue
    return [folder / name for name in sorted(found, key=natural_key)]


def subfolder_images(folder: Path) -> bool:
    """Whether a folder with no images of its own holds some in its subfolders (a class-per-folder tree)."""
    return any(is_image_name(name) for top, dirs, names in os.walk(folder) for name in names if Path(top) != folder)


def zip_images(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """A zip's image members in natural name order, each entry by its own record (reading by name gives the last
    entry of a name that occurs twice)."""
    infos = sorted(((natural_key(i.filename), k, i) for k, i in enumerate(zf.infolist()) if not i.is_dir()
                    and is_image_name(i.filename) and not i.filename.startswith("__MACOSX/")), key=lambda t: t[:2])
    return [info for _, _, info in infos]


def _entries(path: Path, recursive: bool = False) -> tuple[int, Iterator[tuple[str, bytes | Exception]]]:
    """How many image files a folder (``recursive``: its tree) or zip lists, and each one's name (its path below the
    folder) and bytes (or why they could not be read) in natural name order, read one at a time; the zip stays open
    until the iterator is exhausted or closed."""
    if path.is_dir():
        files = image_files(path, recursive)
        return len(files), _file_bytes(files, path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise GanevalError(f"{path}: not a readable zip file ({exc})") from exc
    infos = zip_images(zf)
    if not infos:
        zf.close()
        raise GanevalError(f"{path}: no images (.png, .jpg, …) in this zip")
    return len(infos), _member_bytes(path, zf, infos)


def _file_bytes(files: list[Path], folder: Path) -> Iterator[tuple[str, bytes | Exception]]:
    for p in files:
        name = p.relative_to(folder).as_posix()
        try:
            yield name, p.read_bytes()
        except OSError as exc:
            yield name, exc


def _member_bytes(path: Path, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> Iterator[tuple[str, bytes | Exception]]:
    seen: dict[str, int] = {}
    try:
        with zf:
            for info in infos:
                seen[info.filename] = seen.get(info.filename, 0) + 1
                name = info.filename if seen[info.filename] == 1 else f"{info.filename} (entry {seen[info.filename]} of that name)"
                try:
                    yield name, zf.read(info)
                except (zipfile.BadZipFile, OSError, EOFError) as exc:
                    yield name, exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise GanevalError(f"{path}: not a readable zip file ({exc})") from exc


def decoded_images(path: Path, bad: list[tuple[str, str]], enough: Callable[[], bool], recursive: bool = False,
                   threads: int | None = None) -> Iterator[tuple[int, int, str, np.ndarray]]:
    """Each readable image of a folder (``recursive``: its tree) or zip in order, as ``(files listed, this file's
    position, name, image)``, until ``enough()`` (asked before each image is taken; with ``threads`` > 1, default
    :func:`~ganeval.sources.decoding.decode_threads`, a few files past it are decoded ahead and dropped); the
    unreadable files' names and reasons go to ``bad``."""
    count, entries = _entries(path, recursive)
    with contextlib.closing(entries), contextlib.closing(decoded(entries, decode_threads() if threads is None else threads)) as images:
        seen = -1
        while not enough():  # asked before the next file is taken (one at a time: before it is read)
            got = next(images, None)
            if got is None:
                return
            seen, (name, image) = seen + 1, got
            if isinstance(image, str):  # why it could not be read
                bad.append((name, image))
                continue
            yield count, seen, name, image


def read_image_set(path: Path, n: int, recursive: bool = False) -> ImageSamples:
    """The first ``n`` readable images of a folder (``recursive``: its tree) or zip, with notes on bad files and a
    short set. They are decoded
    one at a time into one array sized for the most there can be (``n``, or the image files left when the first one
    reads), so the read holds about one copy of the images (:class:`ImageStack`)."""
    stack: ImageStack | None = None
    bad: list[tuple[str, str]] = []
    with contextlib.closing(decoded_images(path, bad, lambda: (len(stack.names) if stack else 0) >= n, recursive)) as images:
        for count, seen, name, image in images:
            if stack is None:
                stack = ImageStack(min(n, count - seen), str(path))
            stack.add(image, name)
    names = stack.names if stack is not None else []
    notes = image_set_notes(path, bad, len(names), n)
    meta = {"files": len(names) + len(bad), "first": names[0], "last": names[-1]}
    return ImageSamples(stack.images(), meta=meta, notes=notes, n_bad=len(bad))  # type: ignore[union-attr]


def image_set_notes(path: Path, bad: list[tuple[str, str]], read: int, n: int) -> list[str]:
    """The notes on a folder's or zip's read (``bad``: unreadable files' names and reasons; ``read`` of the ``n``
    asked for), or the error where none read."""
    shown = "; ".join(f"{n_}: {why}" for n_, why in bad[:3]) + (" …" if len(bad) > 3 else "")
    if not read:
        raise GanevalError(f"{path}: no readable images ({len(bad)} unreadable{': ' + shown if bad else ''})")
    notes = [f"{path.name}: {len(bad)} unreadable or truncated image(s) left out ({shown})"] if bad else []
    if read < n:
        notes.append(f"{path.name}: only {read} readable images, fewer than the {n} asked for; scoring those {read}")
    return notes


def array_images(arr: Any, output_range: str, what: str) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """uint8 ``(N, H, W)``/``(N, H, W, C)``/``(N, C, H, W)`` or float images → uint8 NCHW, per-image NaN flags, and
    a note when float values do not look like ``output_range`` (the generators' check)."""
    x = _tensor(arr, what)
    given = tuple(x.shape)
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[1] not in (1, 3)):
        raise GanevalError(f"{what}: images of shape {tuple(x.shape)}; expected (N, H, W), (N, H, W, C) or (N, C, H, W)")
    if len(x) and 0 in x.shape[1:]:  # no pixels: nothing to hash, resize or score
        raise GanevalError(f"{what}: images of shape {given} hold no pixels (a height, width or channel count of 0)")
    flags = np.zeros(len(x), bool)
    notes: list[str] = []
    if x.is_floating_point():
        flags = (~torch.isfinite(x)).flatten(1).any(dim=1).numpy()
        notes = [note] if (note := range_note(x, output_range, what, "values")) else []
    elif x.dtype != torch.uint8:  # stored integer pixels must be 0..255 (unlike a generator's, other dtypes are read)
        values = x.numpy()  # torch has no min/max of uint16/32/64, and uint64 above 2**63 wraps in int64
        lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if lo < 0 or hi > 255:
            raise GanevalError(f"{what}: integer images must be 0..255, but these {str(x.dtype).replace('torch.', '')} "
                               f"values span {lo}..{hi}; save uint8 pixels, or floats with --output-range")
        x = x.to(torch.int64).to(torch.uint8)  # int8 cannot hold 255, but every value here is 0..255
    if not x.is_floating_point() and x.numel() and int(x.max()) == 1:  # a bool array says so and is refused
        notes.append(f"{what}: every pixel is 0 or 1, read as 0..255 pixels (near-black images); binary images are "
                     "stored as 0 and 255")
    images, _ = convert_output(x, output_range, what)
    return images.contiguous(), flags, notes


def _tensor(arr: Any, what: str) -> torch.Tensor:
    """An image array or tensor on the host, in native byte order (a big-endian array from a FITS, IDX or MATLAB file
    holds valid images that torch cannot wrap as they are); a dtype that holds no pixels is refused in one line."""
    if isinstance(arr, torch.Tensor):
        x = arr.detach().cpu()
    else:
        a = np.asarray(arr)
        if a.dtype.kind not in "biuf":
            raise GanevalError(f"{what}: images of dtype {a.dtype}; expected uint8 0..255 or floats")
        if a.dtype.kind == "f" and a.dtype.itemsize > 8:  # long double (float128): torch cannot wrap it
            a = a.astype(np.float64)
        a = np.ascontiguousarray(a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("=")))
        with warnings.catch_warnings():  # a read-only array (a memory map, load_mnist's) is wrapped, never written:
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")  # batches are copies of it
            x = torch.from_numpy(a)
    if x.dtype == torch.bool or x.is_complex():
        why = " ({0, 1} read as pixels would be black images)" if x.dtype == torch.bool else ""
        raise GanevalError(f"{what}: images of dtype {str(x.dtype).replace('torch.', '')}; expected uint8 0..255 or "
                           f"floats{why}")
    if x.is_floating_point() and x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        x = x.float()  # float8 tensors: torch has no isfinite or comparisons of them
    return x


def open_npz(path: str | Path | io.BytesIO, error: type[GanevalError] = GanevalError, name: str | Path | None = None) -> Any:
    """``np.load(path)`` of an .npz archive (no pickles; ``path`` may be its bytes, then ``name`` names it), refusing a
    single ``.npy`` array under an .npz name."""
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise error(f"{name or path}: a single .npy array, not an .npz archive of named arrays (write it with np.savez)")
    return z


def npz_image_key(keys: list[str]) -> str | None:
    """Which array of an .npz holds the images: its only one, else the first of ``NPZ_KEYS`` (None: cannot tell)."""
    return keys[0] if len(keys) == 1 else next((k for k in NPZ_KEYS if k in keys), None)


def integer_pixels(path: Path) -> bool | None:
    """Whether the image array of an ``.npy`` or ``.npz`` sample set (the one ``read_npz`` reads) holds integers,
    which are pixels as stored and take no ``--output-range``; from the array's header alone, the pixels unread. None
    where the header does not tell (an unreadable file: scoring reads it and names the problem)."""
    found = array_header(path)
    return None if found is None else found[2].kind in "iu"


def _stored_array(path: Path, stack: contextlib.ExitStack) -> tuple[Any, tuple[int, ...], bool, np.dtype, int] | None:
    """The image array of an ``.npy``/``.npz`` as ``read_npy``/``read_npz`` pick it, its header read: a file object
    (closed with ``stack``) at its first byte of data, its shape, Fortran order, dtype and how many data bytes the file
    holds. None where the header does not tell (an .npz whose images cannot be told apart, another format version);
    OSError, ValueError, KeyError, EOFError or BadZipFile on an unreadable file."""
    if path.suffix.lower() == ".npy":
        fh = stack.enter_context(open(path, "rb"))
        size = os.fstat(fh.fileno()).st_size
    else:
        zf = stack.enter_context(zipfile.ZipFile(path))
        names = zf.namelist()
        key = npz_image_key([n.removesuffix(".npy") for n in names])  # the keys np.load's NpzFile gives them
        if key is None:
            return None
        member = {n.removesuffix(".npy"): n for n in names}[key]
        fh = stack.enter_context(zf.open(member))
        size = zf.getinfo(member).file_size
    read = {(1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(fh))
    if read is None:
        return None
    shape, fortran, dtype = read(fh)
    return fh, tuple(shape), bool(fortran), dtype, size - fh.tell()


def array_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """The shape, Fortran order and dtype of a stored ``.npy``/``.npz`` set's image array, from its header alone (the
    pixels unread); None where the header does not tell (an unreadable file: reading it names the problem)."""
    try:
        with contextlib.ExitStack() as stack:
            found = _stored_array(path, stack)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return None if found is None else found[1:4]


def stored_image_bytes(found: tuple[tuple[int, ...], bool, np.dtype] | None) -> int:
    """Bytes each image of a stored ``.npy``/``.npz`` set holds at least as ``read_npz`` reads it: as stored plus,
    unless uint8, its uint8 conversion; from its header (:func:`array_header`; 0 where it does not tell)."""
    if found is None or found[2].kind not in "biuf":
        return 0
    shape, _, dtype = found
    return int(np.prod(shape[1:], dtype=object)) * (dtype.itemsize + int(dtype != np.uint8))


def first_images(path: Path, limit: int, accept: Callable[[np.dtype], bool] = lambda dtype: True) -> tuple[np.ndarray, int] | None:
    """The first ``limit`` images of a stored ``.npy``/``.npz`` set (its image array, as ``read_npz`` picks it) and
    how many it holds, read alone: the rest is never loaded (a 50,000-image set scored at N = 1,000 read every
    image). None where the header says anything else (a dtype ``accept`` refuses, Fortran order, not 3 or 4
    dimensions, empty, a file shorter than its header says): the whole array is then read, and refused, as before."""
    try:
        with contextlib.ExitStack() as stack:
            found = _stored_array(path, stack)
            if found is None:
                return None
            fh, shape, fortran, dtype, stored = found
            numeric = dtype.kind in "biuf" and not dtype.hasobject and dtype.subdtype is None
            size = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if fortran or not numeric or not accept(dtype) or len(shape) not in (3, 4) or not size or stored < size:
                return None
            arr = np.empty((min(limit, shape[0]), *shape[1:]), dtype)
            view, done = memoryview(arr.reshape(-1).view(np.uint8)), 0
            while done < arr.nbytes and (got := fh.readinto(view[done:done + READ_CHUNK])):
                done += got  # in chunks: a zip member's readinto reads each call's bytes into a copy first
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return (arr, int(shape[0])) if done == arr.nbytes else None


def read_npz(path: Path, output_range: str, limit: int | None = None) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """The image array of an ``.npz`` (its only array, else one named images/samples/x/arr_0); no pickles. With
    ``limit``, only its first ``limit`` images where the array allows (:func:`first_images`)."""
    if limit and (first := first_images(path, limit)) is not None:
        return array_images(first[0], output_range, str(path))
    try:
        with open_npz(path) as z:
            keys = list(z.files)
            key = npz_image_key(keys)
            if not keys:
                raise GanevalError(f"{path}: holds no array; save the images with np.savez(path, images=...)")
            if key is None:
                raise GanevalError(f"{path}: several arrays ({', '.join(keys[:6])}); name the images one of {', '.join(NPZ_KEYS)}")
            arr = z[key]
    except GanevalError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise GanevalError(f"{path}: not a readable .npz of images ({exc}; object arrays/pickles are refused)") from exc
    return array_images(arr, output_range, str(path))


def load_npy(path: Path, error: type[GanevalError] = GanevalError) -> np.ndarray:
    """The one array of a ``.npy`` file (``np.save(path, images)``); no pickles, and an .npz under that name refused."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise error(f"{path}: not a readable .npy array of images ({exc}; object arrays/pickles are refused)") from exc
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise error(f"{path}: an .npz archive under a .npy name; name it .npz")
    return arr


def read_npy(path: Path, output_range: str, limit: int | None = None) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """The images of a ``.npy`` sample set, as ``array_images`` reads them (with ``limit``: as :func:`read_npz`)."""
    if limit and (first := first_images(path, limit)) is not None:
        return array_images(first[0], output_range, str(path))
    return array_images(load_npy(path), output_range, str(path))


def open_array(images: torch.Tensor, flags: np.ndarray, n: int, what: str, notes: list[str] | None = None) -> ImageSamples:
    """The first ``n`` images of ``array_images``' output (with its notes, and one when there are fewer)."""
    notes = list(notes or [])
    if len(images) < n:
        notes.append(f"{what}: only {len(images)} images, fewer than the {n} asked for; scoring those {len(images)}")
    if not len(images):
        raise GanevalError(f"{what}: no images")
    return ImageSamples(images[:n], notes=notes, nonfinite=flags[:n])
