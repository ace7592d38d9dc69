"""``gate --baseline``: the regression test against a baseline.

A baseline *report* was scored in another run, so its replicates are not paired with the candidate's: the test
asks for non-overlapping bootstrap intervals (conservative). A baseline *model* is re-scored beside the judged
checkpoint (``ganeval.comparing``: same latents, same resampled indices), so the regression is tested with the
paired bootstrap interval of the difference (docs/ci.md).
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, NoReturn

from ganeval.errors import GanevalError
from ganeval.gate_rules import Criterion, ci_level, ci_of, describe, fmt, number, select_row
from ganeval.metrics.directions import HIGHER_BETTER
from ganeval.metrics.interval import ci_percent
from ganeval.summary import json_value


def refuse(bsrc: Path | str, csrc: Path | str, what: str, a: Any, b: Any) -> NoReturn:
    """The one-line refusal of a baseline that cannot be compared: what differs, the baseline's value, then ours."""
    raise GanevalError(f"baseline {bsrc} is not comparable: another {what} ({b!r} in the baseline, {a!r} in {csrc}); "
                       "refusing to compare")


def scored_n(row: dict[str, Any], summary: dict[str, Any]) -> Any:
    """The N ``row`` was scored at (a sample set may hold fewer than ``--num-samples``); older reports: the N asked."""
    n = row.get("n_samples")
    return int(n) if isinstance(n, numbers.Real) and not isinstance(n, bool) and math.isfinite(n) else summary.get("n_samples")


def baseline_row(base: dict[str, Any], selector: str, bsrc: Path | str) -> dict[str, Any]:
    """The baseline report's row compared with the judged one: ``best`` with ``best``, else its ``last``."""
    return select_row(base, selector if selector in ("best", "last") else "last", bsrc)


def extractor_of(column: str) -> str:
    """The feature extractor a report column is computed in (``fid`` → inception, ``custom_fd`` → custom)."""
    from ganeval.metrics.registry import METRICS

    return next((m.extractor for m in METRICS.values() if column in m.columns), "mnist")


def reads_reference(column: str) -> bool:
    """Whether the metric a report column is computed by compares with reference statistics (``fid`` does,
    ``mnist_is`` does not); an unknown column is taken to, so that the reference is still checked."""
    from ganeval.metrics.registry import METRICS

    return next((m.needs_reference for m in METRICS.values() if column in m.columns), True)


def compared_order(cand_primary: Any, base_primary: Any) -> list[str]:
    """The columns the report baseline test tries, in this order: the first both judged rows have is compared."""
    return list(dict.fromkeys(["fid", str(cand_primary), str(base_primary), "mnist_fd"]))


def check_compatible(cand: dict[str, Any], csrc: Path | str, base: dict[str, Any], bsrc: Path | str, extractor: str,
                     notes: list[str], row: dict[str, Any], brow: dict[str, Any], reference: bool = True) -> None:
    """Refuse (``GanevalError``) a baseline report whose compared row was scored at another N (the rows' own
    ``n_samples``: FD is biased by N), or with other reference statistics (by SHA-256, however the folder was
    spelled; only where the compared metric reads them, ``reference``: an Inception Score depends on none, whatever
    reference each run named or read for its other metrics), extractor, weights, resize or interval level."""
    nc, nb = scored_n(row, cand), scored_n(brow, base)
    if nc != nb:
        refuse(bsrc, csrc, "N (n_samples scored)", nc, nb)
    lc, lb = ((s.get("bootstrap") or {}).get("level", 0.95) for s in (cand, base))
    if lc != lb:  # the test reads whether two intervals overlap: a narrower level overlaps less
        refuse(bsrc, csrc, "interval level (--ci)", lc, lb)
    pc, pb = cand.get("provenance") or {}, base.get("provenance") or {}
    for prov, src in ((pc, csrc), (pb, bsrc)):
        if not isinstance(prov.get(extractor), dict):
            raise GanevalError(f"{src}: no provenance for the {extractor} extractor; cannot check the baseline is comparable")
    for name in sorted(n for n in set(pc) & set(pb) if isinstance(pc[n], dict) and isinstance(pb[n], dict)):
        a, b = pc[name], pb[name]
        keys = [("extractor", "extractor"), ("weights_sha256", "extractor weights (weights_sha256)"), ("resize", "resize")]
        if reference and "reference" in a and "reference" in b:  # a run of reference-free metrics alone read none
            keys += [("reference", "reference dataset"), ("reference_sha256", "reference statistics (reference_sha256)")]
        for key, what in keys:
            if a.get(key) != b.get(key) and not (key == "weights_sha256" and same_weights(a, b)):
                refuse(bsrc, csrc, f"{name} {what}", a.get(key), b.get(key))
        if a.get("precision") != b.get("precision"):
            notes.append(f"baseline {name} features used precision {b.get('precision')}, these {a.get('precision')}")
    if reference and cand.get("reference") != base.get("reference") and not same_statistics(cand.get("reference"), base.get("reference"),
                                                                                pc[extractor], pb[extractor]):
        refuse(bsrc, csrc, "reference", cand.get("reference"), base.get("reference"))


def same_weights(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two provenances name one network although their ``weights_sha256`` differ: a report made before the
    logits layer was left out of the Inception weights' identity carries the file's whole identity, which a report
    made now with the same file records as ``weights_whole_sha256``."""
    wa, wb = a.get("weights_sha256"), b.get("weights_sha256")
    return bool(wa) and bool(wb) and (wa == b.get("weights_whole_sha256") or wb == a.get("weights_whole_sha256"))


def same_statistics(ref_c: Any, ref_b: Any, prov_c: dict[str, Any], prov_b: dict[str, Any]) -> bool:
    """Whether two ``--reference`` values spelled differently (``myref``, ``./myref``, an absolute path, a copy of the
    shipped files) name the same statistics: by the SHA-256 both provenances record; two built-in names never do."""
    from ganeval.stats import DATASETS

    if ref_c in DATASETS and ref_b in DATASETS:
        return False
    sha_c, sha_b = prov_c.get("reference_sha256"), prov_b.get("reference_sha256")
    return bool(sha_c) and sha_c == sha_b


def regression_limit(baseline: float, max_regression: float, higher_better: bool) -> float:
    """The worst value allowed: ``max_regression`` % of the baseline's size beyond it on the worse side (a negative
    baseline, as KID's unbiased estimate can be, moves it the worse way too)."""
    step = abs(baseline) * max_regression / 100
    return baseline - step if higher_better else baseline + step


def report_baseline_criterion(row: dict[str, Any], cand: dict[str, Any], csrc: Path | str, base: dict[str, Any], bsrc: Path,
                              selector: str, max_regression: float, notes: list[str]) -> Criterion:
    """``max_regression`` against a stored report: worse by more than the allowance, with non-overlapping intervals."""
    brow = baseline_row(base, selector, bsrc)
    cwhere, bwhere = f"{csrc}: {row.get('checkpoint')}", f"{bsrc}: {brow.get('checkpoint')}"
    metric = next((m for m in compared_order(cand.get("primary_metric"), base.get("primary_metric"))
                   if number(row.get(m), f"{cwhere}.{m}") is not None and number(brow.get(m), f"{bwhere}.{m}") is not None), None)
    if metric is None:
        raise GanevalError(f"--baseline: no metric (fid, the primary metric, mnist_fd) was computed for both {cwhere} and "
                           f"{bwhere}; cannot compare")
    if metric != "fid":
        notes.append(f"baseline test on {metric}: fid is not available in both reports")
    check_compatible(cand, csrc, base, bsrc, extractor_of(metric), notes, row, brow, reads_reference(metric))
    cv, bv = number(row[metric], cwhere), number(brow[metric], bwhere)
    assert cv is not None and bv is not None
    hb = metric in HIGHER_BETTER
    worse = (bv - cv) if hb else (cv - bv)
    if math.isinf(cv) or math.isinf(bv) or bv == 0:
        rel = 0.0 if cv == bv else math.copysign(math.inf, worse)
    else:
        rel = worse / abs(bv)
    pct = 100 * rel
    cci, bci, level = ci_of(row, metric, cwhere), ci_of(brow, metric, bwhere), ci_level(cand)
    if cci and bci:
        meaningful = cci[1] < bci[0] if hb else cci[0] > bci[1]
        test = "non-overlapping bootstrap intervals"
        how = "the intervals do not overlap" if meaningful else "the intervals overlap: not statistically meaningful"
    else:
        meaningful = worse > 0
        test = "point estimates (no bootstrap intervals)"
        how = "judged on point estimates only"
        missing = " and ".join(w for w, c in ((cwhere, cci), (bwhere, bci)) if not c)
        notes.append(f"baseline test: no bootstrap interval for {metric} in {missing}; judged on the point estimates only")
    passed = not (pct > max_regression and meaningful)
    limit = regression_limit(bv, max_regression, hb)
    same = cv == bv or math.isnan(worse)  # equal, or inf vs inf (both unmeasurable): no change either way
    change = ("no change" + (" (both non-finite)" if math.isinf(cv) else "") if same
              else f"{fmt(abs(pct))}% {'worse' if worse > 0 else 'better'}")
    msg = (f"{metric} = {describe(metric, cv, cci, row, level)} vs baseline {describe(metric, bv, bci, brow, level)}"
           f" ({brow.get('checkpoint')} in {bsrc}): {change}; allowed regression {fmt(max_regression)}% (limit {fmt(limit)})"
           + (f"; {how}" if worse > 0 else ""))
    extra = {"baseline": json_value(bv), "baseline_ci": [json_value(bci[0]), json_value(bci[1])] if bci else None,
             "baseline_checkpoint": brow.get("checkpoint"), "baseline_report": str(bsrc), "regression_pct": json_value(pct),
             "max_regression_pct": max_regression, "meaningful": meaningful, "test": test}
    return Criterion("max_regression", metric, cv, limit, passed, cci, msg, extra)


#: The JSON ``test`` of a model baseline; "paired" only where compare paired them (generators share latents; stored
#: samples are resampled independently).
TEST = "{}bootstrap interval of the difference (baseline model re-scored with the candidate{})"
PERMUTATION_TEST = "{}permutation test of the difference (baseline model re-scored with the candidate{})"


def model_baseline_criterion(row: dict[str, Any], summary: dict[str, Any], baseline: Path, max_regression: float,
                             score_options: dict[str, Any], scored: bool, notes: list[str]) -> Criterion:
    """``max_regression`` judged on the interval of (candidate − baseline) on FID, else MNIST FD (paired where both
    are generators), and on compare's permutation test where it ran. Both sides must have been scored at one N."""
    from ganeval.comparing import compare
    from ganeval.hint_use import given_hints, read_hints
    from ganeval.options import ScoreOptions, without_unread

    path = row.get("path")
    if not path or not Path(path).exists():
        raise GanevalError(f"--baseline {baseline}: cannot re-open the judged checkpoint ({path or row.get('checkpoint')}) "
                           "to score it beside the baseline model")
    # the input hints either side reads (the gate's run read the others: a folder's weight files beside the judged
    # checkpoint; an older report stored unread ones), and with a report those given now for the baseline model: a hint
    # only it reads is not in the report of the checkpoint scored beside it (compare refuses one neither reads)
    options = read_hints([baseline, path], dict(score_options) if scored else dict(summary.get("options") or {}))
    if not scored and (given := given_hints(score_options)):
        options["extra"] = {**(options.get("extra") or {}), **given}
    options.pop("distributed", None)
    options.pop("real_floor", None)  # the paired comparison never uses the floor; a saved relative path may not resolve
    opts = ScoreOptions.from_kwargs(**options)
    metric = next((m for m in ("fid", "mnist_fd") if m in opts.metrics and row.get(m) is not None), None)
    if metric is None:
        raise GanevalError(f"--baseline {baseline}: neither fid nor mnist_fd was computed for {row.get('checkpoint')}; "
                           "cannot compare")
    if metric != "fid":
        notes.append("baseline test on mnist_fd: fid is not available")
    # one FD alone: a --primary of the candidate's run (mnist_is, say) names no column of it
    options.update(metrics=(metric,), primary=None, inception_all=True, progress=bool(options.get("progress", True)))
    options = without_unread(options, (metric,))  # --copy-train of a copying test, say: not read by this FD alone
    comp = compare({"baseline": baseline, "candidate": path}, **options)
    if comp.failed:
        err = comp.members.loc[comp.members["status"] == "error", "error"].iloc[0]
        raise GanevalError(f"--baseline {baseline}: could not be scored: {err}")
    sizes = comp.members.set_index("arm")
    nc, nb = (scored_n(sizes.loc[arm].to_dict(), {"n_samples": opts.num_samples}) for arm in ("candidate", "baseline"))
    if nc != nb:  # a sample set shorter than --num-samples: FD is biased by N, so the "regression" would be that bias
        raise GanevalError(f"--baseline {baseline} is not comparable: scored at N = {nb}, the judged checkpoint "
                           f"{row.get('checkpoint')} at N = {nc} (a sample set holds fewer than --num-samples "
                           f"{opts.num_samples}); a Fréchet distance is biased by N: refusing to compare")
    notes += [n for n in comp.summary.get("notes", []) if n not in notes and n not in (summary.get("notes") or [])]
    d = comp.differences.set_index("metric").loc[metric]
    paired = str(d["method"]).startswith("paired")
    pair, how_scored = ("paired ", "") if paired else ("", "; independent resamples: stored samples share no latents")
    cv, bv, diff = float(d["value"]), float(d["baseline_value"]), float(d["difference"])
    lo, hi = float(d["ci_low"]), float(d["ci_high"])
    has_ci = math.isfinite(lo) and math.isfinite(hi)
    pct = 100 * diff / abs(bv) if bv and math.isfinite(bv) else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    p = float(d["p_value"]) if d["p_value"] is not None and math.isfinite(float(d["p_value"])) else None
    meaningful = (bool(d["significant"]) and diff > 0) if p is not None else (lo > 0 if has_ci else diff > 0)
    if not has_ci:
        notes.append(f"baseline test: no interval of the difference ({d['method']}); judged on the point estimates only")
    passed = not (pct > max_regression and meaningful)
    limit = regression_limit(bv, max_regression, higher_better=False)
    level = ci_percent(float(d["level"]))
    change = f"{fmt(abs(pct))}% {'worse' if diff > 0 else 'better'}" if diff else "no change"
    ci_text = f"; {pair}{level}% CI of the difference [{fmt(lo)}, {fmt(hi)}]" if has_ci else ""
    if p is not None:  # compare decided by its permutation test (MNIST FD): properly sized near the floor
        how = "" if diff <= 0 else f"; permutation test p = {fmt(p)}" + ("" if meaningful else ": not statistically meaningful")
    else:
        how = ("" if diff <= 0 else "; the interval excludes 0" if meaningful and has_ci
               else "; the interval includes 0: not statistically meaningful" if has_ci else "; judged on point estimates only")
    msg = (f"{metric} = {fmt(cv)} vs baseline model {fmt(bv)} ({baseline}, re-scored together, N = {nc}): {change}{ci_text}; "
           f"allowed regression {fmt(max_regression)}% (limit {fmt(limit)}){how}")
    extra = {"baseline": json_value(bv), "baseline_model": str(baseline), "difference": json_value(diff),
             "difference_ci": [lo, hi] if has_ci else None, "regression_pct": json_value(pct),
             "max_regression_pct": max_regression, "meaningful": bool(meaningful),
             "p_value": p, "relabellings": int(d["relabellings"]) if p is not None else None,
             "test": PERMUTATION_TEST.format(pair, how_scored) if p is not None else TEST.format(pair, how_scored) if has_ci
             else "point estimates (no bootstrap replicates)"}
    cand = comp.members.set_index("arm").loc["candidate"]
    ci = (float(cand[f"{metric}_ci_low"]), float(cand[f"{metric}_ci_high"]))
    return Criterion("max_regression", metric, cv, limit, passed, ci if all(map(math.isfinite, ci)) else None, msg, extra)
