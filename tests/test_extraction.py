"""``extract`` pipelines batches (features leave the device IN_FLIGHT batches late): the features, their order and
the NaN/Inf count must equal a plain batch-by-batch computation, whatever the number of batches."""

from __future__ import annotations

import weakref

import pytest
import torch

from ganeval import extraction
from ganeval.distributed import DistContext, HostRows
from ganeval.errors import GanevalError
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


def _batchwise(ex: MNISTClassifierExtractor, n: int, batch: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The old way: each batch's features kept apart, joined at the end (same batches, so the same round-off)."""
    z = latents(n, Z, 0)
    parts = [ex(to_uint8(torch.nan_to_num(_generator(c), nan=0.0, posinf=1.0, neginf=-1.0))) for c in z.split(batch)]
    return torch.cat([p["pool"] for p in parts]), torch.cat([p["logits"] for p in parts]), int((z[:, 0] > 1.2).sum())


@pytest.mark.parametrize("n, batch", [(73, 10), (40, 8), (3, 5)])
def test_features_written_into_one_buffer_equal_the_joined_batches_bit_for_bit(n: int, batch: int) -> None:
    ex = MNISTClassifierExtractor(device="cpu")
    src = resolve_target(_generator, z_dim=Z).sources[0]
    got = extraction.extract(src, [ex], n, 0, batch, torch.device("cpu"), DistContext(), use_cache=False)
    pool, logits, n_nan = _batchwise(ex, n, batch)
    assert torch.equal(got.pool["mnist"], pool) and torch.equal(got.logits["mnist"], logits)
    assert got.pool["mnist"].dtype == torch.float32 and got.nonfinite == n_nan
    if n == 73:
        assert n_nan > 0 and n % batch  # NaN rows, and a last partial batch


class _Pixels:
    """A feature network whose per-batch outputs are watched: how many earlier ones are still alive at each call."""

    name, pool_dim, has_logits = "pixels", 784, False

    def __init__(self) -> None:
        self.returned: list[weakref.ref] = []
        self.most_alive = 0

    def provenance(self) -> dict[str, str]:
        return {"extractor": self.name}

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.most_alive = max(self.most_alive, sum(r() is not None for r in self.returned))
        pool = images.flatten(1).float()
        self.returned.append(weakref.ref(pool))
        return {"pool": pool}


def test_each_batchs_features_are_dropped_once_copied_to_the_host() -> None:
    """Kept until the end and joined, every batch's features were held twice, and the small tensors kept between the
    freed activations fragmented the heap (docs/scoring.md); now at most the in-flight batches are alive."""
    ex = _Pixels()
    src = resolve_target(_generator, z_dim=Z).sources[0]
    got = extraction.extract(src, [ex], 300, 0, 10, torch.device("cpu"), DistContext(), use_cache=False)
    assert len(ex.returned) == 30 and got.pool["pixels"].shape == (300, 784)
    assert ex.most_alive <= extraction.IN_FLIGHT


def test_a_batch_with_the_wrong_number_of_rows_is_refused_not_broadcast() -> None:
    rows = HostRows(10, 5, "src: the pixels extractor's pool features")
    rows.put(0, torch.zeros(5, 3))
    with pytest.raises(GanevalError, match=r"src: the pixels extractor's pool features: \(1, 3\) for rows 5:10"):
        rows.put(1, torch.ones(1, 3))
