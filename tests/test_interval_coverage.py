"""Intervals from too few bootstrap replicates: a "95 % CI" from 10 replicates held a simulated FD's true value in
about 76 % of draws (2 replicates: 33 %), so the summary of a run with fewer than the level needs says so
(``bootstrap.few_replicates``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic import write_bank_checkpoint

from ganeval.evaluate import score
from ganeval.metrics.interval import bootstrap_interval, few_replicates_note

pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_a_run_with_too_few_replicates_says_so(tmp_path: Path) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    opts = {"num_samples": 200, "metrics": ["mnist_fd"], "device": "cpu", "progress": False}
    summary = score(tmp_path / "run", bootstrap=10, **opts).attrs["summary"]
    few = summary["bootstrap"]["few_replicates"]
    assert few.startswith("--bootstrap 10 is too few for 95% intervals (at least 40)"), few
    # the verdict quoting a "95% CI" says so too (it is what the terminal and the report's first line show)
    assert "95% CI [" in summary["verdict"] and "come from 10 bootstrap replicates, too few for 95%" in summary["verdict"]
    for enough in (0, 40):
        summary = score(tmp_path / "run", bootstrap=enough, **opts).attrs["summary"]
        assert summary["bootstrap"]["few_replicates"] is None and "bootstrap replicates" not in summary["verdict"]


def test_the_note_follows_the_level_and_the_coverage_it_warns_of() -> None:
    assert few_replicates_note(199, 0.99) is not None and few_replicates_note(200, 0.99) is None
    assert few_replicates_note(39, 0.95) is not None and few_replicates_note(1000, 0.95) is None
    # what the note is about: normal replicates around a known value, 10 of them, a 95 % interval
    rng = np.random.default_rng(0)
    held = [bootstrap_interval(v, v + rng.normal(0, 1, 10)) for v in rng.normal(0, 1, 2000)]
    coverage = np.mean([lo <= 0 <= hi for lo, hi in held])
    assert coverage < 0.85


def test_the_few_replicates_sentence_needs_an_interval_in_the_verdict(tmp_path: Path) -> None:
    """It was added whenever the verdict held "CI", a sample set named CIFAR.npz included, with no interval quoted."""
    from ganeval.data import load_mnist

    np.savez(tmp_path / "CIFAR.npz", images=load_mnist("test")[0][:200])
    summary = score(tmp_path / "CIFAR.npz", bootstrap=10, num_samples=200, metrics=["mnist_is"], primary="mnist_is",
                    device="cpu", progress=False).attrs["summary"]
    assert summary["verdict"].startswith("Keep CIFAR.npz") and "bootstrap replicates" not in summary["verdict"]


def test_a_distance_interval_never_reaches_below_zero(tmp_path: Path) -> None:
    """An estimate near 0 (held-out real images at a small N: the real floor said MNIST FD 0.617 [−0.018, 1.72]) put
    the interval's lower end below 0, a value no distance takes. Here the images are scored against statistics of
    themselves: FD ≈ 0 and resamples with duplicates lie above it, so the unclipped lower end is surely below 0."""
    from ganeval.features import get_extractor
    from ganeval.stats import compute_stats, dataset_images, save_stats

    np.savez(tmp_path / "real.npz", images=dataset_images("mnist-test")[:128])
    save_stats(tmp_path / "ref" / "mine_mnist.npz", compute_stats(tmp_path / "real.npz", get_extractor("mnist", device="cpu")))
    df = score(tmp_path / "real.npz", reference=tmp_path / "ref", num_samples=128, metrics=["mnist_fd"], bootstrap=50,
               device="cpu", progress=False, write_report=False)
    row = df.iloc[0]
    assert row["status"] == "ok" and abs(row["mnist_fd"]) < 1e-3, row["mnist_fd"]
    assert row["mnist_fd_ci_low"] == 0.0 and row["mnist_fd_ci_high"] > 0.5  # the spread above is kept


def test_the_floor_clips_only_what_falls_below_it() -> None:
    reps = np.array([0.2, 0.5, 0.9, 1.4, 2.0, 2.5])  # median 1.15: the spread below it is wider than the estimate
    raw = bootstrap_interval(0.3, reps, 0.95)
    assert raw[0] < 0 < raw[1]
    assert bootstrap_interval(0.3, reps, 0.95, floor=0.0) == (0.0, raw[1])
    assert bootstrap_interval(5.0, reps, 0.95, floor=0.0) == bootstrap_interval(5.0, reps, 0.95)
