"""The late-training flag against the winner's curse: the best checkpoint is the one that looked best by the same
sampling noise its interval of (last − best) is made from, so that interval must hold for every checkpoint the best
could have been, or identical checkpoints get "training went bad at the end" far more often than the level allows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ganeval import ranking


def _flag_rate(k: int, last_shift: float, trials: int = 300, sd: float = 0.05, seed: int = 0,
               spoil: Callable[[dict[str, dict[str, np.ndarray]]], None] | None = None) -> float:
    """How often ``late_collapse`` flags a series of ``k`` checkpoints of one model (FD 1, sampling sd ``sd``; the last
    moved by ``last_shift``), each with 100 paired bootstrap replicates (a shared part plus its own noise); ``spoil``
    may then make some replicates non-finite."""
    rng = np.random.default_rng(seed)
    flags = 0
    for _ in range(trials):
        values = 1.0 + rng.normal(0, sd, k)
        values[-1] += last_shift
        shared = rng.normal(0, sd, 100)  # paired: every checkpoint's replicate b resamples the same latents
        reps = {f"c{i}": {"mnist_fd": v + 0.02 + shared + rng.normal(0, sd, 100)} for i, v in enumerate(values)}
        if spoil is not None:
            spoil(reps)
        df = pd.DataFrame({"checkpoint": list(reps), "iteration": range(k), "status": "ok", "mnist_fd": values})
        late = ranking.late_collapse(ranking.add_ranks(df, "mnist_fd"), "mnist_fd", reps, 0.05, 0.95)
        flags += late["flag"]
    return flags / trials


def test_identical_checkpoints_are_rarely_called_worse() -> None:
    """Ten checkpoints of one model: the last was flagged in 16 % of series (the best is the luckiest of nine, and a
    plain paired interval ignores that); a 95 % interval allows about 2.5 % (5 % now: 100 replicates estimate the
    tail of the maximum over nine candidates coarsely)."""
    assert _flag_rate(10, 0.0) <= 0.07


def test_a_clearly_worse_last_checkpoint_is_still_flagged() -> None:
    assert _flag_rate(10, 0.3, trials=100) >= 0.9


def test_two_checkpoints_keep_the_plain_paired_interval() -> None:
    """With one candidate for the best there is nothing to be cursed by: the interval is the paired one, unchanged."""
    rng = np.random.default_rng(1)
    reps = {"a": {"mnist_fd": 1.0 + rng.normal(0, 0.05, 100)}, "b": {"mnist_fd": 1.3 + rng.normal(0, 0.05, 100)}}
    df = ranking.add_ranks(pd.DataFrame({"checkpoint": ["a", "b"], "status": "ok", "mnist_fd": [1.0, 1.3]}), "mnist_fd")
    late = ranking.late_collapse(df, "mnist_fd", reps, 0.1, 0.95)
    lo, hi = ranking.bootstrap_interval(1.3 - 1.0, reps["b"]["mnist_fd"] - reps["a"]["mnist_fd"], 0.95)
    assert (late["ci_low"], late["ci_high"]) == (lo, hi) and late["flag"]


def _last_nan(reps: dict[str, dict[str, np.ndarray]]) -> None:
    reps[list(reps)[-1]]["mnist_fd"][7] = np.nan


def _earlier_inf(reps: dict[str, dict[str, np.ndarray]]) -> None:
    for i, name in enumerate(list(reps)[:-1]):
        reps[name]["mnist_fd"][i] = np.inf


def test_a_non_finite_replicate_is_left_out_not_the_widening() -> None:
    """One NaN replicate of the last checkpoint (or an inf one of each earlier checkpoint: a degenerate resample) was
    enough to drop every candidate from the winner's-curse widening, and identical checkpoints were flagged in 16 %
    of series again; the replicate alone is left out, as it is from every bootstrap interval."""
    assert _flag_rate(10, 0.0, spoil=_last_nan) <= 0.07
    assert _flag_rate(10, 0.0, spoil=_earlier_inf) <= 0.07
    assert _flag_rate(10, 0.3, trials=100, spoil=_last_nan) >= 0.9


def test_replicates_none_of_them_finite_are_said_to_be_so() -> None:
    """Without a finite difference (last − best) among the replicates there is no interval: the threshold alone
    decides, and ``basis`` says why (it said no replicates were kept)."""
    rng = np.random.default_rng(2)
    reps = {"a": {"mnist_fd": np.full(100, np.nan)}, "b": {"mnist_fd": 1.3 + rng.normal(0, 0.05, 100)}}
    df = ranking.add_ranks(pd.DataFrame({"checkpoint": ["a", "b"], "status": "ok", "mnist_fd": [1.0, 1.3]}), "mnist_fd")
    late = ranking.late_collapse(df, "mnist_fd", reps, 0.1, 0.95)
    assert late["flag"] and np.isnan(late["ci_low"]) and np.isnan(late["ci_high"])
    assert late["basis"].startswith("only 0 of the 100 bootstrap replicates") and "threshold alone" in late["basis"]


def test_a_metric_without_replicates_is_judged_on_its_rows_spread() -> None:
    """KID keeps no bootstrap replicates: six sample sets of one generator, all within noise of 0, were judged by the
    relative threshold alone and the last called "went bad" (+43 %). Each row's kid_std now gives a normal interval
    of (last − best); a last checkpoint clearly worse than that spread is still flagged."""
    def late(last_kid: float, std: float = 0.003) -> dict:
        df = pd.DataFrame({"checkpoint": ["a", "b", "c"], "iteration": [1, 2, 3], "status": "ok",
                           "mnist_kid_mean": [-0.00385, 0.001, last_kid], "mnist_kid_std": std})
        return ranking.late_collapse(ranking.add_ranks(df, "mnist_kid_mean"), "mnist_kid_mean", {}, 0.1, 0.95)

    noise = late(0.00166)
    assert not noise["flag"] and noise["relative"] > 0.1 and noise["interval"] == "normal"
    half = 1.959964 * np.hypot(0.003, 0.003)
    assert (noise["ci_low"], noise["ci_high"]) == (
        approx(0.00166 + 0.00385 - half), approx(0.00166 + 0.00385 + half))
    assert "normal one from the two checkpoints' mnist_kid_std" in noise["basis"]
    assert late(0.05)["flag"]
    # a path length's _std is of the single lengths (√N times its mean's error): not a spread of the value
    df = pd.DataFrame({"checkpoint": ["a", "b", "c"], "iteration": [1, 2, 3], "status": "ok",
                       "mnist_ppl": [50.0, 40.0, 80.0], "mnist_ppl_std": [45.0, 38.0, 75.0]})
    ppl = ranking.late_collapse(ranking.add_ranks(df, "mnist_ppl"), "mnist_ppl", {}, 0.1, 0.95)
    assert ppl["flag"] and "interval" not in ppl and "judged by the threshold alone" in ppl["basis"]
    # replicates kept but not lining up: said so, not replaced by a normal interval
    reps = {"a": {"mnist_kid_mean": np.r_[np.full(50, 0.001), np.full(50, np.nan)]},
            "c": {"mnist_kid_mean": np.r_[np.full(50, np.nan), np.full(50, 0.002)]}}
    df = pd.DataFrame({"checkpoint": ["a", "c"], "iteration": [1, 2], "status": "ok", "mnist_kid_mean": [0.001, 0.01],
                       "mnist_kid_std": 0.003})
    odd = ranking.late_collapse(ranking.add_ranks(df, "mnist_kid_mean"), "mnist_kid_mean", reps, 0.1, 0.95)
    assert "only 0 of the 100 bootstrap replicates" in odd["basis"] and "interval" not in odd
    alone = late(0.00166, std=0.0)  # no spread measured (one KID subset): the threshold alone, as before, and said so
    assert alone["flag"] and "judged by the threshold alone" in alone["basis"] and "interval" not in alone


def approx(x: float) -> object:
    import pytest

    return pytest.approx(x, rel=1e-6)
