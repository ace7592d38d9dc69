"""The run summary: which checkpoint to keep and why, the verdicts, and the provenance of every number."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from ganeval.metrics.interval import ci_percent, few_replicates_note
from ganeval.options import ScoreOptions
from ganeval.ranking import ranked_column
from ganeval.version import __version__

SCHEMA_VERSION = 1
BOOTSTRAP_METHOD = ("bootstrap over resampled sample indices (percentile spread about the median, centred on the estimate), "
                    "paired across checkpoints that share the latent set")


#: Columns whose interval columns have another stem (``modes_ci_low`` for ``modes_covered``).
CI_PREFIX = {"modes_covered": "modes"}
#: Rankable columns that are counts: printed as integers.
COUNTS = frozenset({"modes_covered"})


def json_value(x: Any) -> Any:
    """JSON-safe number: NaN → None, ±inf → the strings "inf"/"-inf"."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    if math.isnan(f):
        return None
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f


def row_dict(row: pd.Series) -> dict[str, Any]:
    """One table row as JSON-safe values."""
    return {k: json_value(v) for k, v in row.items()}


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.3g}" if abs(x) < 10 else f"{x:.2f}"


def _collapse_example(row: pd.Series, level: float) -> str:
    """``name (8 classes covered, class KL 0.31, 95% CI [0.27, 0.35])``: a flagged checkpoint with its evidence."""
    n = int(row["modes_covered"]) if not pd.isna(row.get("modes_covered")) else None
    covered = "classes covered unknown" if n is None else f"{n} class{'' if n == 1 else 'es'} covered"
    text = f"{row['checkpoint']} ({covered}, class KL {_fmt(float(row['class_kl']))}"
    lo, hi = row.get("class_kl_ci_low"), row.get("class_kl_ci_high")
    if lo is not None and not pd.isna(lo):
        text += f", {ci_percent(level)}% CI [{_fmt(float(lo))}, {_fmt(float(hi))}]"
    return text + ")"


def ci_kind(late: dict[str, Any]) -> str:
    """How the interval of (last − best) was made: "paired" (shared latents at full N, the same resampled indices
    for both), "independent-resample" (stored samples or short sets: each resampled on its own) or
    "normal-approximation" (no replicates: from each row's own spread)."""
    if late.get("interval") == "normal":  # from each row's spread, not resampled
        return "normal-approximation"
    return "paired" if late.get("paired", True) else "independent-resample"


def _floor_clause(floor: dict[str, Any] | None, primary: str) -> str:
    """``; real held-out images at this N: 1.02``, or nothing when the floor was not scored or lacks the metric."""
    value = (floor or {}).get("values", {}).get(primary)
    if value is None or isinstance(value, str):
        return ""
    return f"; real held-out images at this N: {_fmt(float(value))}"


def verdict_text(df: pd.DataFrame, primary: str, late: dict[str, Any], level: float = 0.95,
                 floor: dict[str, Any] | None = None, replicates: int = 0) -> str:
    """One or two plain sentences: the checkpoint to keep (beside the real-data floor when scored), and whether
    training went bad at the end; with too few ``replicates`` for ``level``, that its intervals are narrower than said."""
    best = df[(df["rank"] == 1).fillna(False).astype(bool)] if "rank" in df else df[df["is_best"]]  # is_best: finite only
    if best.empty:
        if (df["status"] == "ok").any():
            return f"No checkpoint has a {primary} value: it could not be computed (see the notes)."
        return "No checkpoint could be scored."
    b = best.iloc[0]
    col = ranked_column(b, primary, df)  # FID primary but not computed for the best (or it alone): ranked by MNIST FD
    if not math.isfinite(float(b[col])):
        if b["status"] == "nan_samples":
            return f"No checkpoint has a finite {primary}: the samples of every one hold NaN/Inf values (see each row's status)."
        return f"No checkpoint has a finite {primary} (see each row's status and the notes)."
    where = f" (iteration {b['iteration']})" if not pd.isna(b["iteration"]) else ""
    show = (lambda v: str(int(v))) if col in COUNTS else _fmt  # a count of classes is 9, not "9.00"
    text = f"Keep {b['checkpoint']}{where}: it has the best {col} ({show(float(b[col]))})"
    ci = CI_PREFIX.get(col, col)
    lo, hi = b.get(f"{ci}_ci_low"), b.get(f"{ci}_ci_high")
    if lo is not None and not pd.isna(lo):
        text += f", {ci_percent(level)}% CI [{show(float(lo))}, {show(float(hi))}]"
    if col != primary:
        text += f" ({primary} not computed for it)" if pd.isna(b.get(primary)) else f" ({primary} computed for one checkpoint alone)"
    text += _floor_clause(floor, col) + "."
    judged = late.get("metric", primary)
    if late.get("flag") and late.get("unmeasurable"):
        text += (f" Training went bad at the end: the samples of the last checkpoint {late['last']} hold NaN/Inf values,"
                 f" so its {judged} cannot be measured.")
    elif late.get("flag"):
        diff = float(late["difference"])
        text += (f" Training went bad at the end: the last checkpoint {late['last']} is {_fmt(100 * late['relative'])}% worse"
                 f" ({judged} {'+' if diff >= 0 else ''}{_fmt(diff)}")
        if not pd.isna(late.get("ci_low", float("nan"))):
            text += f", {ci_kind(late)} CI [{_fmt(late['ci_low'])}, {_fmt(late['ci_high'])}]"
        text += ")."
    elif late.get("last") and late.get("last") != late.get("best") and late.get("relative") is not None:
        rel = float(late["relative"])
        text += (f" The last checkpoint {late['last']} is {_fmt(100 * rel)}% worse, not a significant late-training"
                 f" collapse (threshold {_fmt(100 * late['threshold'])}%")
        if late.get("ci_low") is not None and not pd.isna(late.get("ci_low")):
            text += f", {ci_kind(late)} CI of the difference [{_fmt(float(late['ci_low']))}, {_fmt(float(late['ci_high']))}]"
        text += ")."
    else:
        text += " The last scored checkpoint is the best one." if late.get("note") else " The last checkpoint is the best one."
    if late.get("basis") and late.get("last") != late.get("best"):
        text += f" ({str(late['basis']).capitalize()}.)"
    if late.get("note"):
        text += f" Note: {late['note']}."
    collapsed = df[df["mode_collapse"].fillna(False).astype(bool)] if "mode_collapse" in df else df.iloc[:0]
    if not collapsed.empty:
        text += f" Mode collapse in {len(collapsed)} checkpoint(s), e.g. {_collapse_example(collapsed.iloc[0], level)}"
        if "mode_collapse_sure" in df and not pd.isna(collapsed.iloc[0].get("class_kl_ci_low", float("nan"))):
            sure = int(collapsed["mode_collapse_sure"].fillna(False).astype(bool).sum())
            text += f"; {sure} of them beyond sampling noise (the whole interval past the limit)"
        text += "."
    copying = df[df["data_copying"].fillna(False).astype(bool)] if "data_copying" in df else df.iloc[:0]
    if not copying.empty:
        cols = [c for c in ("copying_ct", "inception_copying_ct") if c in copying]
        ct = copying[cols].astype(float).min(axis=1)
        worst = copying.loc[ct.idxmin()]
        text += (f" Data copying (memorised training images) in {len(copying)} checkpoint(s), strongest in"
                 f" {worst['checkpoint']} (C_T {_fmt(float(ct.min()))}).")
    if (" CI [" in text or " CI of the difference [" in text) and few_replicates_note(replicates, level) is not None:
        text += (f" (These intervals come from {replicates} bootstrap replicates, too few for {ci_percent(level)}%: "
                 "they are narrower than that; see summary.json's bootstrap.few_replicates.)")
    return text


def scored_sizes(df: pd.DataFrame) -> list[int]:
    """The sample counts the checkpoints were really scored at, ascending (a sample set shorter than --num-samples is
    scored whole): what every N-dependent number of the run (Fréchet distances, the real floor) holds for."""
    if "n_samples" not in df or "status" not in df:
        return []
    n = pd.to_numeric(df.loc[df["status"].isin(["ok", "nan_samples"]), "n_samples"], errors="coerce").dropna()
    return sorted({int(v) for v in n})


def _flagged(df: pd.DataFrame, col: str) -> tuple[list[str], bool]:
    """The checkpoints whose flag ``col`` is true, and whether any row was tested at all (the column is a nullable
    boolean: <NA> where the metric behind it was not computed)."""
    if col not in df:
        return [], False
    flag = df[col].astype("boolean")
    return df.loc[flag.fillna(False).astype(bool), "checkpoint"].tolist(), bool(flag.notna().any())


def _has_mode_intervals(df: pd.DataFrame) -> bool:
    """Whether any row has a bootstrap interval of class KL or of classes covered (none with ``--bootstrap 0``)."""
    cols = [c for c in ("class_kl_ci_low", "modes_ci_high") if c in df]
    return any(bool(np.isfinite(pd.to_numeric(df[c], errors="coerce").astype(float)).any()) for c in cols)


def build_summary(df: pd.DataFrame, primary: str, late: dict[str, Any], opts: ScoreOptions, provenance: dict[str, Any],
                  notes: list[str], seconds: float, world: int, floor: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``summary.json`` content (also what ``--json`` prints and what ``gate`` reads); ``floor``: the scored
    held-out real images (``ganeval.real_floor``), or None."""
    best = df[df["is_best"]]
    collapsed, mode_tested = _flagged(df, "mode_collapse")
    sure = _flagged(df, "mode_collapse_sure")[0]
    if not _has_mode_intervals(df):
        sure = None  # not tested (--bootstrap 0): no interval to be "beyond noise" with, which [] would claim
    copying, copying_tested = _flagged(df, "data_copying")
    return {
        "schema": SCHEMA_VERSION,
        "ganeval_version": __version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "primary_metric": primary,
        "best": row_dict(best.iloc[0]) if not best.empty else None,
        "last": row_dict(df[df["status"] != "error"].iloc[-1]) if (df["status"] != "error").any() else None,
        "late_collapse": {k: json_value(v) for k, v in late.items()},
        # "flag": null and "tested": false when no row was tested (no `modes` / `copying` metric): never "no"
        "mode_collapse": {"flag": bool(collapsed) if mode_tested else None, "tested": mode_tested, "checkpoints": collapsed,
                          "beyond_noise": sure,
                          "min_modes": json_value(opts.min_modes), "max_class_kl": json_value(opts.max_class_kl),
                          "ci_level": opts.ci},  # json_value: an unbounded limit (inf) is "inf", strict JSON has none
        "data_copying": {"flag": bool(copying) if copying_tested else None, "tested": copying_tested, "checkpoints": copying,
                         "threshold": opts.copying_threshold},
        "verdict": verdict_text(df, primary, late, opts.ci, floor, opts.bootstrap),
        "real_floor": floor,
        "n_checkpoints": int(len(df)),
        "n_errors": int((df["status"] == "error").sum()),
        "n_samples": opts.num_samples,
        "n_scored": scored_sizes(df),
        "seed": opts.seed,
        # null where no extractor read reference statistics (Inception Scores, modes, path lengths alone): the
        # default --reference was then not used, and naming it would read as if these numbers depended on it
        "reference": str(opts.reference) if any(isinstance(p, dict) and "reference" in p for p in provenance.values()) else None,
        "precision": opts.precision,
        "bootstrap": {"replicates": opts.bootstrap, "level": opts.ci, "method": BOOTSTRAP_METHOD,
                      "few_replicates": few_replicates_note(opts.bootstrap, opts.ci)},  # null: enough for the level
        "provenance": provenance,
        "options": opts.as_dict(),
        "notes": notes,
        "seconds": round(seconds, 1),
        "world_size": world,
        "rows": [row_dict(r) for _, r in df.iterrows()],
    }
