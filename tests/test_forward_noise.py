"""Generators that draw noise inside ``forward``: the noise is seeded per batch of rows, so what the report shows
and what the cache serves must follow the batches that were scored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganeval.evaluate import score, score_series
from ganeval.inputs import resolve_target
from ganeval.nearest import sample_images
from ganeval.options import ScoreOptions
from ganeval.sampling import forward_noise, latents, to_uint8

OPTS = {"metrics": ["mnist_fd"], "num_samples": 200, "bootstrap": 0, "device": "cpu", "progress": False}


class Noisy(nn.Module):
    """Noise injection inside forward, as StyleGAN2's noise_mode='random'."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.fc = nn.Linear(16, 784)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z)
        return torch.tanh(x + 0.5 * torch.randn_like(x)).view(-1, 1, 28, 28)


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _scored(gen: nn.Module, n: int, batch: int, seed: int = 0) -> torch.Tensor:
    """The images scoring sees: the seed's latents, each batch run with its rows' noise seed."""
    z = latents(n, 16, seed)
    with torch.inference_mode():
        parts = []
        for start in range(0, n, batch):
            with forward_noise(torch.device("cpu"), seed, start, min(start + batch, n)):
                parts.append(to_uint8(gen(z[start:start + batch])))
    return torch.cat(parts)


def test_cached_features_are_not_served_at_another_batch_size() -> None:
    """The noise, hence the samples and their FD, depend on the batch size: a run at --batch-size 50 after one at 100
    got the 100-batch features from the cache (a value no uncached run at 50 gives)."""
    gen = Noisy()
    fd = {b: float(score(gen, z_dim=16, cache_key="noisy", batch_size=b, **OPTS)["mnist_fd"].iloc[0]) for b in (100, 50)}
    fresh = float(score(gen, z_dim=16, batch_size=50, use_cache=False, **OPTS)["mnist_fd"].iloc[0])
    assert fd[50] == fresh and fd[100] != fd[50]
    assert float(score(gen, z_dim=16, cache_key="noisy", batch_size=100, **OPTS)["mnist_fd"].iloc[0]) == fd[100]


def test_report_images_are_the_scored_samples() -> None:
    """The sample grid and the picked examples (closest, realism) come from the scored batches: they were drawn as
    rows of their own, with other noise, so the report showed images that were never scored."""
    gen = Noisy()
    want = _scored(gen, 200, 100)
    series = resolve_target(gen, z_dim=16)
    opts = ScoreOptions.from_kwargs(**OPTS, batch_size=100)
    grid = next(iter(score_series(series, opts).grids.values()))
    np.testing.assert_array_equal(grid, want[:30, 0].numpy())
    picked = sample_images(series.sources[0], [150, 3, 99, 100], torch.device("cpu"), opts)
    np.testing.assert_array_equal(picked, want[[150, 3, 99, 100], 0].numpy())
