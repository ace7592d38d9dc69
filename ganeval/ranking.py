"""Ranking of a checkpoint series and the verdicts: best iteration, late-training collapse, mode collapse.

Intervals are bootstrap intervals over resampled sample indices; because every checkpoint is sampled
from the same latents, the same resampled indices are used for every checkpoint, which pairs the
replicates and makes intervals of differences between checkpoints tight. Each interval is the
replicates' percentile spread around their median, placed at the point estimate: resampling with
duplicates biases a Fréchet distance upwards, and re-centring removes that bias from the interval.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ganeval.metrics.directions import HIGHER_BETTER
from ganeval.metrics.interval import bootstrap_interval

__all__ = ["add_ranks", "bootstrap_interval", "copying_rows", "late_collapse", "mode_collapse_beyond_noise", "mode_collapse_rows",
           "primary_metric", "ranked_column"]


#: The Fréchet distances given to the top K checkpoints only, on a CPU: the others rank after them by MNIST FD.
INCEPTION_FDS = ("fid", "sfid")


def primary_metric(df: pd.DataFrame, requested: str | None) -> str:
    """The metric ranks are based on: as requested, else the first Fréchet distance computed of ``fid``, ``sfid``,
    ``mnist_fd``, ``custom_fd``."""
    if requested:
        return requested
    order = ("fid", "sfid", "mnist_fd", "custom_fd")
    for m in order:
        if m in df and df[m].notna().any():
            return m
    return next((m for m in order if m in df), "mnist_fd")


def add_ranks(df: pd.DataFrame, primary: str) -> pd.DataFrame:
    """Add ``rank`` (1 = best) and ``is_best``; lower is better for distances, higher for scores.

    With ``fid`` (or ``sfid``) primary, rows that have one rank first (by it), the others (not among the top K given
    Inception metrics) after them by MNIST FD; where a single row has one (``fd_ranks``), all rank by MNIST FD.
    """
    higher_better = primary in HIGHER_BETTER
    ok = df["status"] == "ok"
    key = df[primary].astype(float) * (-1 if higher_better else 1)
    if not fd_ranks(df, primary):
        key = pd.Series(np.nan, index=df.index)
    tier = pd.Series(np.where(key.notna(), 0, 1), index=df.index)
    fallback = df["mnist_fd"].astype(float) if (primary in INCEPTION_FDS and "mnist_fd" in df) else pd.Series(np.nan, index=df.index)
    order = pd.DataFrame({"ok": ~ok, "tier": tier, "key": key.fillna(np.inf), "fb": fallback.fillna(np.inf)})
    # A NaN/inf-sample generator is "ok" to rank (it got FID = inf) but sorts last among its tier.
    sorted_idx = order.sort_values(["ok", "tier", "key", "fb"], kind="stable").index
    df = df.copy()
    df["rank"] = pd.Series(pd.NA, index=df.index, dtype="Int64")
    # Ranked: every row whose samples held NaN/Inf (last), and each scored row with a value to order it by; a row
    # without the primary (nor FID's MNIST FD fallback) has no rank, so no file names a best the verdict does not.
    has_value = key.notna() | fallback.notna()
    rankable = [i for i in sorted_idx if df.at[i, "status"] == "nan_samples" or (df.at[i, "status"] == "ok" and has_value[i])]
    for r, i in enumerate(rankable, start=1):
        df.at[i, "rank"] = r
    # the best is a scored row with a finite value: where every row's samples held NaN/Inf (FD inf) the verdict
    # recommends none, and neither does summary.json's "best", scores.csv's is_best or the report's sample panel
    finite = np.isfinite(key.fillna(np.inf)) | (key.isna() & np.isfinite(fallback.fillna(np.inf)))
    df["is_best"] = (df["rank"] == 1).fillna(False).astype(bool) & ok & finite
    return df


def fd_ranks(df: pd.DataFrame, primary: str) -> bool:
    """Whether ``add_ranks`` orders the rows by ``primary``: not where an Inception FD (FID, sFID) was computed for
    fewer than two scored rows and MNIST FD for more (``--inception-top-k 0`` gives the last alone an FID: one FID
    compares with nothing, so ranking it first would crown the last whatever the others' MNIST FD)."""
    if primary not in INCEPTION_FDS or "mnist_fd" not in df:
        return True
    ok = df["status"] == "ok"
    return int((df[primary].notna() & ok).sum()) >= 2 or int((df["mnist_fd"].notna() & ok).sum()) < 2


def ranked_column(row: pd.Series, primary: str, df: pd.DataFrame) -> str:
    """The column ``add_ranks`` ordered ``row`` of ``df`` by: the primary, or MNIST FD where FID or sFID (primary)
    was not computed for it, or for it alone (``fd_ranks``)."""
    if (primary in INCEPTION_FDS and not pd.isna(row.get("mnist_fd", np.nan))
            and (pd.isna(row.get(primary)) or not fd_ranks(df, primary))):
        return "mnist_fd"
    return primary


def late_collapse(
    df: pd.DataFrame, primary: str, replicates: dict[str, dict[str, np.ndarray]], threshold: float, level: float
) -> dict[str, Any]:
    """Is the last checkpoint worse than the best by more than ``threshold`` (relative), with a paired
    bootstrap interval of (last − best) wholly on the worse side of zero? The interval is widened for having picked
    the best among the earlier checkpoints by the same noise (:func:`selection_factor`). Without replicates of the primary
    metric (``--bootstrap 0``, or a metric that has none) a normal interval from each row's own spread (a ``_std`` column
    or the row's interval) decides where there is one (``interval: "normal"``), else the threshold alone, and ``basis``
    says which.

    The best is the checkpoint ``add_ranks`` ranked first; when FID was not computed for it (ranked by MNIST
    FD, e.g. ``--inception-top-k 0``) both are compared on MNIST FD, and ``metric`` says so."""
    chosen = df[(df["rank"] == 1).fillna(False).astype(bool)] if "rank" in df else df.iloc[:0]
    result: dict[str, Any] = {"flag": False, "metric": primary, "threshold": threshold}
    if chosen.empty:
        result["reason"] = f"no checkpoint has {primary}"
        return result
    best = chosen.iloc[0]
    col = result["metric"] = ranked_column(best, primary, df)
    if not math.isfinite(float(best[col])):  # every checkpoint's samples held NaN/Inf: no best (is_best names none)
        result["reason"] = f"no checkpoint has a finite {col}"
        return result
    # The last checkpoint judged: an unreadable file, or one whose value was not computed, is passed over (noted).
    # One whose samples held NaN/Inf (status nan_samples) is judged: that is training gone bad.
    usable = df[(df["status"] == "nan_samples") | ((df["status"] == "ok") & df[col].notna())]
    last = usable.iloc[-1]  # not empty: the best is in it
    if last["checkpoint"] != df.iloc[-1]["checkpoint"]:
        why = "could not be scored" if df.iloc[-1]["status"] == "error" else f"has no {col}"
        result["note"] = f"the last file {df.iloc[-1]['checkpoint']} {why}; judging {last['checkpoint']}"
    result.update({"best": best["checkpoint"], "last": last["checkpoint"]})
    lv, bv = float(last.get(col, np.nan)), float(best[col])
    if last["checkpoint"] == best["checkpoint"]:
        result.update({"difference": 0.0, "relative": 0.0, "reason": "the last checkpoint is the best"})
        return result
    if not math.isfinite(lv) or last["status"] == "nan_samples":  # diverged: no difference can be measured
        result.update({"flag": True, "difference": float("nan"), "relative": float("inf"), "unmeasurable": True,
                       "reason": f"the last checkpoint's samples hold NaN/Inf values ({col} = {lv})"})
        return result
    higher_better = col in HIGHER_BETTER
    diff = lv - bv  # in the metric's own direction; "relative" is how much worse (positive: worse), either direction
    worse = -diff if higher_better else diff
    rel = worse / abs(bv) if bv else (float("inf") if worse > 0 else 0.0)
    reps_l = replicates.get(last["checkpoint"], {}).get(col)
    reps_b = replicates.get(best["checkpoint"], {}).get(col)
    lo = hi = float("nan")
    if reps_l is not None and reps_b is not None and len(reps_l) == len(reps_b):
        with np.errstate(invalid="ignore"):  # inf − inf: NaN, left out of the interval
            lo, hi = bootstrap_interval(diff, np.asarray(reps_l, dtype=float) - np.asarray(reps_b, dtype=float), level)
        judged = set(usable["checkpoint"]) - {last["checkpoint"]}  # the checkpoints the best was picked from
        others = [np.asarray(r[col], dtype=float) for name, r in replicates.items() if name in judged and col in r]
        widen, candidates = selection_factor(np.asarray(reps_l, dtype=float), others, higher_better, level)
        if widen > 1:
            lo, hi = diff - widen * (diff - lo), diff + widen * (hi - diff)
        result["candidates"] = candidates
    spread = _spread_interval(last, best, col, level) if reps_l is None or reps_b is None else None
    if spread is not None:  # no replicates, but each row has a spread: KID's over subsets, IS's over splits, an interval
        (lo, hi), source = (diff - spread[0], diff + spread[0]), spread[1]
        result.update({"interval": "normal", "basis": f"no bootstrap replicates of {col} were kept: the interval of "
                       f"(last − best) is a normal one from the two checkpoints' {source}"})
    if math.isfinite(lo) and math.isfinite(hi):
        beyond_noise = hi < 0 if higher_better else lo > 0  # the whole interval on the worse side of zero
    else:
        beyond_noise = True
        result["basis"] = (f"no bootstrap replicates of {col} were kept, so the difference (last − best) has no "
                           "interval: judged by the threshold alone")
        if reps_l is not None and reps_b is not None and len(reps_l) == len(reps_b) and len(reps_l):
            with np.errstate(invalid="ignore"):
                finite = int(np.isfinite(np.asarray(reps_l, dtype=float) - np.asarray(reps_b, dtype=float)).sum())
            result["basis"] = (f"only {finite} of the {len(reps_l)} bootstrap replicates of the difference (last − best) "
                               f"in {col} are finite, too few for an interval: judged by the threshold alone")
    result.update({"difference": diff, "relative": rel, "ci_low": lo, "ci_high": hi, "ci_level": level,
                   "flag": bool(rel > threshold and beyond_noise)})
    return result


def _spread_interval(last: pd.Series, best: pd.Series, col: str, level: float) -> tuple[float, str] | None:
    """The half-width z·√(s_last² + s_best²) of a normal interval of (last − best), each s a row's own spread of
    ``col``: KID's or IS's ``_std`` column (over subsets, over splits: each no smaller than the value's standard
    error) or its interval's half-width over z. Without it a metric keeping no replicates was judged by the relative
    threshold alone: KIDs of one generator's sample sets, all within noise of 0, flagged "went bad" (+43 %)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf((1 + level) / 2)
    # KID's and IS's spreads alone: a path length's _std is of the single lengths, √N times its mean's error
    std_col = (col.removesuffix("_mean") + "_std" if col.endswith(("kid_mean", "is_mean"))
               else col + "_std" if col.endswith("_is") else None)
    std_col = std_col if std_col in last.index else None
    sds = []
    for row in (last, best):
        if std_col is not None and np.isfinite(float(row.get(std_col, np.nan))):
            sds.append(float(row[std_col]))
            continue
        lo, hi = float(row.get(f"{col}_ci_low", np.nan)), float(row.get(f"{col}_ci_high", np.nan))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return None
        sds.append((hi - lo) / (2 * z))
    if not math.hypot(*sds) > 0:  # one KID subset: no spread measured, not an exact value
        return None
    return z * math.hypot(*sds), (f"{std_col} (taken as standard errors)" if std_col is not None
                                  else f"{100 * level:g}% intervals of {col}")


def selection_factor(last: np.ndarray, others: list[np.ndarray], higher_better: bool, level: float) -> tuple[float, int]:
    """How far to widen the interval of (last − best) because the best was picked, by the same sampling noise, as the
    best of ``others`` (the winner's curse), and how many candidates it was picked from.

    Each candidate k's replicates of (last − k), ``d_kb``, deviate from their median towards "worse" by ``t_kb`` of its
    interval's half-width on that side; the factor is the level's upper quantile of max_k t_kb (at least 1): the
    intervals of (last − k) widened by it hold for every k at once, so for the one that looked best. Without it, 4–15
    checkpoints of one model flagged the last as significantly worse 5–11 % of the time instead of ≤ 2.5 %."""
    # A replicate whose difference is not finite (a degenerate resample) is left out of its candidate, as
    # bootstrap_interval leaves it out of an interval; a candidate without 2 finite ones (diverged) was never the best.
    with np.errstate(invalid="ignore"):  # inf − inf: NaN, left out below
        diffs = [np.where(np.isfinite(d), d, np.nan) for d in (last - o for o in others if len(o) == len(last) >= 2)]
    diffs = [d for d in diffs if np.isfinite(d).sum() >= 2]
    if len(diffs) < 2:
        return 1.0, len(diffs)
    q = (1 - level) / 2 if not higher_better else (1 + level) / 2
    t = []
    for d in diffs:
        finite = d[np.isfinite(d)]
        med, edge = np.median(finite), np.quantile(finite, q)
        half = abs(med - edge)
        if half > 0:  # a constant difference has no noise to be cursed by
            t.append((med - d if not higher_better else d - med) / half)  # NaN where the replicate was left out
    worst = np.max(np.where(np.isnan(t), -np.inf, t), axis=0) if t else np.array([])  # per replicate, over its candidates
    worst = worst[np.isfinite(worst)]
    if worst.size < 2:
        return 1.0, len(diffs)
    return max(1.0, float(np.quantile(worst, (1 + level) / 2))), len(diffs)


def mode_collapse_rows(df: pd.DataFrame, min_modes: int, max_kl: float) -> pd.Series:
    """Per row: fewer than ``min_modes`` classes covered or class KL above ``max_kl``; <NA> (not tested, a nullable
    boolean) where the row has neither value: the ``modes`` metric was not asked for, or the row was not scored."""
    if "modes_covered" not in df:
        return pd.Series(pd.NA, index=df.index, dtype="boolean")
    modes = df["modes_covered"].astype(float)
    kl = df["class_kl"].astype(float) if "class_kl" in df else pd.Series(np.nan, index=df.index)
    flag = ((modes < min_modes) | (kl > max_kl)).astype("boolean")
    return flag.mask(modes.isna() & kl.isna())


#: C_T columns of the copying test (MNIST-classifier and Inception features).
COPYING_COLUMNS = ("copying_ct", "inception_copying_ct")


def copying_rows(df: pd.DataFrame, threshold: float) -> pd.Series:
    """Per row: the data-copying statistic C_T (in any feature space computed) below ``threshold`` (samples sit
    closer to training images than held-out real images do: memorisation); <NA> (not tested) without any C_T."""
    cols = [c for c in COPYING_COLUMNS if c in df]
    if not cols:
        return pd.Series(pd.NA, index=df.index, dtype="boolean")
    ct = df[cols].astype(float)
    return (ct < threshold).any(axis=1).astype("boolean").mask(ct.isna().all(axis=1))


def mode_collapse_beyond_noise(df: pd.DataFrame, min_modes: int, max_kl: float) -> pd.Series:
    """Per row: the mode-collapse rule holds for the whole bootstrap interval (class KL interval above ``max_kl``,
    or even the interval's upper end of covered classes below ``min_modes``); <NA> (not tested) without an interval
    (``--bootstrap 0``, no ``modes``). ``mode_collapse & this`` is then <NA> for a flagged row, False for the others."""
    nan = pd.Series(np.nan, index=df.index)
    kl_lo = df["class_kl_ci_low"].astype(float) if "class_kl_ci_low" in df else nan
    modes_hi = df["modes_ci_high"].astype(float) if "modes_ci_high" in df else nan
    return ((kl_lo > max_kl) | (modes_hi < min_modes)).astype("boolean").mask(kl_lo.isna() & modes_hi.isna())


def sizes_note(sizes: list[int]) -> str | None:
    """A note when rows were scored at different N (``sizes`` ascending): the N-dependent bias then differs between
    the rows being ranked; None at one N."""
    if len(sizes) < 2:
        return None
    cap = f" (or --num-samples at most the smallest, {sizes[0]})" if sizes[0] >= 2 else ""  # N=1 is no --num-samples
    return (f"rows were scored at different N ({sizes[0]}–{sizes[-1]}): Fréchet distances are biased upwards at "
            "smaller N and precision/recall/coverage move with N, so a row of fewer samples ranks worse than "
            f"an equally good one of more; score sample sets of one size{cap} to compare them")


def off_the_run_latents(latents: dict[str, str]) -> set[str]:
    """The generators (name → latent size and type) that did not draw the run's latent set: the one most of them
    share, the first's on a tie. Generators of another latent size draw other latents, so nothing pairs them with
    the run's, though they share its resampled indices (which then act as independent resamples)."""
    counts: dict[str, int] = {}
    for key in latents.values():
        counts[key] = counts.get(key, 0) + 1
    run = max(counts, key=counts.__getitem__) if counts else None  # the first of the most common
    return {name for name, key in latents.items() if key != run}


def latents_note(latents: dict[str, str]) -> str | None:
    """A note naming the generators off the run's latent set (``off_the_run_latents``); None when all share it."""
    if not (apart := off_the_run_latents(latents)):
        return None
    run = next(key for name, key in latents.items() if name not in apart)
    named = ", ".join(f"{name} ({latents[name]})" for name in latents if name in apart)
    return (f"generators of another latent size or type draw other latents than the run's ({run}): {named}; differences "
            "with them are not paired (their intervals come from independent resamples, and say so)")
