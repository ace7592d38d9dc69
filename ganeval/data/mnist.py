"""MNIST from the four canonical IDX files, verified before use, downloaded atomically when missing."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ganeval.atomic import atomic_path
from ganeval.cache import offline
from ganeval.errors import DataError

#: SHA-256 of the *uncompressed* canonical files.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Public mirrors, tried in order (the files are served gzipped).
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dim, images: 3 dims


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir`` if given, else ``GANEVAL_DATA_DIR``, else the user cache ``~/.cache/ganeval/mnist``."""
    if data_dir:
        return Path(data_dir)
    env = os.environ.get("GANEVAL_DATA_DIR")
    if env:
        return Path(env)
    root = os.environ.get("GANEVAL_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganeval"
    return base / "mnist"


def _find(data_dir: Path, name: str) -> Path | None:
    for candidate in (data_dir / f"{name}.gz", data_dir / name):
        if candidate.exists():
            return candidate
    return None


def _read_raw(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except IsADirectoryError as exc:
        raise DataError(f"{path}: is a folder, not a data file") from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # the content: a flipped byte can give zlib.error
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {exc}); file is truncated or corrupted") from exc
    except OSError as exc:  # the file system's reason (permission denied, I/O error...), not a guess at the content
        raise DataError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from exc


def parse_idx(raw: bytes, path: str | os.PathLike[str] = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (uint8 payload) into an array, checking magic number and size."""
    if len(raw) < 8:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise DataError(f"{path}: wrong magic number {magic:#010x} (expected 0x00000801 or 0x00000803)")
    ndim = _MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)  # Python ints: np.prod wrapped past 2**64 and (2**31, 2**31, 4) "matched"
    if len(raw) != expected:
        raise DataError(f"{path}: size {len(raw)} bytes does not match its header ({expected} bytes); truncated or corrupted")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _download(name: str, dest_dir: Path, mirrors: tuple[str, ...]) -> Path:
    """Download ``name.gz`` into ``dest_dir``, verified before the atomic rename."""
    if offline():
        raise DataError(f"{dest_dir / (name + '.gz')}: missing, and GANEVAL_OFFLINE=1 forbids downloading it")
    from tqdm import tqdm

    dest = dest_dir / f"{name}.gz"
    errors = []
    for mirror in mirrors:
        url = mirror + name + ".gz"
        try:
            with atomic_path(dest) as tmp:
                with urllib.request.urlopen(url, timeout=30) as resp, open(tmp, "wb") as out:
                    total = int(resp.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {name}", leave=False) as bar:
                        while block := resp.read(1 << 16):
                            out.write(block)
                            bar.update(len(block))
                raw = _read_raw_gz(tmp, url)
                parse_idx(raw, url)
                _verify(url, name, raw)
            return dest
        except (OSError, http.client.HTTPException, DataError) as exc:
            errors.append(f"{url}: {exc}" if isinstance(exc, OSError | http.client.HTTPException) else str(exc))
    raise DataError(f"{dest}: download failed from every mirror ({'; '.join(errors)})")


def _read_raw_gz(path: Path, url: str) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{url}: downloaded file is not valid gzip ({exc})") from exc


def _verify(path: Path | str, name: str, raw: bytes) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_FILES[name]:
        raise DataError(f"{path}: SHA-256 mismatch (got {digest[:16]}…, expected {MNIST_FILES[name][:16]}…)")


def load_idx_file(data_dir: Path, name: str, download: bool = True, mirrors: tuple[str, ...] = MIRRORS) -> np.ndarray:
    """Load and verify one canonical MNIST file, downloading it when missing."""
    path = _find(data_dir, name)
    if path is None:
        if not download:
            raise DataError(f"{data_dir / name}: missing (looked for {name}.gz and {name})")
        path = _download(name, data_dir, mirrors)
    raw = _read_raw(path)
    array = parse_idx(raw, path)  # structural errors (magic, size) first: they say more than a checksum
    _verify(path, name, raw)
    return array


def load_mnist(
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: tuple[str, ...] = MIRRORS,
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 of an MNIST split (``train`` or ``test``)."""
    if split not in _SPLIT_FILES:
        raise DataError(f"unknown MNIST split {split!r} (expected 'train' or 'test')")
    root = resolve_data_dir(data_dir)
    img_name, lab_name = _SPLIT_FILES[split]
    images = load_idx_file(root, img_name, download, mirrors)
    labels = load_idx_file(root, lab_name, download, mirrors)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{root}: {img_name} and {lab_name} disagree (shapes {images.shape} and {labels.shape})")
    return images, labels


def mnist_checksum(split: str = "train") -> str:
    """The SHA-256 of a split's image file, as recorded in checkpoints and statistics."""
    if split not in _SPLIT_FILES:
        raise DataError(f"unknown MNIST split {split!r} (expected 'train' or 'test')")
    return MNIST_FILES[_SPLIT_FILES[split][0]]
