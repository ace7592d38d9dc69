"""``compare``: is model B better than model A, beyond noise?

Every model (an *arm*) is scored in one run: the same latent set, the same reference statistics, the same
resampled indices. Each arm's difference from the baseline arm gets an interval:

- one run per arm: a bootstrap interval of the difference, paired over samples (generators share the latent
  set). It covers sampling noise only, not how much another training seed would change the result;
- several runs per arm (training seeds), in both arms: a Welch t-interval over the runs, which covers both.

Only Fréchet distances and path lengths (``mnist_ppl``, ``custom_ppl``) carry bootstrap replicates, so only they
get difference intervals; the other metrics are reported per arm.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganeval.atomic import report_folder
from ganeval.compare_tests import (
    DIFF_METRICS,
    FD_METRICS,
    PERMUTATIONS,
    SEQUENTIAL,
    _arm_replicates,
    _scored,
    check_test_read,
    differences,
    min_permutations,
    n_text,
    scored_sizes,
)
from ganeval.distributed import DistContext, from_env
from ganeval.errors import GanevalError, require_bool, require_count
from ganeval.evaluate import score_series
from ganeval.hint_use import check_hints_read
from ganeval.inputs import SAMPLE_KINDS, Series, Source, printable, resolve_target
from ganeval.metrics.directions import DIFFERENCE_WORDS, LABELS, RANKABLE
from ganeval.metrics.interval import bootstrap_interval, ci_percent
from ganeval.metrics.intra import DIGIT_COLUMNS
from ganeval.metrics.registry import INCEPTION_EXTRACTORS, METRICS, PREFIX
from ganeval.names import COMPARE_FILES
from ganeval.options import DEFAULT_REFERENCE, SEED_LIMIT, ScoreOptions, unread_inputs
from ganeval.ranking import off_the_run_latents
from ganeval.score_result import ScoreResult
from ganeval.sources.base import HINT_KEYS
from ganeval.summary import BOOTSTRAP_METHOD, SCHEMA_VERSION, row_dict
from ganeval.version import __version__

#: Arm readings with an ideal value or no better side (so not in ``RANKABLE``), in any feature space.
ARM_READINGS = ("density", "vendi", "copying_ct", "copy_share")


def arm_columns() -> tuple[str, ...]:
    """Per-arm columns of ``arms`` (mean over the arm's runs), when computed: every registered metric's rankable
    columns and readings (density, Vendi, C_T) in every feature space, read from the registry so that a metric's
    MNIST and custom variants are never left out; not spreads, bounds, labels, or the per-digit distances."""
    readings = {p + c for p in (*PREFIX.values(), "inception_") for c in ARM_READINGS}
    return tuple(dict.fromkeys(c for m in METRICS.values() for c in m.columns
                               if (c in RANKABLE or c in readings) and c not in DIGIT_COLUMNS))


#: What a picked run keeps of its series (for the report's over-training plot).
SERIES_COLUMNS = ("iteration", "checkpoint", "fid", "fid_ci_low", "fid_ci_high", "mnist_fd", "mnist_fd_ci_low",
                  "mnist_fd_ci_high", "is_best", "status")


@dataclass
class Comparison:
    """Per-run rows (``members``), per-arm means (``arms``), differences from the baseline, and the summary."""

    members: pd.DataFrame
    arms: pd.DataFrame
    differences: pd.DataFrame
    summary: dict[str, Any]
    result: ScoreResult
    failed: bool = False
    #: Arm name → the member names in it, in the given order.
    arm_members: dict[str, list[str]] = field(default_factory=dict)
    #: Member name → its run's series table, for runs picked from a folder (``pick``).
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: Checkpoints of a picked folder that could not be scored (the pick was made among the others).
    series_errors: list[str] = field(default_factory=list)


# -- arms -------------------------------------------------------------------------------------------------------
def _one_source(target: Any, series: Series, pick: str | None, select: ScoreOptions,
                dist: DistContext) -> tuple[Source, pd.DataFrame | None, list[str]]:
    """The run ``target`` names (resolved: ``series``); a folder of several checkpoints needs ``pick`` ("best" or
    "last"): the series is scored with ``select`` and the picked checkpoint returned with the series' table and the
    errors of the checkpoints that could not be scored (``score`` would name them and exit 1; the pick rests on the others)."""
    if len(series.sources) == 1:
        return series.sources[0], None, []
    where = target if isinstance(target, (str, os.PathLike)) else type(target).__name__
    if pick is None:
        raise GanevalError(f"{where}: holds {len(series.sources)} checkpoints or generators; compare takes one per run "
                           f"(name the file, e.g. {series.sources[-1].path or series.sources[-1].name}, or pass "
                           "--pick best|last)")
    table = score_series(series, select, dist).table
    # "last" is the newest file even when it cannot be read (its row then says why: exit 1, as for gate's --checkpoint last)
    rows = table[(table["rank"] == 1).fillna(False).astype(bool)] if pick == "best" else table.iloc[-1:]  # NaN rows too
    if rows.empty:  # nothing in the folder scored: the run is a failed row, the other runs are still compared
        why = "; ".join(dict.fromkeys(str(e) for e in table["error"].dropna())) if "error" in table else ""
        error = f"{where}: no checkpoint could be scored to pick the best one" + (f" ({why})" if why else "")
        return Source("none scored", None, None, "failed", {"error": error}), \
            table[[c for c in SERIES_COLUMNS if c in table]].assign(picked=False), []  # named "ARM (best: none scored)"
    name = rows["checkpoint"].iloc[0]
    keep = [c for c in SERIES_COLUMNS if c in table]
    failed = table[(table["status"] == "error") & (table["checkpoint"] != name)]
    errors = [str(e) if isinstance(e, str) and e else f"{where}: {c} could not be scored"
              for c, e in zip(failed["checkpoint"], failed.get("error", [None] * len(failed)), strict=True)]
    return next(s for s in series.sources if s.name == name), table[keep].assign(picked=table["checkpoint"] == name), errors


def _names(targets: list[Any]) -> list[str]:
    """Arm names for positional targets: the file stems, else ``folder/stem``, else the paths given."""
    def name(t: Any, depth: int) -> str:
        if isinstance(t, (str, os.PathLike)):
            p = Path(t)
            p = p.resolve() if p.name in ("", "..") else p  # "." and "..": the folder's own name, not ''
            stem = p.stem if p.is_file() else p.name
            return printable(stem if depth == 0 else f"{p.parent.name}/{stem}" if depth == 1 else str(t))
        return printable(getattr(t, "__name__", None) or type(t).__name__)

    for depth in range(3):
        names = [name(t, depth) for t in targets]
        if len(set(names)) == len(names):
            return names
    return [f"{n} ({i})" for i, n in enumerate(names, 1)]


def normalise_arms(arms: Mapping[str, Any] | Sequence[Any]) -> dict[str, list[Any]]:
    """``{name: [targets]}`` from a mapping (a value may be one target or a list of runs) or a list of targets
    (one arm each, named by the file). At least two arms, unique names, none empty."""
    if isinstance(arms, Mapping):
        out = {printable(str(k)): (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in arms.items()}
        if len(out) < len(arms):  # names that differ only in bytes that are not UTF-8
            raise GanevalError(f"arm names {', '.join(out)} must differ in printable characters")
    elif isinstance(arms, (str, os.PathLike)) or not isinstance(arms, Sequence):
        raise GanevalError("compare needs at least two models (arms) to compare")
    else:
        targets = list(arms)
        out = {n: [t] for n, t in zip(_names(targets), targets, strict=True)}
    if len(out) < 2:
        raise GanevalError(f"compare needs at least two models (arms) to compare (got {len(out)})")
    empty = [k for k, v in out.items() if not v]
    if empty:
        raise GanevalError(f"arm {empty[0]!r} has no runs")
    for name, runs in out.items():  # one run listed twice would count as two runs that agree exactly (no spread)
        seen: set[str] = set()
        for run in (r for r in runs if isinstance(r, (str, os.PathLike))):
            if (real := os.path.realpath(run)) in seen:
                raise GanevalError(f"arm {name!r}: {os.fspath(run)} is given twice; an arm's runs must be different runs")
            seen.add(real)
    return out


def _series(arms: dict[str, list[Any]], resolved: dict[str, list[Series]], pick: str | None, select: ScoreOptions,
            dist: DistContext) -> tuple[Series, dict[str, list[str]], dict[str, pd.DataFrame], list[str]]:
    sources: list[Source] = []
    members: dict[str, list[str]] = {}
    curves: dict[str, pd.DataFrame] = {}
    errors: list[str] = []
    for arm, targets in arms.items():
        members[arm] = []
        for i, (t, run) in enumerate(zip(targets, resolved[arm], strict=True), 1):
            src, curve, failed = _one_source(t, run, pick, select, dist)
            errors += failed
            name = arm if len(targets) == 1 else f"{arm}/{i}:{src.name}"
            src.name = name if curve is None else f"{name} ({pick}: {src.name})"
            if curve is not None:
                curves[src.name] = curve
            sources.append(src)
            members[arm].append(src.name)
    paths = [Path(t).resolve() for ts in arms.values() for t in ts if isinstance(t, (str, os.PathLike))]
    root = Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else Path.cwd()
    return Series(sources, [], root), members, curves, errors


def _path(df: pd.DataFrame, name: str) -> str | None:
    """The run's file, or None for one that has none (a callable, an array, a folder where nothing could be picked)."""
    path = df.loc[df["checkpoint"] == name, "path"].iloc[0] if "path" in df else None
    return None if path is None or pd.isna(path) else str(path)


# -- statistics -------------------------------------------------------------------------------------------------
def arm_table(df: pd.DataFrame, result: ScoreResult, members: dict[str, list[str]], level: float) -> pd.DataFrame:
    """Per arm: runs scored, the mean of each metric over its runs (``_sd`` across runs when ≥ 2), FD intervals,
    and whether any run is flagged for mode collapse (beyond noise) or data copying."""
    rows = []
    for arm, names in members.items():
        mine, ok = df[df["checkpoint"].isin(names)], _scored(df, names)
        row: dict[str, Any] = {"arm": arm, "runs": len(names), "runs_scored": len(ok)}
        for col in (c for c in arm_columns() if c in df and df[c].notna().any()):
            v = pd.to_numeric(ok[col], errors="coerce").to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            row[col] = float(v.mean()) if len(v) else math.nan
            if len(names) > 1:
                row[f"{col}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
            if col in DIFF_METRICS:
                reps = _arm_replicates(result, df, names, col)
                lo, hi = bootstrap_interval(row[col], reps, level, floor=0.0) if reps is not None else (math.nan, math.nan)
                row[f"{col}_ci_low"], row[f"{col}_ci_high"] = lo, hi
        for flag in ("mode_collapse_sure", "data_copying"):
            if flag in mine:  # None: no run of the arm was tested (no modes/copying metric, or no interval), not "no"
                tested = mine[flag].dropna()
                row[flag] = bool(tested.astype(bool).any()) if len(tested) else None
        rows.append(row)
    return pd.DataFrame(rows)


# -- verdict ------------------------------------------------------------------------------------------------------
def _f(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.3g}" if abs(x) < 10 else f"{x:.2f}"


def verdict_lines(diffs: pd.DataFrame, arms: pd.DataFrame, primary: str | None, sizes: Mapping[str, list[int]]) -> list[str]:
    """A sentence per arm on the primary metric, then on path length where compared, then the flags; ``sizes``:
    each arm's scored sample counts, so "no difference detectable at N = …" names the N scored, not the N asked.
    A primary metric without replicates (``--primary mnist_is``, no Fréchet distance) gets the arms' means only."""
    lines = []
    if primary is not None and primary not in DIFF_METRICS and primary in arms and len(arms) > 1:
        base = arms.iloc[0]  # the baseline arm comes first
        lines += [f"{r['arm']} vs {base['arm']}: {LABELS.get(primary, primary)} {_f(r[primary])} vs {_f(base[primary])} "
                  "(no interval of the difference: only Fréchet distances and path lengths carry bootstrap replicates)."
                  for _, r in arms.iloc[1:].iterrows()]
    rows = pd.concat([diffs[diffs["metric"] == m] for m in (primary, *DIFFERENCE_WORDS)])
    for _, r in rows.iterrows():
        metric = str(r["metric"])
        label = LABELS.get(metric, metric)
        if r["verdict"] == "not measurable":
            lines.append(f"{r['arm']} vs {r['baseline']}: {label} not measurable in either (samples with NaN/Inf values).")
            continue
        if pd.isna(r["difference"]):
            if metric in DIFFERENCE_WORDS:
                continue
            lines.append(f"{r['arm']} vs {r['baseline']}: {label} not computed in both.")
            continue
        text = f"{r['arm']} vs {r['baseline']}: {label} {_f(r['value'])} vs {_f(r['baseline_value'])}, difference {r['difference']:+.3g}"
        if not pd.isna(r["ci_low"]):
            text += f" ({ci_percent(r['level'])}% CI [{r['ci_low']:+.3g}, {r['ci_high']:+.3g}], {r['method']})"
        word = r["verdict"]
        if word == "not tested":
            text += ": not tested (no interval: --bootstrap 0; give --bootstrap 100 for one)."
        elif word == "no detectable difference":
            more = "more runs" if "Welch" in str(r["method"]) else "more samples (--num-samples) or runs"
            text += (f": no difference detectable at N = {n_text([*sizes.get(r['arm'], []), *sizes.get(r['baseline'], [])])}; "
                     f"{more} would be needed to tell them apart.")
        elif metric in DIFFERENCE_WORDS:
            text += f": {r['arm']} has {word} (a smoothness reading, not a quality verdict)."
        else:
            text += f": {r['arm']} is {word}."
        lines.append(text)
    for flag, what in (("mode_collapse_sure", "mode collapse beyond noise"), ("data_copying", "data copying")):
        hit = arms[flag].fillna(False).astype(bool) if flag in arms else None
        if hit is not None and hit.any():
            lines.append(f"Flagged for {what}: {', '.join(arms.loc[hit, 'arm'])}.")
    return lines


# -- API ----------------------------------------------------------------------------------------------------------
def compare(arms: Mapping[str, Any] | Sequence[Any], *, baseline: str | None = None, pick: str | None = None,
            out: str | os.PathLike[str] | None = None, write_report: bool = False, z_dim: int | None = None,
            z_type: str | None = None, output_range: str | None = None, distributed: bool | None = None,
            generator: Any = None, generator_kwargs: Any = None, state_key: str | None = None,
            recursive: bool | None = None, permutations: int = PERMUTATIONS, sequential: int = SEQUENTIAL, **options: Any) -> Comparison:
    """Score every arm's runs in one pass and compare each arm with ``baseline`` (default: the first arm).

    ``arms``: ``{"name": target or [targets]}`` or a list of targets (one arm each). A target is anything
    ``score`` takes that is one generator or sample set (a checkpoint, TorchScript/ONNX file, sample folder,
    zip or .npz, a callable, an array), or with ``pick`` ("best" or "last") a folder of checkpoints: the folder
    is scored as ``score`` would with these options (on a CPU, without ``inception_all=True``, Inception metrics on
    the ``inception_top_k`` best by MNIST FD plus the last; recorded as ``selection_options``) and its best (or last)
    checkpoint is the run. Checkpoints picked as best are compared on a fresh latent set (seed + 1): the set they won
    on favours them. ``options`` are ``score``'s (``generator``/``generator_kwargs``/``state_key`` for weight files of
    your own generator class, as there); Inception metrics run on every compared run unless ``inception_all=False``
    (so ``inception_top_k`` is read by the picking alone: refused without ``pick``).
    One run against one: the verdict on MNIST FD (and ``custom_fd`` up to 512 dimensions) comes from a permutation
    test with up to ``permutations`` re-labellings (0: from the interval; fewer than ``min_permutations(ci)``, 19 at
    0.95, could find nothing and are refused), stopped at the ``sequential``-th as extreme as the observed
    (Besag–Clifford; 0: all drawn).
    With ``write_report`` (or ``out``) the tables, ``compare.json`` and ``compare.html`` are written to ``out``
    (default: the runs' common folder + ``/compare``), by rank 0 only under torchrun (``distributed``, as ``score``).
    """
    t0 = time.time()
    require_bool(write_report, "write_report")  # before any work: pick= scores whole runs first
    named = normalise_arms(arms)
    base = next(iter(named)) if baseline is None else str(baseline)
    if base not in named:
        raise GanevalError(f"baseline {base!r} is not one of the arms ({', '.join(named)})")
    named = {base: named[base], **{k: v for k, v in named.items() if k != base}}
    if pick not in (None, "best", "last"):
        raise GanevalError(f"--pick must be best or last, not {pick!r}")
    require_count(permutations, 0, "--permutations")
    require_count(sequential, 0, "--sequential")
    permutations, sequential = int(permutations), int(sequential)  # a numpy integer as Python's
    # Picking a folder's run scores it as ``score`` would, with the caller's options (the CPU plan included); the
    # compared runs get Inception metrics on every one unless the caller said otherwise. The CLI passes the same.
    select = ScoreOptions.from_kwargs(**{**options, "real_floor": None})  # picking runs needs no floor
    if unread_inputs(select.metrics, {"reference": select.reference}):  # read by the floor alone (opts.check() refuses
        select.reference = DEFAULT_REFERENCE  # it where nothing reads it): the picking reads none either way
    # ganeval's plan, not the user's: every compared run gets the Inception metrics (where one is asked: set without
    # one it would be refused as unread); --inception-top-k is then read by the picking alone (``select``)
    every = options.get("inception_all") is None and any(METRICS[m].extractor in INCEPTION_EXTRACTORS
                                                         for m in select.metrics if m in METRICS)
    if every:
        options["inception_all"] = True
        options.pop("inception_top_k", None)
    options["keep_features"] = permutations > 0
    opts = ScoreOptions.from_kwargs(**options)
    select.check()
    check_test_read(permutations, sequential, opts.metrics, opts.bootstrap, [len(runs) for runs in named.values()])
    if every and pick is None and select.inception_top_k != ScoreOptions.inception_top_k:
        raise GanevalError("--inception-top-k picks the checkpoints of a run's folder that get Inception metrics "
                           "(--pick), and compare gives them to every compared run: leave it out, or add --pick")
    opts.check()  # bad options are refused before any run is read or scored
    if 0 < permutations < (least := min_permutations(opts.ci)):
        raise GanevalError(f"--permutations {permutations} cannot find any difference at --ci {opts.ci:g} (the smallest "
                           f"p is 1/(P + 1) = {1 / (permutations + 1):.3g}): give at least {least}, or 0 to decide by the interval")
    given = {"z_dim": z_dim, "z_type": z_type, "output_range": output_range, "generator": generator,
             "generator_kwargs": generator_kwargs, "state_key": state_key, "recursive": recursive}
    # the explicit keywords win, but only where given: their Nones must not erase the hints ``extra`` carries
    hints = {**{k: v for k, v in opts.extra.items() if k in HINT_KEYS and v is not None},
             **{k: v for k, v in given.items() if v is not None}}
    opts.extra = select.extra = {**opts.extra, **hints}
    dist = from_env(distributed)
    folder = report_folder(out, Path(), COMPARE_FILES.values()) if out is not None else None  # refused before scoring
    resolved = {arm: [resolve_target(t, **hints) for t in targets] for arm, targets in named.items()}
    check_hints_read((run for runs in resolved.values() for run in runs), hints)  # by any arm's runs (their picking too)
    series, members, curves, series_errors = _series(named, resolved, pick, select, dist)
    folder = report_folder(None, series.root / "compare", COMPARE_FILES.values()) if folder is None and write_report else folder
    notes = [f"{e}: not scored, so the {pick} checkpoint was picked among the others" for e in series_errors]
    if curves and pick == "best":
        opts.seed = (select.seed + 1) % SEED_LIMIT  # the fresh set; wraps to 0 at the top of --seed's range
        notes.append(f"runs picked as their folder's best on latent seed {select.seed} are compared on seed {opts.seed}: "
                     "the latent set a checkpoint won on favours it (winner's curse)")
    kinds = {s.name: s.kind for s in series.sources}
    result = score_series(series, opts, dist)
    df = result.table.copy()
    df.insert(0, "arm", [next(a for a, ns in members.items() if name in ns) for name in df["checkpoint"]])
    apart = off_the_run_latents(result.latents)  # generators of another latent size share no latents with the rest
    df["paired"] = [kinds[name] not in SAMPLE_KINDS and name not in apart for name in df["checkpoint"]]
    df = df.drop(columns=[c for c in ("rank", "is_best") if c in df])
    result.table = df
    diffs = differences(result, members, base, opts.ci, permutations, sequential)
    arm_df = arm_table(df, result, members, opts.ci)
    primary = next((m for m in FD_METRICS if m in df and df[m].notna().any()),  # what the verdict is on: recorded as such
                   opts.primary if opts.primary in df and df[opts.primary].notna().any() else None)
    notes += result.summary.get("notes", [])
    ns = sorted({int(v) for v in pd.to_numeric(df.loc[df["status"] != "error", "n_samples"], errors="coerce").dropna()})
    if len(ns) > 1:
        notes.append(f"the runs have different sample counts ({', '.join(map(str, ns))}): a Fréchet distance is biased "
                     "by N, so compare at one N (or use fid_inf / mnist_fd_inf, which extrapolate to infinite N)")
    single = [a for a, ns_ in members.items() if len(ns_) == 1]
    if single and len(single) < len(members):
        notes.append(f"{', '.join(single)}: a single run, so intervals against it leave out run-to-run variation "
                     "(training seeds); give several runs per arm for a Welch interval over runs")
    errors = df[df["status"] == "error"]
    sizes = {arm: scored_sizes(df, names) for arm, names in members.items()}
    lines = verdict_lines(diffs, arm_df, primary, sizes)
    floor = result.summary.get("real_floor")
    if floor and isinstance(value := floor["values"].get(primary), int | float) and not isinstance(value, bool):
        lines.append(f"Real held-out images score {primary} {value:.3g} at this N (the floor; not an arm).")
    summary = {
        "schema": SCHEMA_VERSION, "kind": "compare", "ganeval_version": __version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "baseline": base, "primary_metric": primary, "verdict": " ".join(lines), "verdict_lines": lines,
        "arms": [{"arm": a, "members": [{"name": n, "path": _path(df, n)} for n in ns_]} for a, ns_ in members.items()],
        "differences": [row_dict(r) for _, r in diffs.iterrows()],
        "arm_means": [row_dict(r) for _, r in arm_df.iterrows()],
        "series": {k: [row_dict(r) for _, r in v.iterrows()] for k, v in curves.items()},
        "n_samples": opts.num_samples, "n_scored": ns, "seed": opts.seed, "pick": pick, "selection_seed": select.seed if curves else None,
        "selection_options": select.as_dict() if curves else None,
        "reference": result.summary.get("reference"), "precision": opts.precision,  # null: no metric read one
        "bootstrap": {"replicates": opts.bootstrap, "level": opts.ci, "method": BOOTSTRAP_METHOD},
        "permutation_test": {"permutations": permutations, "sequential": sequential},
        "provenance": result.summary.get("provenance", {}), "options": opts.as_dict(), "notes": notes,
        "real_floor": floor, "n_errors": len(errors), "series_errors": series_errors,
        "seconds": round(time.time() - t0, 1), "world_size": dist.world,
        "rows": [row_dict(r) for _, r in df.iterrows()],
    }
    comp = Comparison(df, arm_df, diffs, summary, result, bool(len(errors) or series_errors), members, curves, series_errors)
    if folder is not None and dist.all_ok(True) and dist.is_main:
        from ganeval.report.comparison import write_comparison

        paths = write_comparison(comp, folder)
        summary["report"] = {k: str(v) for k, v in paths.items()}
    return comp
