"""Samples from generators: one fixed latent set shared by every checkpoint (common random numbers),
generated in batches on the device and converted to uint8 the same way for every caller.

Conversion from generator output in [-1, 1]: ``uint8(clamp(round((x + 1) * 127.5), 0, 255))`` with
round-half-to-even (``torch.round``); NaN/Inf outputs are reported, never silently clamped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


def latents(n: int, dim: int, seed: int, start: int = 0, stop: int | None = None, z_type: str = "normal") -> torch.Tensor:
    """Rows ``start:stop`` of the seed's fixed latent set of ``n`` rows (the same rows whatever the slice)."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(dim))
    z = torch.randn(n, dim, generator=gen) if z_type == "normal" else torch.rand(n, dim, generator=gen) * 2 - 1
    return z[start:stop]


@contextmanager
def forward_noise(device: torch.device, seed: int, *keys: int) -> Iterator[None]:
    """Run a generator's forward with the global RNG (CPU, and ``device``'s when CUDA) seeded from ``(seed, *keys)``,
    and the RNG state restored afterwards.

    Generators that draw noise inside ``forward`` (StyleGAN's noise inputs, dropout left on) then give the same
    images for the same rows in every run, with one process or several (rank r starts its batches from the same
    state as a single process does), so their scores are reproducible and safe to cache. Generators that draw no
    noise are unaffected.
    """
    state = np.random.SeedSequence([int(seed) % 2**64, *(int(k) for k in keys)]).generate_state(1, np.uint64)[0]
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(int(state))
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(int(state))
        yield


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] → uint8 0..255 (rounded half to even, clamped)."""
    return ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


@dataclass
class SampleBatch:
    """One batch of uint8 samples and how many of them had non-finite values."""

    images: torch.Tensor
    nonfinite: int | torch.Tensor  # a count; a 0-d tensor on the device when reading it would stall the device


@torch.inference_mode()
def generate(generator: nn.Module, z: torch.Tensor, batch_size: int, device: torch.device) -> Iterator[SampleBatch]:
    """Yield uint8 sample batches of ``generator(z)`` on ``device``."""
    generator = generator.to(device).eval()
    for chunk in z.split(batch_size):
        out = generator(chunk.to(device, non_blocking=True))
        if out.dtype == torch.uint8:
            yield SampleBatch(out, 0)
            continue
        bad = (~torch.isfinite(out)).flatten(1).any(dim=1)
        yield SampleBatch(to_uint8(torch.nan_to_num(out, nan=0.0, posinf=1.0, neginf=-1.0)), int(bad.sum()))
