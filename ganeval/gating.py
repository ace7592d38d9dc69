"""``gate``: pass or fail one checkpoint against limits and, optionally, a baseline report (for CI; docs/ci.md).

Exit codes: 0 every criterion passes, 1 one fails (``GateResult.exit_code``); usage and input errors raise
``GanevalError`` (exit 2). Limits are judged on the point estimate; a baseline regression must exceed
``max_regression`` percent AND have non-overlapping bootstrap intervals to fail."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganeval.errors import EXIT_FAILED, EXIT_OK, GanevalError, as_path, require_number
from ganeval.gate_baseline import scored_n
from ganeval.gate_floor import FLOOR_LIMITS, floor_criterion
from ganeval.gate_rules import (  # noqa: F401  (re-exported: the gate's API names)
    INCEPTION_COLUMNS,
    LIMITS,
    METRIC_OF,
    STD_COLUMN,
    Criterion,
    _flag,
    _is_model,
    check_summary,
    ci_level,
    ci_of,
    describe,
    find_report,
    fmt,
    load_summary,
    number,
    select_row,
    unscored_criterion,
    unscored_reasons,
)


@dataclass
class GateResult:
    """The verdict of ``gate``: the judged checkpoint row and every criterion."""

    criteria: list[Criterion]
    row: dict[str, Any]
    selector: str
    report: Path | None
    summary: dict[str, Any]
    baseline: Path | None = None
    scored: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_FAILED

    def lines(self) -> list[str]:
        """Human-readable lines: what was judged, one line per criterion, notes, the overall verdict."""
        it = self.row.get("iteration")
        it = f" (iteration {fmt(float(it))})" if isinstance(it, (int, float)) else ""
        out = [f"gate: {self.row.get('checkpoint')}{it}, --checkpoint {self.selector}, from {self.report or 'the scoring run'}"]
        out += [f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.message}" for c in self.criteria]
        out += [f"note: {n}" for n in self.notes]
        n_fail = sum(not c.passed for c in self.criteria)
        out.append("gate: passed" if self.passed else f"gate: FAILED ({n_fail} of {len(self.criteria)} criteria failed)")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable verdict printed by ``--json``."""
        return {
            "passed": self.passed, "exit_code": self.exit_code,
            "checkpoint": {"name": self.row.get("checkpoint"), "iteration": self.row.get("iteration"),
                           "path": self.row.get("path"), "status": self.row.get("status", "ok"), "selector": self.selector},
            "report": str(self.report) if self.report else None, "baseline": str(self.baseline) if self.baseline else None,
            "scored": self.scored, "primary_metric": self.summary.get("primary_metric"),
            # the N the judged row was scored at (a sample set may hold fewer), and the N asked for
            "n_samples": scored_n(self.row, self.summary), "n_asked": self.summary.get("n_samples"),
            "criteria": [c.to_dict() for c in self.criteria], "notes": self.notes,
        }


def _limit_criterion(name: str, limit: float, row: dict[str, Any], summary: dict[str, Any], source: Path | str) -> Criterion:
    metric, kind = LIMITS[name]
    ckpt = row.get("checkpoint")
    where = f"{source}: {ckpt}"
    value = number(row.get(metric), f"{where}.{metric}")
    broken = row.get("status") == "nan_samples"
    if value is None and not broken:
        hint = ""
        if metric in INCEPTION_COLUMNS and any(number(r.get(metric), where) is not None for r in summary["rows"]):
            hint = " (on CPU Inception metrics cover only the top-k and last checkpoints; use --inception-all)"
        raise GanevalError(f"{_flag(name)}: {metric} was not computed for {ckpt} in {source}{hint}; refusing to pass it")
    ci = ci_of(row, metric, where)
    if value is None:  # a NaN/Inf-sample generator: the metric exists but could not be measured
        msg = f"{metric} not measurable for {ckpt}: {row.get('error') or 'samples contain NaN/Inf'} (limit {fmt(limit)})"
        return Criterion(name, metric, None, limit, False, None, msg)
    passed = value <= limit if kind == "max" else value >= limit
    desc = f"{metric} = {describe(metric, value, ci, row, ci_level(summary), limit)}"
    if passed:
        msg = f"{desc} {'<=' if kind == 'max' else '>='} limit {fmt(limit, value)} ({_flag(name)})"
    else:
        msg = f"{desc} is {'above the limit' if kind == 'max' else 'below the minimum'} {fmt(limit, value)} ({_flag(name)})"
    if broken:
        msg += f"; status nan_samples: {row.get('error') or 'samples contain NaN/Inf'}"
    return Criterion(name, metric, value, limit, passed, ci, msg)


def gate(target: str | os.PathLike[str], *, max_fid: float | None = None, min_is: float | None = None,
         max_kid: float | None = None, min_mnist_is: float | None = None, min_modes: int | None = None,
         max_mnist_fd: float | None = None, min_coverage: float | None = None, min_copying_ct: float | None = None,
         min_inception_copying_ct: float | None = None, max_custom_fd: float | None = None,
         min_precision: float | None = None, min_recall: float | None = None, max_mnist_kid: float | None = None,
         min_mnist_precision: float | None = None, min_mnist_recall: float | None = None,
         min_mnist_coverage: float | None = None, max_fid_over_floor: float | None = None,
         max_mnist_fd_over_floor: float | None = None, max_mnist_ppl: float | None = None,
         max_custom_ppl: float | None = None, max_sfid: float | None = None, max_sfid_over_floor: float | None = None,
         baseline: str | os.PathLike[str] | None = None,
         max_regression: float | None = None, checkpoint: str | os.PathLike[str] = "last", out: str | os.PathLike[str] | None = None,
         **score_options: Any) -> GateResult:
    """Judge one checkpoint of ``target`` (a checkpoint, checkpoint folder, report folder or ``summary.json``).

    A report is read as is; otherwise ``ganeval.evaluate.score`` runs with ``score_options`` (its input hints too:
    ``z_dim=``, ``output_range=``, ``generator=``, … or ``extra={...}``) and writes its report to ``out`` (default
    ``CKPT_DIR/report``). ``checkpoint``: ``"last"``, ``"best"`` or a path/name.
    ``baseline`` with ``max_regression`` percent (default 0) adds the regression test: a report (non-overlapping
    intervals), or a model re-scored beside the judged checkpoint (interval of the difference, paired for generators).
    Usage and input errors raise ``GanevalError`` (exit code 2).
    """
    from ganeval.gate_prep import check_baseline_model, check_gate_options, check_hints_used, check_selector, score_target, take_hints

    check_gate_options(score_options)
    given = {"max_fid": max_fid, "min_is": min_is, "max_kid": max_kid, "min_mnist_is": min_mnist_is,
             "min_modes": min_modes, "max_mnist_fd": max_mnist_fd, "min_coverage": min_coverage,
             "min_copying_ct": min_copying_ct, "min_inception_copying_ct": min_inception_copying_ct,
             "max_custom_fd": max_custom_fd, "min_precision": min_precision, "min_recall": min_recall,
             "max_mnist_kid": max_mnist_kid, "min_mnist_precision": min_mnist_precision, "min_mnist_recall": min_mnist_recall,
             "min_mnist_coverage": min_mnist_coverage, "max_fid_over_floor": max_fid_over_floor,
             "max_mnist_fd_over_floor": max_mnist_fd_over_floor, "max_mnist_ppl": max_mnist_ppl,
             "max_custom_ppl": max_custom_ppl, "max_sfid": max_sfid, "max_sfid_over_floor": max_sfid_over_floor}
    for name, value in given.items():
        if value is not None:
            require_number(value, _flag(name), "be a number, not NaN",
                           lambda v: not math.isnan(v))
    limits = {k: float(v) for k, v in given.items() if v is not None}
    if not limits and baseline is None:
        raise GanevalError("no criteria: give at least one of " + ", ".join(map(_flag, [*LIMITS, *FLOOR_LIMITS])) + " or --baseline")
    if max_regression is not None and baseline is None:
        raise GanevalError("--max-regression needs --baseline")
    if max_regression is not None:
        require_number(max_regression, "--max-regression", "be a finite percentage >= 0, e.g. 5",
                       lambda v: 0 <= v < math.inf)
    regression = 0.0 if max_regression is None else float(max_regression)
    for what, value in (("target", target), ("baseline", baseline)):  # a generator object raised pathlib's TypeError
        if (value is not None or what == "target") and not isinstance(value, str | os.PathLike):
            raise GanevalError(f"gate's {what} must be a path (checkpoint, run folder, report or samples), not "
                               f"{type(value).__name__}: score a Python generator with ganeval.score, then gate its report")
        if value is not None:
            as_path(value, f"gate's {what}")  # "" would be the current folder
    if not isinstance(checkpoint, str | os.PathLike):
        raise GanevalError(f"--checkpoint must be best, last or a checkpoint's path or name (got {checkpoint!r})")
    checkpoint = os.fspath(checkpoint)
    hints = take_hints(score_options)  # the model baseline is re-scored with them too
    model_base = baseline is not None and _is_model(baseline)
    base, base_src = load_summary(baseline, "baseline") if baseline is not None and not model_base else (None, None)
    notes: list[str] = []
    report = find_report(target)
    if report is not None:
        summary, source = load_summary(report)
        if model_base:  # re-scored with the options stored in the report, its input hints among them (and those given)
            check_baseline_model(baseline, {**((summary.get("options") or {}).get("extra") or {}), **hints})
        if set(score_options) - {"progress", *(("extra",) if model_base else ())} or out is not None:
            notes.append(f"scoring options ignored: {target} is an existing report (nothing recomputed)")
        scored = False
    else:
        if out is not None and Path(target).is_dir() and Path(out).resolve() == Path(target).resolve():
            raise GanevalError(f"--out {out}: is the folder being judged; its report would stand among the checkpoints, "
                               "which the next gate would refuse as ambiguous: give another --out")
        check_selector(target, checkpoint, hints)
        if model_base:
            check_baseline_model(baseline, hints)
        check_hints_used(target, baseline if model_base else None, hints)
        summary, source = score_target(target, out, limits, score_options, hints, base, base_src, checkpoint)
        scored = True
    src = source or str(target)
    row = select_row(summary, checkpoint, src)
    unscored = [r for r in summary["rows"] if r.get("status") == "error" and r is not row]
    criteria = [_limit_criterion(name, limits[name], row, summary, src) for name in LIMITS if name in limits]
    criteria += [floor_criterion(name, limits[name], row, summary, src) for name in FLOOR_LIMITS if name in limits]
    if base is not None and base_src is not None:
        from ganeval.gate_baseline import report_baseline_criterion

        criteria.append(report_baseline_criterion(row, summary, src, base, base_src, checkpoint, regression, notes))
    if model_base:
        from ganeval.gate_baseline import model_baseline_criterion

        criteria.append(model_baseline_criterion(row, summary, Path(baseline), regression, score_options, scored, notes))
        base_src = Path(baseline)
    if unscored and checkpoint in ("best", "last"):
        criteria.append(unscored_criterion(unscored, len(summary["rows"]), checkpoint))
    elif unscored:  # a checkpoint named: the others' files do not change its judgement
        notes.append(f"{len(unscored)} other checkpoint(s) of {src} could not be scored (not judged here): "
                     + unscored_reasons(unscored))
    return GateResult(criteria, row, checkpoint, source, summary, base_src, scored, notes)
