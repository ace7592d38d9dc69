"""Mode-collapse flags with bootstrap intervals: the class-KL and covered-classes intervals, and the split of
flagged checkpoints into "beyond sampling noise" (the whole interval past the limit) and borderline ones."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeval.data.mnist import load_mnist
from ganeval.evaluate import score
from ganeval.metrics.interval import bootstrap_interval
from ganeval.metrics.modes import mode_intervals, mode_metrics


def _logits(classes: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(classes), 10).float() * 5


def test_intervals_follow_the_resamples() -> None:
    rng = np.random.default_rng(0)
    classes = rng.choice(10, size=2000, p=[0.3] + [0.7 / 9] * 9)
    logits = _logits(classes)
    idx = [rng.integers(0, 2000, 2000) for _ in range(200)]
    got = mode_intervals(logits, idx)
    kls = []
    for i in idx:
        h = np.bincount(classes[i], minlength=10) / 2000
        kls.append(float((h[h > 0] * np.log(h[h > 0] * 10)).sum()))
    point = mode_metrics(logits)["class_kl"]
    centre = 2 * point - float(np.median(kls))  # the plug-in KL less the bias the replicates show above it
    assert (got["class_kl_ci_low"], got["class_kl_ci_high"]) == pytest.approx(bootstrap_interval(centre, np.array(kls)))
    assert got["class_kl_ci_low"] < point < got["class_kl_ci_high"] and got["class_kl_ci_high"] - got["class_kl_ci_low"] < 0.1
    assert got["modes_ci_low"] == got["modes_ci_high"] == 10
    five = _logits(np.arange(2000) % 5)  # exactly five classes
    g5 = mode_intervals(five, idx)
    assert g5["modes_ci_high"] == 5 and g5["class_kl_ci_low"] == pytest.approx(math.log(2), abs=0.02)


def test_class_kl_interval_covers_the_true_kl() -> None:
    """Samples drawn from a known class distribution whose KL from uniform (0.087) is below the 0.1 limit: the 95 %
    interval must miss the true KL on the low side about 2.5 % of the time, and so call the KL "beyond sampling
    noise" (the whole interval above 0.1) rarely. Placed at the plug-in KL, which is biased upwards by about 9/2N,
    it missed low 17 % and claimed "beyond noise" 12 % of the time at N = 100."""
    p = np.array([0.2, 0.15, 0.1, 0.1, 0.1, 0.1, 0.08, 0.07, 0.05, 0.05])
    true_kl = float((p * np.log(p * 10)).sum())
    rng = np.random.default_rng(2)
    n, trials, low, beyond = 100, 300, 0, 0
    for _ in range(trials):
        classes = rng.choice(10, size=n, p=p)
        got = mode_intervals(_logits(classes), [rng.integers(0, n, n) for _ in range(100)])
        low += got["class_kl_ci_low"] > true_kl
        beyond += got["class_kl_ci_low"] > 0.1
    assert low / trials < 0.06 and beyond / trials < 0.05, (low, beyond)


def test_cached_mode_intervals_are_keyed_by_their_definition() -> None:
    """The class-KL interval's definition changed (placed at the bias-corrected KL): intervals cached by an earlier
    version under the same options must be a cache miss, not served as the new ones."""
    from ganeval.feature_cache import metric_options
    from ganeval.metrics.registry import METRICS
    from ganeval.options import ScoreOptions

    opts = ScoreOptions.from_kwargs(metrics=("mnist_fd", "modes"))
    keys = metric_options(opts, {}, METRICS["modes"], with_ci=False, shared_latents=True)
    assert keys.get("kl_interval") == "bias-corrected-v3"
    assert "kl_interval" not in metric_options(opts, {}, METRICS["mnist_fd"], with_ci=True, shared_latents=True)


def test_a_class_seen_once_or_twice_is_not_ruled_out() -> None:
    """Nine equal digits and one truly at the 2 % line, N = 200: a resample rarely lifts a digit seen once to 2 %, so
    the covered-classes bound fell to 9 ("beyond sampling noise") in 6-10 % of draws; the nominal rate is ≤ 2.5 %."""
    rng = np.random.default_rng(5)
    p = np.array([0.98 / 9] * 9 + [0.02])
    n, trials, below = 200, 400, 0
    for _ in range(trials):
        classes = rng.choice(10, size=n, p=p)
        got = mode_intervals(_logits(classes), [rng.integers(0, n, n) for _ in range(200)])
        below += got["modes_ci_high"] < 10
    assert below / trials < 0.035, below  # 1.5 % here (6 of 400); 5.75 % (23) before


def test_covered_classes_interval_is_made_of_counts() -> None:
    """The interval of ``modes_covered`` is bounded by counts the replicates had: 2 of 50 replicates covering ten
    classes once gave 9.775 (linear interpolation), which the flag read as "the whole interval below 10" while the
    page rounded it to 10."""
    classes = np.concatenate([np.arange(495) % 9, np.full(5, 9)])  # nine classes of 55; five nines (1 %: not covered)
    every = np.arange(500)
    more_nines = np.concatenate([np.arange(490), np.repeat(np.arange(495, 500), 2)])  # ten nines (2 %): covered
    assert (np.bincount(classes[more_nines], minlength=10) / 500 >= 0.02).sum() == 10
    got = mode_intervals(_logits(classes), [every] * 48 + [more_nines] * 2)
    assert (got["modes_ci_low"], got["modes_ci_high"]) == (9, 10)
    assert all(float(got[k]).is_integer() for k in ("modes_ci_low", "modes_ci_high"))


@pytest.mark.usefixtures("own_cache")
def test_flags_split_into_sure_and_borderline(tmp_path: Path, mnist_dir: Path) -> None:
    images, labels = load_mnist("test")
    rng = np.random.default_rng(1)
    by_digit = {d: images[labels == d] for d in range(10)}
    # a: digits 0–4 only (clear collapse); b: digit 1 over-represented to a class KL just above 0.1 at small N
    a = np.concatenate([by_digit[d][:80] for d in range(5)])
    b = np.concatenate([by_digit[1][:110]] + [by_digit[d][:32] for d in range(10) if d != 1])
    np.savez(tmp_path / "a_half.npz", images=a[rng.permutation(len(a))])
    np.savez(tmp_path / "b_tilted.npz", images=b[rng.permutation(len(b))])
    df = score([tmp_path / "a_half.npz", tmp_path / "b_tilted.npz"], metrics=("mnist_fd", "modes"), num_samples=400,
               bootstrap=200, device="cpu", progress=False, out=tmp_path / "rep")
    half, tilted = df.iloc[0], df.iloc[1]
    assert half["modes_covered"] == 5 and half["modes_ci_high"] == 5 and half["class_kl_ci_low"] > 0.5
    assert bool(half["mode_collapse"]) and bool(half["mode_collapse_sure"])
    assert tilted["modes_covered"] == 10 and tilted["class_kl"] > 0.1 and bool(tilted["mode_collapse"])
    assert tilted["class_kl_ci_low"] < 0.1 < tilted["class_kl_ci_high"] and not bool(tilted["mode_collapse_sure"])
    summary = df.attrs["summary"]
    assert summary["mode_collapse"]["beyond_noise"] == ["a_half.npz"]
    assert "1 of them beyond sampling noise" in summary["verdict"] and "95% CI" in summary["verdict"]
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "beyond sampling noise" in html and "1 of 2" in html
    again = score([tmp_path / "a_half.npz"], metrics=("mnist_fd", "modes"), num_samples=400, bootstrap=0, device="cpu", progress=False)
    assert math.isnan(again["class_kl_ci_low"].iloc[0]) and again["mode_collapse_sure"].isna().iloc[0]  # not tested


@pytest.mark.usefixtures("own_cache")
def test_without_intervals_beyond_noise_is_not_tested(tmp_path: Path, mnist_dir: Path) -> None:
    """``--bootstrap 0``: no interval exists, so the summary's ``beyond_noise`` is null (not ``[]``, "none of them")
    and report.html says the check was not made instead of "0 of 1"."""
    images, labels = load_mnist("test")
    np.savez(tmp_path / "half.npz", images=np.concatenate([images[labels == d][:40] for d in range(5)]))
    df = score([tmp_path / "half.npz"], metrics=("mnist_fd", "modes"), num_samples=200, bootstrap=0, device="cpu",
               progress=False, out=tmp_path / "rep")
    assert bool(df["mode_collapse"].iloc[0]) and math.isnan(df["class_kl_ci_low"].iloc[0])
    mode = df.attrs["summary"]["mode_collapse"]
    assert mode["flag"] and mode["checkpoints"] == ["half.npz"] and mode["beyond_noise"] is None
    written = json.loads((tmp_path / "rep" / "summary.json").read_text(encoding="utf-8"))
    assert written["mode_collapse"]["beyond_noise"] is None
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "beyond sampling noise: not tested (--bootstrap 0)" in html and "0 of 1" not in html


@pytest.mark.usefixtures("own_cache")
def test_untested_flags_are_not_no(tmp_path: Path, mnist_dir: Path) -> None:
    """Without ``modes``/``copying`` (or, for "beyond noise", without an interval) a flag was not tested: the rows hold
    <NA> (empty in the CSV, null in Parquet and JSON), the summary ``"flag": null, "tested": false``, and report.html
    a "not tested" box naming the flag that tests it, never a green "no". With ``--bootstrap 0`` a collapsed row's
    ``mode_collapse_sure`` is <NA> (it was False: "tested, not beyond noise") and a healthy row's stays False."""
    import pyarrow.parquet as pq

    images, labels = load_mnist("test")
    np.savez(tmp_path / "all.npz", images=images[:300])
    np.savez(tmp_path / "ones.npz", images=images[labels == 1][:300])
    sets = [tmp_path / "all.npz", tmp_path / "ones.npz"]
    df = score(sets, metrics=("mnist_fd",), num_samples=300, bootstrap=20, device="cpu", progress=False, out=tmp_path / "rep")
    for col in ("mode_collapse", "mode_collapse_sure", "data_copying"):
        assert df[col].isna().all(), col
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text(encoding="utf-8"))
    for key in ("mode_collapse", "data_copying"):
        assert summary[key]["flag"] is None and summary[key]["tested"] is False, key
    assert all(r["mode_collapse"] is None and r["data_copying"] is None for r in summary["rows"])
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "<b>Mode collapse</b> <span class=badge>not tested</span>" in html and "--metrics modes</code>" in html
    assert "<b>Data copying</b> <span class=badge>not tested</span>" in html and "--metrics copying</code>" in html
    assert "<b>Mode collapse</b> <span class=badge>no<" not in html and "<b>Data copying</b> <span class=badge>no<" not in html
    lines = (tmp_path / "rep" / "scores.csv").read_text().splitlines()
    head = lines[0].split(",")
    assert {lines[1].split(",")[head.index(c)] for c in ("mode_collapse", "data_copying")} == {""}
    assert pq.read_table(tmp_path / "rep" / "scores.parquet").column("mode_collapse").null_count == 2
    plain = score(sets, metrics=("mnist_fd", "modes"), num_samples=300, bootstrap=0, device="cpu", progress=False)
    assert plain["mode_collapse"].tolist() == [False, True] and plain.attrs["summary"]["mode_collapse"]["tested"] is True
    assert plain["mode_collapse_sure"].isna().tolist() == [False, True] and not plain["mode_collapse_sure"].iloc[0]


@pytest.mark.parametrize("n,beyond", [(30, False), (150, False), (200, True), (2000, True)])
def test_an_unseen_class_is_beyond_noise_only_when_n_rules_out_its_share(n: int, beyond: bool) -> None:
    """A resample never holds a class its sample lacks, so the covered-classes interval of 30 samples missing one
    digit was [6, 9]: a good generator was "9 classes, beyond sampling noise". An unseen class now stays in the upper
    bound while N cannot rule out its holding 2 % (1 − 0.025^(1/N) ≥ 0.02, N ≤ 182)."""
    import pandas as pd

    from ganeval.ranking import mode_collapse_beyond_noise

    classes = np.arange(n) % 9  # nine digits evenly, the tenth never drawn
    rng = np.random.default_rng(3)
    got = mode_intervals(_logits(classes), [rng.integers(0, n, n) for _ in range(100)])
    assert got["modes_ci_high"] == (9 if beyond else 10)
    assert got["class_kl_ci_low"] < 0.1 or n >= 2000  # log(10/9) = 0.105: the KL interval alone decides at large N
    row = pd.DataFrame([{**got, "modes_covered": 9}])
    assert bool(mode_collapse_beyond_noise(row, 10, 0.1).iloc[0]) is beyond
