"""MNIST-space KID, precision/recall and density/coverage: end to end, against the authors' ``prdc`` package and
ganeval's KID on features extracted independently (the same images, the reference's N real digits: its fixed uniform subset)."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from prdc import compute_prdc

from ganeval.evaluate import score
from ganeval.features import get_extractor
from ganeval.features.base import iter_batches
from ganeval.metrics.kid import kid
from ganeval.reference import real_subset
from ganeval.stats import dataset_images

N = 500


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _features(images: np.ndarray) -> torch.Tensor:
    ex = get_extractor("mnist", device="cpu")
    return torch.cat([ex(b)["pool"].cpu() for b in iter_batches(images, 100)]).double()


def _prdc(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        return compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)


def test_mnist_knn_metrics_match_prdc_and_kid_on_the_same_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    test = dataset_images("mnist-test")[:N].astype(np.int16)
    noisy = np.clip(test + rng.normal(0, 60, test.shape), 0, 255).astype(np.uint8)  # real-ish but degraded samples
    np.savez(tmp_path / "samples.npz", images=noisy)
    row = score(tmp_path / "samples.npz", num_samples=N, metrics=("mnist_fd", "mnist_kid", "mnist_prc", "mnist_dc"), bootstrap=0,
                device="cpu", progress=False).iloc[0]
    fake, real = _features(noisy), _features(dataset_images("mnist-train")[real_subset(60_000, N)])  # reference mnist-train
    pr, dc = _prdc(real, fake, 3), _prdc(real, fake, 5)
    assert row["mnist_precision"] == pytest.approx(pr["precision"], abs=1e-9)
    assert row["mnist_recall"] == pytest.approx(pr["recall"], abs=1e-9)
    assert row["mnist_density"] == pytest.approx(dc["density"], abs=1e-9)
    assert row["mnist_coverage"] == pytest.approx(dc["coverage"], abs=1e-9)
    mean, _ = kid(fake.float(), real.float(), 100, 1000)
    # N ≤ the KID subset size: every subset is the whole set, so there is no spread to report (docs/scoring.md)
    assert row["mnist_kid_mean"] == pytest.approx(mean, rel=1e-6) and math.isnan(row["mnist_kid_std"])
    assert row["mnist_precision"] < 0.9 and row["mnist_kid_mean"] > 0


def test_mnist_knn_metrics_tell_real_from_degraded_digits(tmp_path: Path) -> None:
    test = dataset_images("mnist-test")[:N]
    np.savez(tmp_path / "real.npz", images=test)
    np.savez(tmp_path / "ones.npz", images=test[dataset_images_labels()[:N] == 1])
    opts = {"num_samples": N, "metrics": ("mnist_fd", "mnist_kid", "mnist_prc", "mnist_dc"), "bootstrap": 0, "device": "cpu",
            "progress": False}
    real = score(tmp_path / "real.npz", **opts).iloc[0]
    ones = score(tmp_path / "ones.npz", **opts).iloc[0]
    assert real["mnist_precision"] > 0.7 and real["mnist_recall"] > 0.7 and real["mnist_coverage"] > 0.7
    assert abs(real["mnist_kid_mean"]) < 0.01  # unbiased: about 0 for real digits
    assert ones["mnist_recall"] < 0.3 and ones["mnist_coverage"] < 0.3  # one digit of ten: realistic, not diverse
    assert ones["mnist_precision"] > 0.5 and ones["mnist_kid_mean"] > 10 * max(real["mnist_kid_mean"], 1e-3)


def dataset_images_labels() -> np.ndarray:
    from ganeval.data import load_mnist

    return load_mnist("test")[1]
