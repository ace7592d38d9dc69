"""The difference of each arm from the baseline in ``compare``: its interval and the test that decides it.

One run against one: a bootstrap interval of the difference (paired over samples for generators), and for
Fréchet distances with kept features of at most ``MAX_DIM`` dimensions a permutation test
(:mod:`ganeval.metrics.permutation`, stopped early by Besag–Clifford's rule), which is properly sized near the
floor where the interval is conservative. Several runs per arm: a Welch t-interval over the runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from ganeval.metrics.directions import DIFFERENCE_WORDS
from ganeval.metrics.interval import bootstrap_interval
from ganeval.metrics.permutation import MAX_DIM, PermutationResult, fd_difference_test
from ganeval.score_result import ScoreResult

#: The Fréchet distances with bootstrap replicates (lower is better); the first computed is compare's primary metric.
FD_METRICS = ("fid", "sfid", "mnist_fd", "custom_fd")
#: Metrics with bootstrap replicates: the ones that get an interval of the difference (path length: with --bootstrap).
DIFF_METRICS = (*FD_METRICS, "mnist_ppl", "custom_ppl")
#: The extractor whose features each difference metric is computed from.
EXTRACTOR_OF = {"fid": "inception", "sfid": "inception-spatial", "mnist_fd": "mnist", "custom_fd": "custom"}


#: ``compare``'s defaults for its permutation test: never refused, where another value no test reads is.
PERMUTATIONS, SEQUENTIAL = 1000, 10


def check_test_read(permutations: int, sequential: int, metrics: tuple[str, ...], bootstrap: int, runs: list[int]) -> None:
    """Refuse a ``--permutations`` (other than 0, "none") or ``--sequential`` other than its default where no
    permutation test runs, before any work: it decides mnist_fd and custom_fd differences (Inception's 2048
    dimensions are beyond ``MAX_DIM``), beside a bootstrap interval, of one run against one (``runs``: the number
    of runs of the baseline arm, then of each other arm). The default is what ganeval runs by itself (gate's
    baseline model, early stopping): never refused."""
    from ganeval.errors import GanevalError
    from ganeval.metrics.registry import METRICS

    if permutations == 0 and sequential != SEQUENTIAL:
        raise GanevalError(f"--sequential {sequential} stops the permutation test early, and --permutations 0 runs none: "
                           "leave one out")
    given = [f"--{name} {value}" for name, value, default in (("permutations", permutations, PERMUTATIONS),
                                                               ("sequential", sequential, SEQUENTIAL))
             if value != default and permutations > 0]
    if not given or any(m not in METRICS for m in metrics):  # an unknown metric: the options' check names it
        return
    if not {"mnist_fd", "custom_fd"} & {c for m in metrics for c in METRICS[m].columns}:
        why = f"decides mnist_fd and custom_fd differences, and --metrics ({', '.join(metrics)}) has neither"
    elif bootstrap == 0:
        why = "decides beside the bootstrap interval of the difference, and --bootstrap 0 computes none"
    elif runs[0] >= 2 or all(n >= 2 for n in runs[1:]):
        why = "compares one run with one, and every arm here is compared with the baseline over several runs (Welch)"
    else:
        return
    raise GanevalError(f"{given[0]}: the permutation test {why}: leave it out")


def min_permutations(level: float) -> int:
    """The fewest re-labellings P whose smallest p, 1 / (P + 1), is below 1 − ``level`` (the verdict's test, in
    floats as it is made): with fewer, no difference can be significant whatever the data (0.95: 19)."""
    p = max(1, math.floor(1 / (1 - level)) - 2)
    while 1 / (p + 1) >= 1 - level:
        p += 1
    return p


def _scored(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The rows of ``names`` that were scored (NaN/Inf samples included: their distance is infinite)."""
    return df[df["checkpoint"].isin(names) & df["status"].isin(["ok", "nan_samples"])]


def scored_sizes(df: pd.DataFrame, names: list[str]) -> list[int]:
    """The sample counts the scored runs of ``names`` actually had (a sample set may hold fewer than asked)."""
    return [int(v) for v in pd.to_numeric(_scored(df, names)["n_samples"], errors="coerce").dropna()] if "n_samples" in df else []


def n_text(sizes: list[int]) -> str:
    """"500", or "300–500" when the runs had different sample counts ("?" when none was scored)."""
    if not sizes:
        return "?"
    lo, hi = min(sizes), max(sizes)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def _values(df: pd.DataFrame, names: list[str], col: str) -> np.ndarray:
    rows = _scored(df, names)
    return pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float) if col in rows else np.array([])


def _arm_replicates(result: ScoreResult, df: pd.DataFrame, names: list[str], col: str) -> np.ndarray | None:
    """Replicates of the arm's mean over its scored runs (the same resampled indices in every run)."""
    reps = [result.replicates.get(n, {}).get(col) for n in _scored(df, names)["checkpoint"]]
    if not reps or any(r is None for r in reps) or len({len(r) for r in reps}) != 1:
        return None
    return np.mean(np.stack(reps), axis=0)


def _permutation_test(result: ScoreResult, arm: str, base: str, col: str, paired: bool, permutations: int,
                      sequential: int) -> PermutationResult | None:
    """The permutation test of FD(arm) − FD(base) on the kept features; None where it does not apply."""
    ex = EXTRACTOR_OF.get(col)
    fa, fb = result.features.get(arm, {}).get(ex), result.features.get(base, {}).get(ex)
    if permutations < 1 or fa is None or fb is None or ex not in result.refs or fa.shape[1] > MAX_DIM:
        return None
    if (paired and fa.shape != fb.shape) or fa.shape[1] != fb.shape[1] or min(len(fa), len(fb)) < 2:
        return None  # stored sets of other sizes are pooled and split back at their sizes
    if not (torch.isfinite(fa).all() and torch.isfinite(fb).all()):
        return None
    return fd_difference_test(fa, fb, result.refs[ex], paired, permutations, sequential=sequential)


def _difference(result: ScoreResult, df: pd.DataFrame, arm: list[str], base: list[str], col: str, level: float,
                paired: bool, permutations: int = 0, sequential: int = 0) -> dict[str, Any]:
    a, b = _values(df, arm, col), _values(df, base, col)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    out: dict[str, Any] = {"runs": len(a), "baseline_runs": len(b)}
    if not len(a) or not len(b):  # the side that was scored keeps its value
        return {**out, "method": "not computed in both arms", "value": float(a.mean()) if len(a) else math.nan,
                "baseline_value": float(b.mean()) if len(b) else math.nan}
    va, vb = float(a.mean()), float(b.mean())
    d = va - vb
    out.update(value=va, baseline_value=vb, difference=d, relative=d / abs(vb) if vb and math.isfinite(vb) else math.nan)
    if not (math.isfinite(va) and math.isfinite(vb)):
        out.update(method="non-finite (samples with NaN/Inf)", significant=math.isfinite(va) != math.isfinite(vb))
        return out
    if len(a) >= 2 and len(b) >= 2:
        from scipy import stats as sstats  # here: scipy.stats takes half a second to import

        res = sstats.ttest_ind(a, b, equal_var=False)
        lo, hi = res.confidence_interval(level)
        out.update(ci_low=float(lo), ci_high=float(hi), p_value=float(res.pvalue), method="Welch t-interval over runs")
    else:
        ra, rb = _arm_replicates(result, df, arm, col), _arm_replicates(result, df, base, col)
        if ra is None or rb is None:
            return {**out, "method": "no bootstrap replicates (--bootstrap 0)", "significant": False}
        lo, hi = bootstrap_interval(d, ra - rb, level)
        unit = "latent pairs" if col in DIFFERENCE_WORDS else "samples"  # path length resamples its pairs
        how = f"paired bootstrap over {unit}" if paired else f"bootstrap over {unit} (independent resamples)"
        if max(len(a), len(b)) >= 2:
            how += "; run-to-run variation not included (one arm has a single run)"
        out.update(ci_low=lo, ci_high=hi, method=how)
        single = len(arm) == len(base) == 1
        t = _permutation_test(result, arm[0], base[0], col, paired, permutations, sequential) if single else None
        if t is not None:  # the decision: a permutation test is properly sized where the interval is conservative
            out.update(p_value=t.p_value, significant=t.p_value < 1 - level, relabellings=t.drawn,
                       method=f"{how}; verdict by a {'paired ' if paired else ''}permutation test ({t.describe()})")
            return out
    lo, hi = out["ci_low"], out["ci_high"]
    out["significant"] = bool(math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0))
    return out


def _verdict_word(row: dict[str, Any]) -> str:
    if row["method"].startswith("no bootstrap replicates"):
        return "not tested"
    if row["method"].startswith("non-finite") and not row.get("significant"):  # NaN/Inf samples on both sides
        return "not measurable"
    if not row.get("significant"):
        return "no detectable difference"
    lower, higher = DIFFERENCE_WORDS.get(row["metric"], ("better", "worse"))  # the distances: lower is better
    return lower if row["difference"] < 0 else higher


def differences(result: ScoreResult, members: dict[str, list[str]], baseline: str, level: float,
                permutations: int = 0, sequential: int = 0) -> pd.DataFrame:
    """One row per (arm ≠ baseline, metric in ``DIFF_METRICS`` computed in both): difference, interval, verdict
    (single runs with kept features of at most ``MAX_DIM`` dimensions: decided by up to ``permutations``
    re-labellings, stopped at the ``sequential``-th as extreme; ``relabellings`` says how many were drawn)."""
    df = result.table
    rows = []
    for arm, names in members.items():
        if arm == baseline:
            continue
        for col in DIFF_METRICS:
            if col not in df or df[col].isna().all():
                continue
            paired = bool(df.loc[df["checkpoint"].isin(names + members[baseline]), "paired"].all()) if "paired" in df else True
            paired &= len({result.latents.get(n) for n in names + members[baseline]}) == 1  # one latent size and type
            row = {"arm": arm, "baseline": baseline, "metric": col, "level": level,
                   **_difference(result, df, names, members[baseline], col, level, paired, permutations, sequential)}
            if "difference" in row:
                row["verdict"] = _verdict_word(row)
            rows.append(row)
    cols = ["arm", "baseline", "metric", "value", "baseline_value", "difference", "relative", "ci_low", "ci_high", "level",
            "significant", "verdict", "p_value", "relabellings", "runs", "baseline_runs", "method"]
    out = pd.DataFrame(rows)
    for c in cols:
        if c not in out:
            out[c] = np.nan
    out["relabellings"] = out["relabellings"].astype("Int64")  # a count, empty where no test was drawn (not 1000.0)
    return out[cols]

