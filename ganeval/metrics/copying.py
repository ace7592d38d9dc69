"""Data-copying (memorisation) test of Meehan, Chaudhuri & Dasgupta (2020), "A non-parametric test to detect
data-copying in generative models": are generated samples closer to the training images than held-out real
images are?

The feature space is cut into cells by k-means on the training features. In each cell, the distances of
generated samples and of held-out images to their nearest training feature (of that cell) are compared with a
z-scored Mann-Whitney U test. ``C_T`` averages the cells' z-scores, weighted by the share of held-out images per
cell, over the cells holding more than ``min_samples`` generated samples. ``C_T`` ≪ 0: the generator copies
(memorises) training images; ≈ 0: it generalises like held-out data; ≫ 0: it underfits (samples farther from
the training images than real held-out ones). The z-scoring (normal approximation with the authors' continuity
term, no tie correction) follows the authors' reference code, so the numbers are comparable with the paper.

Because the cell weights sum to one, C_T has variance at most 1 under the null hypothesis, so C_T < −3 is
significant copying (one-sided p < 0.0014) whatever the number of cells.
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: Cells of the partition (the authors' MNIST setting), fewest generated samples for a cell to count (their τ = 20/m).
DEFAULT_CELLS = 50
MIN_SAMPLES = 20
#: Below this C_T a checkpoint is flagged as copying training images (see the module docstring).
COPYING_THRESHOLD = -3.0
#: ``copy_share`` counts samples nearer to a training image than this quantile of held-out images are.
SHARE_QUANTILE = 0.01


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 100) -> torch.Tensor:
    """Centroids of ``k`` clusters of ``x``: k-means++ seeding from ``seed``, then Lloyd iterations until no
    assignment changes (deterministic for a given input and seed)."""
    x = x.float()
    if len(x) < k:
        raise ValueError(f"k-means needs at least k={k} points, got {len(x)}")
    gen = torch.Generator().manual_seed(seed)
    centroids = x[torch.randint(len(x), (1,), generator=gen)].clone()
    closest = torch.cdist(x, centroids).squeeze(1) ** 2
    for _ in range(1, k):
        pick = torch.multinomial(closest / closest.sum(), 1, generator=gen) if closest.sum() > 0 else \
            torch.randint(len(x), (1,), generator=gen)
        centroids = torch.cat([centroids, x[pick]])
        closest = torch.minimum(closest, (torch.cdist(x, x[pick]).squeeze(1)) ** 2)
    labels = None
    for _ in range(iters):
        new = assign_cells(x, centroids)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        counts = torch.bincount(labels, minlength=k).float()
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        filled = counts > 0  # an emptied cluster keeps its centroid
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


def assign_cells(x: torch.Tensor, centroids: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    """Index of the nearest centroid of every row of ``x``."""
    return torch.cat([torch.cdist(c.float(), centroids.float()).argmin(1) for c in x.split(batch)])


def nn_distance(queries: torch.Tensor, support: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Euclidean distance of every query to its nearest ``support`` row."""
    s = support.float()
    return torch.cat([torch.cdist(q.float(), s).min(1).values.clamp_min(0) for q in queries.split(batch)])


def mann_whitney_z(gen_d: np.ndarray, heldout_d: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of generated vs held-out distances: U counts (generated, held-out) pairs where the
    generated sample is the farther one (ties count half); negative when generated samples sit closer."""
    from scipy.stats import rankdata  # here: scipy.stats takes half a second to import

    m, n = len(gen_d), len(heldout_d)
    ranks = rankdata(np.concatenate([gen_d, heldout_d]))
    u = float(ranks[:m].sum()) - m * (m + 1) / 2
    mean = n * m / 2 - 0.5  # the authors' continuity term
    std = math.sqrt(n * m * (n + m + 1) / 12)
    return (u - mean) / std


class CopyingReference:
    """What the test needs of the training and held-out sets, computed once per series: the held-out images'
    nearest-training distances and, when a test first needs them, the cells, the training features of each cell and
    the held-out distances within each (the report's panel of samples nearest to a training image reads only
    distances: with the test's values cached, a run fits no k-means)."""

    def __init__(self, heldout: torch.Tensor, train: torch.Tensor, cells: int = DEFAULT_CELLS, seed: int = 0,
                 centroids: torch.Tensor | None = None, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.cells, self.seed, self._given = cells, seed, centroids
        self.heldout, self.train = heldout.float().to(self.device), train.float().to(self.device)
        self.heldout_train_d = nn_distance(self.heldout, self.train).cpu()
        self.cutoff = float(torch.quantile(self.heldout_train_d, SHARE_QUANTILE))
        self._partition: tuple[torch.Tensor, list[float], list[torch.Tensor], list[np.ndarray]] | None = None
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def partition(self) -> tuple[torch.Tensor, list[float], list[torch.Tensor], list[np.ndarray]]:
        """The cells: centroids, each one's share of the held-out images, its training features, and its held-out
        images' distances to them (computed once)."""
        if self._partition is None:
            # The cells come from k-means on the CPU (seeded, the same on every machine); distances run on ``device``.
            cpu = kmeans(self.train.cpu(), self.cells, self.seed) if self._given is None else self._given.float().cpu()
            centroids, k = cpu.to(self.device), len(cpu)
            t_cell, p_cell = assign_cells(self.train, centroids), assign_cells(self.heldout, centroids)
            p_share = (torch.bincount(p_cell, minlength=k).double() / len(self.heldout)).tolist()
            train_cells = [self.train[t_cell == c] for c in range(k)]
            heldout_d = [nn_distance(self.heldout[p_cell == c], train_cells[c]).cpu().numpy()
                         if (p_cell == c).any() and len(train_cells[c]) else np.empty(0) for c in range(k)]
            self._partition = (centroids, p_share, train_cells, heldout_d)
        return self._partition

    @property
    def centroids(self) -> torch.Tensor:
        """The cells' centroids (k-means on the training features, or those given)."""
        return self.partition()[0]

    def train_distances(self, gen: torch.Tensor) -> torch.Tensor:
        """Each sample's distance to its nearest training feature (the last set's result is kept, as ``test`` and
        ``closest`` both need it)."""
        if self._last is None or self._last[0] is not gen:
            self._last = (gen, nn_distance(gen.float().to(self.device), self.train).cpu())
        return self._last[1]

    def closest(self, gen: torch.Tensor | None, k: int) -> list[int]:
        """Indices of the ``k`` samples nearest to a training image: where to look for copies (``gen=None``: of the
        held-out images, the honest counterpart)."""
        d = self.heldout_train_d if gen is None else self.train_distances(gen)
        return torch.argsort(d, stable=True)[:k].tolist()

    def test(self, gen: torch.Tensor, min_samples: int = MIN_SAMPLES) -> dict[str, float]:
        """``copying_ct``, ``copy_share`` and ``copying_cells`` of one generated sample set (see ``copying_test``)."""
        share = float((self.train_distances(gen) < self.cutoff).double().mean())
        gen = gen.float().to(self.device)
        centroids, p_share, train_cells, heldout_d = self.partition()
        q_cell = assign_cells(gen, centroids)
        z_sum = w_sum = 0.0
        used = 0
        for c, (t_in, p_d) in enumerate(zip(train_cells, heldout_d, strict=True)):
            q_in = gen[q_cell == c]
            # The cell counts when it holds more than min_samples generated samples (the authors' Q_m(π) > τ), and
            # held-out and training images (a cell without held-out images has weight 0 anyway).
            if len(q_in) <= min_samples or not len(p_d) or not len(t_in):
                continue
            z = mann_whitney_z(nn_distance(q_in, t_in).cpu().numpy(), p_d)
            z_sum += p_share[c] * z
            w_sum += p_share[c]
            used += 1
        ct = z_sum / w_sum if w_sum > 0 else math.nan
        return {"copying_ct": ct, "copy_share": share, "copying_cells": float(used)}


def copying_test(gen: torch.Tensor, heldout: torch.Tensor, train: torch.Tensor, cells: int = DEFAULT_CELLS,
                 min_samples: int = MIN_SAMPLES, seed: int = 0,
                 centroids: torch.Tensor | None = None) -> dict[str, float]:
    """``copying_ct`` (C_T, ≪ 0 copies training data), ``copy_share`` (share of samples nearer to a training image
    than 99 % of held-out images are: ≈ 0.01 without copying) and ``copying_cells`` (cells C_T averages over).

    ``centroids`` may be given; else k-means on ``train`` with ``seed``. For a series, build one
    ``CopyingReference`` and call its ``test`` per sample set instead.
    """
    return CopyingReference(heldout, train, cells, seed, centroids).test(gen, min_samples)
