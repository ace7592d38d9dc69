"""Nearest training images of the report's samples: the classic memorisation check ("are these samples copies
of training digits?") shown beside the copying test's numbers.

Distances are Euclidean in pixel space with pixels scaled to [0, 1] (so 0 means an exact copy). The same is
measured for the first held-out real images, which gives the scale of an honest nearest neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def nearest_images(queries: np.ndarray, train: np.ndarray, batch: int = 8192) -> Neighbours:
    """For each ``(H, W)`` uint8 query, its nearest ``train`` image in pixel L2 (pixels / 255)."""
    q = torch.from_numpy(np.asarray(queries, dtype=np.float32).reshape(len(queries), -1) / 255.0)
    best_d = torch.full((len(q),), float("inf"))
    best_i = torch.zeros(len(q), dtype=torch.long)
    flat = np.asarray(train).reshape(len(train), -1)
    for start in range(0, len(flat), batch):
        t = torch.from_numpy(flat[start:start + batch].astype(np.float32) / 255.0)
        d, i = torch.cdist(q, t, compute_mode="donot_use_mm_for_euclid_dist").min(1)
        better = d < best_d
        best_d[better], best_i[better] = d[better], i[better] + start
    return Neighbours(np.asarray(queries), np.asarray(train)[best_i.numpy()], best_d.numpy())


def comparable(samples: np.ndarray | None, train: np.ndarray) -> bool:
    """Whether samples and training images are both gray images of one size (else no pixel comparison)."""
    return samples is not None and samples.ndim == 3 and train.ndim == 3 and samples.shape[1:] == train.shape[1:]


def set_images(dataset: str) -> np.ndarray:
    """The images of a real image set as ``ganeval score --copy-train`` names it (MNIST split or a path); gray sets
    as ``(N, H, W)``."""
    from ganeval.stats import DATASETS, dataset_images, real_images

    if dataset in DATASETS:
        return dataset_images(dataset)
    images = np.asarray(real_images(dataset).images)  # (N, C, H, W): one channel is gray, else no pixel comparison
    return images[:, 0] if images.ndim == 4 and images.shape[1] == 1 else images


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
    train = set_images(train_set)
    out = {n: nearest_images(s, train) for n, s in samples.items() if comparable(s, train)}
    scale = None
    if out and heldout_set:
        images = set_images(heldout_set)
        held = images[heldout_idx] if heldout_idx else images[:HELDOUT_SHOWN]
        if comparable(held, train):
            scale = float(np.median(nearest_images(held, train).distances))
    return out, scale
