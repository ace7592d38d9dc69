"""Realism score (Kynkäänniemi et al. 2019): the authors' formula, the pruning of large balls, and the report panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_bank_checkpoint

import ganeval
from ganeval.metrics.prc import precision_recall
from ganeval.metrics.realism import realism_scores, realism_summary


def _authors_formula(gen: np.ndarray, real: np.ndarray, k: int = 3) -> np.ndarray:
    """Written from the paper and the authors' description: squared distances, k-th neighbour radius (self excluded),
    balls above the median radius set to 0, R = max_r radius² / (d² + 1e-5)."""
    d_rr = ((real[:, None, :] - real[None, :, :]) ** 2).sum(-1)
    radius2 = np.sort(d_rr, axis=1)[:, k]
    radius2[radius2 > np.percentile(radius2, 50)] = 0
    d_gr = ((gen[:, None, :] - real[None, :, :]) ** 2).sum(-1)
    return (radius2[None, :] / (d_gr + 1e-5)).max(axis=1)


def test_equals_the_authors_formula() -> None:
    rng = np.random.default_rng(0)
    real, gen = rng.normal(size=(300, 8)), rng.normal(size=(200, 8)) * 1.3
    ours = realism_scores(torch.from_numpy(gen), torch.from_numpy(real)).numpy()
    np.testing.assert_allclose(ours, _authors_formula(gen, real), rtol=2e-4)


def test_real_outliers_cannot_make_an_artefact_realistic() -> None:
    rng = np.random.default_rng(1)
    outliers = np.zeros((4, 4))
    outliers[:, 0] = (40, 60, 80, 100)  # isolated real outliers: their k-NN balls are huge
    real = np.concatenate([rng.normal(size=(400, 4)), outliers])
    far = np.array([[45.0, 0, 0, 0]])  # an artefact far from the data, inside the outliers' balls only (pruned)
    r_far = realism_scores(torch.from_numpy(far), torch.from_numpy(real))
    r_all = realism_scores(torch.from_numpy(far), torch.from_numpy(real), keep=1.0)
    assert r_far.item() < 1 <= r_all.item()
    # without pruning, R ≥ 1 is exactly "inside some real ball": the share equals improved precision
    gen = torch.from_numpy(rng.normal(size=(300, 4)) * 1.5)
    share_inside = float((realism_scores(gen, torch.from_numpy(real), keep=1.0) >= 1).float().mean())
    assert share_inside == pytest.approx(precision_recall(gen, torch.from_numpy(real))[0], abs=1 / 300)
    median, outside = realism_summary(torch.tensor([0.5, 2.0, 3.0, 0.9]))
    assert median == pytest.approx(1.45) and outside == 0.5  # the median of an even count: not torch's lower middle
    assert realism_summary(torch.tensor([0.5, 2.0, 3.0]))[0] == pytest.approx(2.0)


def test_score_report_shows_least_and_most_realistic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_dir: Path) -> None:
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000, noise=0.0)
    write_bank_checkpoint(run, 2000, noise=0.6)
    df = ganeval.score(run, metrics=("mnist_fd", "mnist_realism"), num_samples=500, bootstrap=0, device="cpu",
                       progress=False, write_report=True)
    clean, noisy = df.set_index("iteration").loc[1000], df.set_index("iteration").loc[2000]
    assert clean["mnist_realism"] > noisy["mnist_realism"] and clean["mnist_unrealistic_share"] < noisy["mnist_unrealistic_share"]
    html = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert "Least and most realistic samples" in html
    assert html.count('realistic samples of ckpt_0001000.safetensors') == 2  # best
    assert html.count('realistic samples of ckpt_0002000.safetensors') == 2  # last
