"""Perceptual path length (Karras et al. 2019) in a classifier's feature space: how far a generator's samples move,
in features, for a tiny step in its latent space. Smooth generators have short paths; a generator that jumps
between digits for a small latent change has long ones; a collapsed one has paths near zero.

It follows torch-fidelity's definition (``calculate_ppl``) so the numbers can be checked against it: pairs
``z0``, ``z1`` from the seed's latent stream, ``e = lerp(z0, z1, ε)``, distance ``‖f(G(z0)) − f(G(e))‖² / ε²``,
values below the 1st and above the 99th percentile discarded, then mean and standard deviation. The differences
from torch-fidelity: the distance is the squared L2 distance of the extractor's pool features (LPIPS-VGG16's
weights cannot be had offline, and MNIST digits have a better judge), and the generator's float output is used
unquantised, since a step of 1e-4 is lost to uint8 rounding.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np
import torch

from ganeval.distributed import DistContext
from ganeval.errors import GanevalError, ShareFailed
from ganeval.inputs import SAMPLE_KINDS
from ganeval.sampling import forward_noise, latents
from ganeval.sources.base import GeneratorSamples, Samples

#: Latent step, as torch-fidelity's and StyleGAN's default.
EPSILON = 1e-4
NO_GENERATOR = "path length needs a generator: stored samples cannot be moved along a latent path"
#: Seed offset of the path-length latents, so they are not the scoring latents (independent of the FID samples).
SEED_OFFSET = 7919


def unit_images(out: Any, output_range: str, what: str) -> torch.Tensor:
    """Float generator output → float32 ``(B, C, H, W)`` in ``[0, 1]`` (clamped as the uint8 conversion clamps)."""
    x = out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if not x.is_floating_point():
        raise GanevalError(f"{what}: the generator outputs {x.dtype} images; path lengths need its continuous output "
                           f"(a latent step of {EPSILON:g} is lost to rounding)")
    x = x.float()
    x = (x + 1) / 2 if output_range == "-1,1" else x / 255 if output_range == "0,255" else x
    return x.clamp(0, 1)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """``a + t (b − a)``: torch-fidelity's ``lerp`` interpolation."""
    return a + (b - a) * t


@torch.inference_mode()
def path_lengths(samples: Samples, extractor: Any, n: int, seed: int, batch_size: int,
                 epsilon: float = EPSILON, dist: DistContext | None = None) -> np.ndarray:
    """``n`` path lengths (float64, unsorted, before discarding) of the generator behind ``samples``.

    Under torchrun (``dist``) the pair batches are split over the ranks and gathered back in order, so every rank
    gets the single-process lengths for a ``1/W`` share of the work.
    """
    if not isinstance(samples, GeneratorSamples):
        raise GanevalError(NO_GENERATOR)
    float_features = getattr(extractor, "float_features", None)
    if float_features is None:
        raise GanevalError(f"path length is not available in {extractor.name} features (no float-image input)")
    # fp32 whatever the run's precision (bf16 rounding is ~250x the ε step's change), where the extractor offers it
    exact = "fp32" in inspect.signature(float_features).parameters
    featurize = functools.partial(float_features, fp32=True) if exact else float_features
    if extractor.name == "mnist":
        batch_size = max(batch_size, 250)  # a small network: bigger batches run faster on a CPU (8.4 s against 12.6 s at 64)
    dist = dist or DistContext()
    dim = int(samples.meta["latent_dim"])
    z = latents(2 * n, dim, seed + SEED_OFFSET, z_type=samples.z_type)
    z0, z1 = z[:n].split(batch_size), lerp(z[:n], z[n:], epsilon).split(batch_size)
    mine: dict[int, torch.Tensor] = {}

    def my_pairs() -> None:
        for b in dist.my_batches(len(z0)):
            with forward_noise(samples.device, seed + SEED_OFFSET, b):  # noise in forward: a function of the pair batch
                both = samples.fn(torch.cat([z0[b], z1[b]]).to(samples.device))
            x = unit_images(both, samples.output_range, samples.name)
            f0, f1 = featurize(x)["pool"].double().chunk(2)
            mine[b] = (((f0 - f1) ** 2).sum(1) / epsilon**2).cpu()

    dist.my_share(my_pairs, samples.name)
    d = torch.cat(dist.gather_batches(mine, len(z0))).numpy()
    return np.where(np.isfinite(d), d, np.inf)  # a NaN step counts as the longest, and is discarded as such


def source_path_lengths(source: Any, extractor: Any, n: int, seed: int, batch_size: int, device: torch.device,
                        dist: DistContext | None = None) -> np.ndarray:
    """:func:`path_lengths` of an input source (``ganeval.inputs.Source``), opened for the purpose and closed;
    stored samples are refused before their images are read again.

    The source opened for the first pass, so failing to open it again (out of memory while rebuilding the generator)
    is that checkpoint's failure (``ShareFailed``: an error row), not an unavailable metric; the ranks learn of it
    together (``my_share``), so none is left waiting in the pass's gather.
    """
    if source.kind in SAMPLE_KINDS:
        raise GanevalError(NO_GENERATOR)
    dist = dist or DistContext()
    opened: list[Samples] = []

    def reopen() -> None:
        try:
            opened.append(source.open(device, n, seed))
        except ShareFailed:
            raise
        except GanevalError as exc:
            raise ShareFailed(str(exc)) from exc

    try:
        dist.my_share(reopen, source.name)
        return path_lengths(opened[0], extractor, n, seed, batch_size, dist=dist)
    finally:
        for samples in opened:
            samples.close()
