"""The real images statistics are made from: a named MNIST split, or your own folder, zip, ``.npz`` or ``.npy``, with
how they are identified in a statistic's sidecar (``dataset``, ``dataset_sha256``, …)."""

from __future__ import annotations

import numbers
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.data import load_mnist, mnist_checksum
from ganeval.errors import GanevalError, StatsError
from ganeval.features.base import iter_batches
from ganeval.sources.samples import array_header, first_images, load_npy, open_npz
from ganeval.sources.sizing import image_set_shape

DATASETS = {"mnist-train": "train", "mnist-test": "test"}
#: Images in each MNIST split (28×28 uint8).
SPLIT_SIZES = {"mnist-train": 60_000, "mnist-test": 10_000}


def dataset_images(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` images of a named real dataset."""
    if dataset not in DATASETS:
        raise StatsError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    return load_mnist(DATASETS[dataset], data_dir)[0]


@dataclass
class RealImages:
    """Real images and how they are identified in a statistic's sidecar (``dataset``, ``dataset_sha256``, …)."""

    images: np.ndarray | torch.Tensor
    meta: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _short_note(what: str, have: int, limit: int | None) -> list[str]:
    """The note that fewer images exist than ``--limit`` asked for."""
    if limit and have < limit:
        return [f"{what}: only {have} images, fewer than the {limit} asked for; using those {have}"]
    return []


def _npz_images(path: Path) -> np.ndarray:
    """The image array of an .npz, chosen as ``ganeval score`` chooses it (its only array, else the first of
    ``sources.samples.NPZ_KEYS``), which must be uint8 (float real images would need a guessed value range)."""
    from ganeval.sources.samples import NPZ_KEYS, npz_image_key

    try:
        with open_npz(path, StatsError) as z:
            keys = list(z.files)
            key = npz_image_key(keys)
            if key is None:
                raise StatsError(f"{path}: {len(keys)} arrays ({', '.join(keys[:6])}); name the images one of "
                                 f"{', '.join(NPZ_KEYS)}")
            arr = z[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise StatsError(f"{path}: not a readable .npz of images ({exc}; object arrays/pickles are refused)") from exc
    if arr.dtype != np.uint8 or not arr.size:
        raise StatsError(f"{path}: real images in an .npz must be a non-empty uint8 array (0..255); "
                         f"{key!r} is {arr.dtype} of shape {arr.shape}")
    return arr


def _npy_images(path: Path) -> np.ndarray:
    """The image array of a ``.npy`` file (one array, as ``ganeval score`` reads a sample set), uint8 as in an .npz."""
    arr = load_npy(path, StatsError)
    if arr.dtype != np.uint8 or not arr.size:
        raise StatsError(f"{path}: real images in a .npy must be a non-empty uint8 array (0..255); it is {arr.dtype} of "
                         f"shape {arr.shape}")
    return arr


def _is_uint8(dtype: np.dtype) -> bool:
    return dtype == np.uint8  # real images: only uint8 (a float's value range would have to be guessed)


def real_images(dataset: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None,
                limit: int | None = None) -> RealImages:
    """A named MNIST split, or your own real images: a folder or zip of PNG/JPEG files, or a uint8 ``.npz``.

    Your own images are identified by the SHA-256 of their decoded pixels (file order as ``ganeval score`` reads
    samples), so statistics record what they were made from and KID/precision-recall can re-read and verify them.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1):
        raise StatsError(f"--limit must be a positive number of images (got {limit!r})")
    if str(dataset) in DATASETS:
        images = dataset_images(str(dataset), data_dir)
        notes = _short_note(str(dataset), len(images), limit)
        images = images[:limit] if limit else images
        name = str(dataset)
        return RealImages(images, {"dataset": name, "split": DATASETS[name], "dataset_sha256": mnist_checksum(DATASETS[name])},
                          notes)
    from ganeval.sources.base import image_digest
    from ganeval.sources.samples import array_images, read_image_set

    path = Path(dataset)
    if not path.exists():
        raise StatsError(f"{path}: no such dataset (use mnist-train, mnist-test, or a folder, zip or .npz of real images)")
    try:
        if path.suffix.lower() in (".npz", ".npy") and path.is_file():
            first = first_images(path, limit, _is_uint8) if limit else None  # --limit N: only N images read
            arr, total = first or ((a := _npz_images(path) if path.suffix.lower() == ".npz" else _npy_images(path)), len(a))
            notes = _short_note(path.name, total, limit)
            images = array_images(arr[:limit] if limit else arr, "0,255", str(path))[0]
        else:
            got = read_image_set(path, limit or 2**62)
            images, notes = got.images, list(got.notes)
            if not limit:  # no N was asked for: all readable images are used, and that is no shortfall
                notes = [n for n in notes if "fewer than the" not in n]
    except GanevalError as exc:
        raise StatsError(str(exc)) from exc
    meta = {"dataset": "custom", "source": str(path.resolve()), "dataset_sha256": image_digest(images),
            "image_shape": list(images.shape[1:])}
    return RealImages(images, meta, notes)


def _array_shape(path: Path) -> tuple[int, ...] | None:
    """The image array's shape in a ``.npy`` or ``.npz`` from its header alone (None: not one that can be read so;
    reading it says why), so an array past memory is refused before it is loaded."""
    found = array_header(path)
    return None if found is None else found[0]


def dataset_shape(dataset: str | os.PathLike[str], recursive: bool = False) -> tuple[int, ...] | None:
    """The images' (N, …) before reading them: an MNIST split's, a ``.npy``/``.npz``'s from its header, a folder's
    (``recursive``: its tree's) or zip's from its listing and headers (:func:`ganeval.sources.sizing.image_set_shape`);
    None where none tells."""
    path = Path(dataset)
    array = path.suffix.lower() in (".npy", ".npz") and path.is_file()
    return ((SPLIT_SIZES[str(dataset)], 28, 28) if str(dataset) in SPLIT_SIZES else _array_shape(path) if array else
            image_set_shape(path, recursive) if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)) else None)


def streams(dataset: str | os.PathLike[str]) -> bool:
    """Whether statistics of ``dataset`` read it batch by batch (a folder or zip of your images) rather than whole."""
    from ganeval.sources.image_stream import is_image_set

    return str(dataset) not in DATASETS and is_image_set(Path(dataset))


class RealBatches:
    """The real images of one statistics pass, as batches: held whole (an MNIST split, an ``.npz``/``.npy``) or
    decoded batch by batch (a folder or zip, :class:`~ganeval.sources.image_stream.ImageStream`: memory no longer
    grows with the set). :attr:`meta`, :attr:`notes` and :attr:`n` are final once a pass has ended."""

    def __init__(self, dataset: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None,
                 limit: int | None = None, recursive: bool = False) -> None:
        from ganeval.sources.image_stream import ImageStream

        self.held: RealImages | None = None
        self.stream: ImageStream | None = None
        if recursive and not Path(dataset).is_dir():
            raise StatsError(f"--recursive reads a folder's tree; {dataset} is not a folder")
        if streams(dataset):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1):
                raise StatsError(f"--limit must be a positive number of images (got {limit!r})")
            try:
                self.stream = ImageStream(Path(dataset), limit, recursive)
            except GanevalError as exc:
                raise StatsError(str(exc)) from exc
            self.source = str(Path(dataset).resolve())
        else:
            self.held = real_images(dataset, data_dir, limit)

    @property
    def expected(self) -> int:
        """Images the pass is sized for (all held; a stream's files whose headers read, up to its limit)."""
        return len(self.held.images) if self.held is not None else self.stream.expected  # type: ignore[union-attr]

    @property
    def n(self) -> int:
        """Images in the statistics."""
        return len(self.held.images) if self.held is not None else self.stream.n  # type: ignore[union-attr]

    def first(self) -> torch.Tensor:
        """One image as a ``(1, C, H, W)`` batch (a feature network's width is known once it has seen one)."""
        if self.held is not None:
            return next(iter_batches(self.held.images[:1], 1))
        first = self.stream.first()  # type: ignore[union-attr]
        if first is None:
            raise StatsError(f"{self.source}: no readable images")
        return first

    def batches(self, batch_size: int, mine: range | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """``(index, batch)`` of the batches in ``mine`` (None: all), in order; a stream raises
        :class:`~ganeval.sources.image_stream.Recoloured` where the pass must be made again."""
        if self.held is not None:
            which = range(-(-len(self.held.images) // batch_size)) if mine is None else mine
            yield from zip(which, iter_batches(self.held.images, batch_size, which), strict=True)
            return
        try:
            yield from self.stream.batches(batch_size, (lambda b: True) if mine is None else (  # type: ignore[union-attr]
                lambda b: b % mine.step == mine.start % mine.step))
        except GanevalError as exc:
            raise StatsError(str(exc)) from exc

    @property
    def meta(self) -> dict[str, Any]:
        """How the images are identified in a sidecar."""
        if self.held is not None:
            return self.held.meta
        s = self.stream
        return {"dataset": "custom", "source": self.source, "dataset_sha256": s.digest(),  # type: ignore[union-attr]
                "image_shape": list(s.shape[1:]), **({"recursive": True} if s.recursive else {})}  # type: ignore[union-attr]

    @property
    def notes(self) -> list[str]:
        """What was left out or short (a stream's once read; no shortfall where no --limit was asked for)."""
        if self.held is not None:
            return self.held.notes
        s = self.stream
        return s.notes if s.limit else [n for n in s.notes if "fewer than the" not in n]  # type: ignore[union-attr]
