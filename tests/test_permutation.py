"""The permutation test of FD(A) − FD(B): the observed statistic, its size under a null, its power."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganeval.metrics.fid import FIDReference
from ganeval.metrics.permutation import fd_difference_test


@pytest.fixture
def ref() -> FIDReference:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 6))
    return FIDReference(x.mean(0), np.cov(x, rowvar=False))


def _fd(x: torch.Tensor, ref: FIDReference) -> float:
    x = x.double()
    return ref.fid(x.mean(0).numpy(), torch.cov(x.T).numpy())


@pytest.mark.parametrize("paired", [True, False])
def test_observed_difference_is_the_difference_of_the_fds(ref: FIDReference, paired: bool) -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(300, 6, generator=g), torch.randn(300, 6, generator=g) * 1.2 + 0.1
    t, p = fd_difference_test(a, b, ref, paired=paired, permutations=200)
    assert t == pytest.approx(_fd(a, ref) - _fd(b, ref), rel=1e-9, abs=1e-12)
    assert p == pytest.approx(1 / 201)  # a clear difference: no re-labelling is as extreme
    same, p_same = fd_difference_test(a, a.clone(), ref, paired=True, permutations=50)
    assert same == 0 and p_same == 1.0


@pytest.mark.parametrize("paired", [True, False])
def test_size_under_the_null(ref: FIDReference, paired: bool) -> None:
    """A and B from one distribution (paired: each pair shares a 'latent'): p < 0.05 about 5 % of the time."""
    pvals = []
    for i in range(60):
        g = torch.Generator().manual_seed(100 + i)
        z = torch.randn(200, 6, generator=g)
        a = z + 0.3 * torch.randn(200, 6, generator=g)
        b = (z + 0.3 * torch.randn(200, 6, generator=g)) if paired else torch.randn(200, 6, generator=g) * 1.044
        pvals.append(fd_difference_test(a, b, ref, paired=paired, permutations=99, seed=i)[1])
    rejected = sum(p < 0.05 for p in pvals)
    assert rejected <= 8  # 5 % of 60 is 3; P(X ≥ 9) < 0.5 % for a calibrated test
    assert 0.3 < float(np.mean(pvals)) < 0.7  # roughly uniform


def test_refuses_sets_of_different_shapes(ref: FIDReference) -> None:
    with pytest.raises(ValueError, match="one shape"):
        fd_difference_test(torch.zeros(3, 6), torch.zeros(4, 6), ref, paired=True)
