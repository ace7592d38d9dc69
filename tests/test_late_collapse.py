"""The late-training flag against the winner's curse: the best checkpoint is the one that looked best by the same
sampling noise its interval of (last − best) is made from, so that interval must hold for every checkpoint the best
could have been, or identical checkpoints get "training went bad at the end" far more often than the level allows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ganeval import ranking


def _flag_rate(k: int, last_shift: float, trials: int = 300, sd: float = 0.05, seed: int = 0) -> float:
    """How often ``late_collapse`` flags a series of ``k`` checkpoints of one model (FD 1, sampling sd ``sd``; the last
    moved by ``last_shift``), each with 100 paired bootstrap replicates (a shared part plus its own noise)."""
    rng = np.random.default_rng(seed)
    flags = 0
    for _ in range(trials):
        values = 1.0 + rng.normal(0, sd, k)
        values[-1] += last_shift
        shared = rng.normal(0, sd, 100)  # paired: every checkpoint's replicate b resamples the same latents
        reps = {f"c{i}": {"mnist_fd": v + 0.02 + shared + rng.normal(0, sd, 100)} for i, v in enumerate(values)}
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
