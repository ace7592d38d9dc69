"""``extract`` pipelines batches (features leave the device IN_FLIGHT batches late): the features, their order and
the NaN/Inf count must equal a plain batch-by-batch computation, whatever the number of batches."""

from __future__ import annotations

import pytest
import torch

from ganeval import extraction
from ganeval.distributed import DistContext
from ganeval.features.mnist_classifier import MNISTClassifierExtractor
from ganeval.inputs import resolve_target
from ganeval.sampling import latents, to_uint8

Z = 16


def _generator(z: torch.Tensor) -> torch.Tensor:
    """A fixed nonlinear map z → [-1, 1] images; rows whose first latent is > 1.2 are NaN."""
    w = torch.randn(Z, 28 * 28, generator=torch.Generator().manual_seed(5))
    x = torch.tanh(z @ w).view(-1, 1, 28, 28).clone()
    x[z[:, 0] > 1.2] = float("nan")
    return x


@pytest.mark.parametrize("n, batch", [(70, 10), (70, 32), (9, 4), (5, 100)])
def test_pipelined_extraction_matches_plain_loop(n: int, batch: int) -> None:
    ex = MNISTClassifierExtractor(device="cpu")
    src = resolve_target(_generator, z_dim=Z).sources[0]
    got = extraction.extract(src, [ex], n, 0, batch, torch.device("cpu"), DistContext(), use_cache=False)
    z = latents(n, Z, 0)
    raw = _generator(z)
    want = ex(to_uint8(torch.nan_to_num(raw, nan=0.0, posinf=1.0, neginf=-1.0)))
    # same rows in the same order; batch size may change oneDNN's summation order, hence round-off tolerance
    torch.testing.assert_close(got.pool["mnist"], want["pool"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.logits["mnist"], want["logits"], rtol=1e-5, atol=1e-5)
    n_nan = int((z[:, 0] > 1.2).sum())
    assert got.nonfinite == n_nan
    if (n, batch) == (70, 10):
        assert n_nan > 0 and n / batch > extraction.IN_FLIGHT  # the case this test exists for
