"""Nearest training images of the report's samples: the classic memorisation check ("are these samples copies
of training digits?") shown beside the copying test's numbers.

Distances are Euclidean in pixel space with pixels scaled to [0, 1] (so 0 means an exact copy). The same is
measured for the first held-out real images, which gives the scale of an honest nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: How many held-out images give the "honest nearest neighbour" scale.
HELDOUT_SHOWN = 30
#: How many of a checkpoint's samples nearest to the training set the report shows.
CLOSEST_SHOWN = 20


@dataclass
class Neighbours:
    """Samples' nearest training images (same order as the samples) and their distances."""

    samples: np.ndarray  # (k, H, W) uint8: the samples shown
    images: np.ndarray  # (k, H, W) uint8: their nearest training images
    distances: np.ndarray  # (k,) float


def nearest_images(queries: np.ndarray, train: np.ndarray | Iterable[np.ndarray], batch: int = 8192) -> Neighbours:
    """For each ``(H, W)`` uint8 query, its nearest training image in pixel L2 (pixels / 255); ``train``: one array
    of ``(H, W)`` images, or such arrays one after another (a set read batch by batch, never held whole)."""
    q = torch.from_numpy(np.asarray(queries, dtype=np.float32).reshape(len(queries), -1) / 255.0)
    best_d = torch.full((len(q),), float("inf"))
    best = np.zeros((len(q), *np.asarray(queries).shape[1:]), np.uint8)
    chunks = (train[s:s + batch] for s in range(0, len(train), batch)) if isinstance(train, np.ndarray) else train
    for chunk in chunks:
        if not len(chunk):
            continue
        t = torch.from_numpy(np.asarray(chunk).reshape(len(chunk), -1).astype(np.float32) / 255.0)
        d, i = torch.cdist(q, t, compute_mode="donot_use_mm_for_euclid_dist").min(1)
        better = d < best_d  # strictly: of equal distances the earliest image is kept, as in one array
        best_d[better] = d[better]
        best[better.numpy()] = np.asarray(chunk)[i[better].numpy()]
    return Neighbours(np.asarray(queries), best, best_d.numpy())


def comparable(samples: np.ndarray | None, train: np.ndarray | tuple[int, ...] | None) -> bool:
    """Whether samples and training images (an array of them, or their ``(H, W)`` size; None: not gray) are both
    gray images of one size (else no pixel comparison)."""
    size = train.shape[1:] if isinstance(train, np.ndarray) and train.ndim == 3 else train
    return samples is not None and samples.ndim == 3 and isinstance(size, tuple) and samples.shape[1:] == tuple(size)


def set_images(dataset: str) -> np.ndarray:
    """The images of a real image set as ``ganeval score --copy-train`` names it (MNIST split or a path); gray sets
    as ``(N, H, W)``."""
    from ganeval.stats import DATASETS, dataset_images, real_images

    if dataset in DATASETS:
        return dataset_images(dataset)
    images = np.asarray(real_images(dataset).images)  # (N, C, H, W): one channel is gray, else no pixel comparison
    return images[:, 0] if images.ndim == 4 and images.shape[1] == 1 else images


class PixelSet:
    """A real image set for pixel comparisons: an MNIST split or ``.npz`` held, a folder or zip read batch by batch
    (:class:`~ganeval.sources.image_stream.ImageStream`) and never held, nor read at all where its headers say RGB."""

    def __init__(self, dataset: str) -> None:
        from ganeval.real_data import streams
        from ganeval.sources.image_stream import ImageStream

        self.stream = ImageStream(Path(dataset)) if streams(dataset) else None
        self.held = None if self.stream is not None else set_images(dataset)

    @property
    def gray_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of a gray set (None: RGB, or nothing reads)."""
        if self.held is not None:
            return tuple(self.held.shape[1:]) if self.held.ndim == 3 else None  # type: ignore[return-value]
        first = self.stream.head(1) if self.stream.channels == 1 else None  # type: ignore[union-attr]
        return tuple(first.shape[2:]) if first is not None else None  # type: ignore[return-value]

    def nearest(self, queries: np.ndarray) -> Neighbours | None:
        """:func:`nearest_images` of ``queries`` in this set (gray: :attr:`gray_size` is not None); None where a
        streamed set turns out RGB as it is read (an RGB file past the headers' gray ones)."""
        if self.held is not None:
            return nearest_images(queries, self.held)
        from ganeval.sources.image_stream import Recoloured

        try:
            return nearest_images(queries, (b[:, 0].numpy() for _, b in self.stream.batches(8192)))  # type: ignore[union-attr]
        except Recoloured:
            return None

    def take(self, positions: list[int] | None, k: int) -> np.ndarray:
        """The images at ``positions`` (None: the first ``k``) as gray ``(len, H, W)``."""
        if self.held is not None:
            return self.held[positions] if positions else self.held[:k]
        got = self.stream.subset(np.asarray(positions)) if positions else self.stream.head(k)  # type: ignore[union-attr]
        return got[:, 0].numpy()  # type: ignore[index]


def sample_images(source: Any, indices: list[int], device: torch.device, opts: Any) -> np.ndarray:
    """Samples ``indices`` of ``source`` (the rows ``ganeval score`` scored, as it scored them) as gray ``(k, H, W)``
    uint8."""
    from ganeval.sources.base import gray_grid

    samples = source.open(device, opts.num_samples, opts.seed)
    try:
        return gray_grid(samples.scored_rows(indices, opts.batch_size))
    finally:
        samples.close()


def report_neighbours(samples: dict[str, np.ndarray], train_set: str, heldout_set: str | None,
                      heldout_idx: list[int] | None = None) -> tuple[dict[str, Neighbours], float | None]:
    """Nearest training images of each checkpoint's shown ``samples``, and for scale the median distance of the
    held-out images ``heldout_idx`` (the ones nearest to the training set, chosen like the samples; default: the
    first ones) to theirs (None without a comparable held-out set)."""
    train = PixelSet(train_set)
    size = train.gray_size
    shown = {n: s for n, s in samples.items() if comparable(s, size)}
    held = None
    if shown and heldout_set and (other := PixelSet(heldout_set)).gray_size == size:
        held = other.take(heldout_idx, HELDOUT_SHOWN)
    together = train.nearest(np.concatenate([*shown.values(), *([held] if held is not None else [])])) if shown else None
    if together is None:
        return {}, None
    out, start = {}, 0  # one pass over the training set for every checkpoint's samples and the held-out images
    for name, s in shown.items():
        out[name] = Neighbours(s, together.images[start:start + len(s)], together.distances[start:start + len(s)])
        start += len(s)
    scale = float(np.median(together.distances[start:])) if held is not None and len(held) else None
    return out, scale
