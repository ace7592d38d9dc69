"""A damaged cache entry (truncated or empty: a killed copy, a full disk, a crash mid-sync) is a miss: ``ganeval score``
computes it again and rewrites it, and scores exactly what a cold run scores."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_bank_checkpoint

COLUMNS = ("status", "mnist_fd", "mnist_fd_ci_low", "mnist_fd_ci_high", "kid_mean", "mnist_kid_mean")


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"")


@pytest.fixture
def run_score(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> Callable[[], dict[str, str]]:
    """``ganeval score`` of one checkpoint (MNIST FD with an interval, and KID: real features); its row."""
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)

    def run() -> dict[str, str]:
        code, out, err = cli("score", tmp_path / "run", "--num-samples", 200, "--metrics", "mnist_fd", "mnist_kid",
                             "--bootstrap", 20, "--device", "cpu", "--no-progress", "--out", tmp_path / "rep")
        assert code == 0, out + err
        with open(tmp_path / "rep" / "scores.csv", newline="") as fh:
            (row,) = list(csv.DictReader(fh))
        return {k: row[k] for k in COLUMNS if k in row}

    return run


@pytest.mark.parametrize("how", ["truncated", "empty"])
def test_damaged_feature_and_metric_entries_are_misses(tmp_path: Path, run_score, how: str) -> None:
    """A truncated .npz raised zipfile.BadZipFile and an empty one EOFError: the checkpoint was an error row (exit 1)
    on every run until the file was found and removed by hand."""
    cold = run_score()
    assert cold["status"] == "ok" and "mnist_kid_mean" in cold
    cache = tmp_path / "cache"
    entries = sorted((cache / "features").glob("*.npz")) + sorted((cache / "metrics").glob("*.npz"))
    assert len(entries) == 3  # the checkpoint's features, its two metrics
    for path in entries:
        _damage(path, how)
    assert run_score() == cold
    for path in entries:  # written again, whole
        with np.load(path, allow_pickle=False) as z:
            assert z.files


@pytest.mark.parametrize("how", ["truncated", "empty"])
def test_damaged_real_features_are_a_miss(tmp_path: Path, run_score, how: str) -> None:
    """An empty real-feature .npy raised EOFError out of reference._features: a traceback."""
    cold = run_score()
    cache = tmp_path / "cache"
    (real,) = (cache / "real_features").glob("*.npy")
    for path in [*(cache / "features").glob("*.npz"), *(cache / "metrics").glob("*.npz")]:
        path.unlink()  # so KID needs the real features again
    _damage(real, how)
    assert run_score() == cold
    assert np.load(real, allow_pickle=False).ndim == 2  # written again


@pytest.mark.parametrize("entry", ["rows", "width", "logits", "count"])
def test_cached_features_of_another_shape_are_misses(tmp_path: Path, run_score, entry: str) -> None:
    """A readable features entry of another shape (10 rows, not N; another width; logits the MNIST classifier does
    not leave out; a count that is not one integer) was served as it was: an IndexError traceback (exit 1), or
    features of other samples. Now it is a miss, recomputed and rewritten."""
    cold = run_score()
    (path,) = sorted((tmp_path / "cache" / "features").glob("*.npz"))
    with np.load(path) as z:
        good = {k: z[k] for k in z.files}
    bad = {"rows": {**good, "pool": good["pool"][:10]}, "width": {**good, "pool": good["pool"][:, :-1]},
           "logits": {k: v for k, v in good.items() if k != "logits"}, "count": {**good, "nonfinite": np.zeros(2)}}[entry]
    np.savez(path, **bad)
    for metrics in (tmp_path / "cache" / "metrics").glob("*.npz"):
        metrics.unlink()
    assert run_score() == cold
    with np.load(path) as z:
        assert {k: z[k].shape for k in z.files} == {k: v.shape for k, v in good.items()}


def test_a_cached_run_writes_the_same_tables_as_a_fresh_one(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cached metric columns came back as floats: mnist_worst_digit 3 became 3.0 in scores.csv and summary.json, and
    the Parquet columns int64 became double, so tables of a fresh and a cached run did not concatenate alike."""
    import pyarrow.parquet as pq

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    outs = []
    for i in range(2):
        out = tmp_path / f"rep{i}"
        code, _, err = cli("score", tmp_path / "run", "--num-samples", 300, "--metrics", "mnist_fd", "mnist_intra", "modes",
                           "--bootstrap", 0, "--device", "cpu", "--no-progress", "--out", out)
        assert code == 0, err
        outs.append(out)
    assert any((tmp_path / "cache" / "metrics").glob("*.npz"))  # the second run read them
    fresh_rows, cached_rows = ([{k: v for k, v in r.items() if "seconds" not in k}
                                for r in csv.DictReader((o / "scores.csv").open(newline=""))] for o in outs)
    assert fresh_rows == cached_rows and fresh_rows[0]["mnist_worst_digit"].isdigit()
    fresh, cached = (pq.read_schema(o / "scores.parquet") for o in outs)
    assert fresh.types == cached.types and fresh.names == cached.names
    assert str(fresh.field("mnist_worst_digit").type) == "int64"
