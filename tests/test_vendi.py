"""Vendi score: equals the authors' ``vendi_score`` package, and falls when a generator loses diversity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_bank_checkpoint
from vendi_score import vendi

from ganeval.evaluate import score
from ganeval.metrics.vendi import vendi_score


@pytest.mark.parametrize(("n", "d"), [(300, 20), (500, 128), (200, 300)])
def test_equals_the_authors_package(n: int, d: int) -> None:
    x = np.abs(np.random.default_rng(n).standard_normal((n, d)))  # non-negative, like pooled CNN features
    ours = vendi_score(torch.from_numpy(x))
    assert ours == pytest.approx(vendi.score_X(x), rel=1e-10)  # their n × n kernel form
    assert ours == pytest.approx(vendi.score_dual(x), rel=1e-12)


def test_bounds_and_duplicates() -> None:
    one = torch.ones(50, 8)
    assert vendi_score(one) == pytest.approx(1.0)  # one distinct sample
    basis = torch.eye(8).repeat(10, 1)  # 8 orthogonal directions, equally often
    assert vendi_score(basis) == pytest.approx(8.0)


def test_fewer_digits_lower_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    write_bank_checkpoint(tmp_path / "run", 1000)
    write_bank_checkpoint(tmp_path / "run", 2000, digits=(1, 7))
    df = score(tmp_path / "run", num_samples=500, metrics=("mnist_fd", "mnist_vendi"), bootstrap=0, device="cpu", progress=False)
    full, two = df.iloc[0], df.iloc[1]
    assert full["mnist_vendi_real"] == two["mnist_vendi_real"]  # the same 500 real images
    assert 0.8 < full["mnist_vendi"] / full["mnist_vendi_real"] < 1.25  # real digits: about real diversity
    assert two["mnist_vendi"] < 0.6 * full["mnist_vendi"]
