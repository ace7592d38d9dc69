"""What ``gate`` settles before anything is scored (docs/ci.md): the input hints, the checkpoint it will judge, a
baseline model that is one model, and a baseline report's N, interval level and reference statistics.

Each is a usage error (exit 2) that, found after scoring, would have cost the whole scoring pass and replaced the
report that pass writes (``CKPT_DIR/report``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganeval.errors import GanevalError
from ganeval.gate_floor import FLOOR_LIMITS
from ganeval.gate_rules import INCEPTION_COLUMNS, LIMITS, METRIC_OF, _flag, check_summary, select_row
from ganeval.options import ScoreOptions, check_hints
from ganeval.sources.base import HINT_KEYS


def check_gate_options(score_options: dict[str, Any]) -> None:
    """Refuse a keyword that is neither a criterion nor a score option (a typo such as ``min_modez=10``): with a
    report TARGET, whose scoring options are ignored, it would otherwise let the gate pass without that criterion."""
    from dataclasses import fields

    from ganeval.errors import OptionError

    known = {f.name for f in fields(ScoreOptions)} | set(HINT_KEYS) | {"distributed"}
    if unknown := sorted(set(score_options) - known):
        raise OptionError(f"unknown gate option(s) {unknown}: neither a criterion ({', '.join(sorted([*LIMITS, *FLOOR_LIMITS]))}) "
                          "nor a score option")


def take_hints(score_options: dict[str, Any]) -> dict[str, Any]:
    """Move the input-hint keywords ``score`` takes (``z_dim=``, ``output_range=``, ``generator=``, …) from
    ``score_options`` into its ``extra``, as the CLI passes them, and return the hints (``None``s dropped). An
    unknown key in ``extra`` (a typo such as ``zdim``) is refused: ignored, the generator would be read without it."""
    given = {k: score_options.pop(k) for k in HINT_KEYS if k in score_options}
    extra = score_options.get("extra", {})
    check_hints(extra)
    hints = {**{k: v for k, v in extra.items() if v is not None}, **{k: v for k, v in given.items() if v is not None}}
    if hints:
        score_options["extra"] = {**extra, **hints}
    return hints


def check_selector(target: str | os.PathLike[str], selector: str, hints: dict[str, Any]) -> None:
    """Refuse a ``--checkpoint PATH|NAME`` that matches no checkpoint of ``target`` (or several), by the rule the
    report's rows are matched with later (``select_row``)."""
    if selector in ("last", "best"):
        return
    from ganeval.inputs import resolve_target

    series = resolve_target(target, **hints)
    rows = [{"checkpoint": s.name, "path": str(s.path) if s.path else None} for s in series.sources]
    select_row({"rows": rows}, selector, target)


def check_hints_used(target: str | os.PathLike[str], baseline: str | os.PathLike[str] | None,
                     hints: dict[str, Any]) -> None:
    """Refuse an input hint that neither TARGET nor a ``--baseline`` model re-scored beside it reads (``--z-dim`` with
    ganeval checkpoints or a sample set): the scoring of each is then given the hints it reads (``read_hints``)."""
    from ganeval.hint_use import check_hints_read
    from ganeval.inputs import resolve_target

    if hints:
        check_hints_read([resolve_target(t, **hints) for t in (target, baseline) if t is not None], hints)


def check_baseline_model(baseline: str | os.PathLike[str], hints: dict[str, Any]) -> None:
    """Refuse a ``--baseline`` model that is no single model (a run folder of several checkpoints, no report)."""
    from ganeval.inputs import resolve_target

    series = resolve_target(baseline, **{k: hints[k] for k in HINT_KEYS if hints.get(k) is not None})
    if len(series.sources) > 1:
        example = series.sources[-1].path or series.sources[-1].name
        raise GanevalError(f"--baseline {baseline} holds {len(series.sources)} checkpoints or generators; a baseline model "
                           f"is one: name one (e.g. {example}), or give the report folder of a `ganeval score` run")


def _check_reference(reference: str, resize: str, base: dict[str, Any], bsrc: Path | str) -> None:
    """Refuse a baseline made against other reference statistics: by the SHA-256 of the files ``reference`` names
    (``myref``, ``./myref`` and ``/abs/myref`` are one), against those the baseline's provenance records."""
    from ganeval.atomic import sha256_file
    from ganeval.features.inception import stats_name_of
    from ganeval.gate_baseline import refuse
    from ganeval.reference import reference_path
    from ganeval.stats import DATASETS

    theirs = base.get("reference")
    if reference == theirs:
        return
    compared = False
    if not (reference in DATASETS and theirs in DATASETS):
        for name, prov in (base.get("provenance") or {}).items():
            if not (isinstance(prov, dict) and prov.get("reference_sha256")):
                continue
            try:
                ours = sha256_file(reference_path(reference, stats_name_of(name, resize)))
            except (GanevalError, OSError):
                continue  # not there for this extractor: scoring names the problem, or the report check does
            if ours != prov["reference_sha256"]:
                refuse(bsrc, "these options", f"{name} reference statistics (reference_sha256)", ours, prov["reference_sha256"])
            compared = True
    if not compared:
        refuse(bsrc, "these options", "reference", reference, theirs)


def check_baseline_plan(opts: ScoreOptions, target: str | os.PathLike[str], hints: dict[str, Any], base: dict[str, Any],
                        bsrc: Path | str, selector: str) -> None:
    """The baseline report against the options TARGET is about to be scored with: the N its compared row was scored
    at (a generator is scored at exactly ``--num-samples``, a sample set at most that), the interval level and the
    reference statistics. The rows are compared again after scoring (``check_compatible``)."""
    from ganeval.gate_baseline import baseline_row, refuse, scored_n
    from ganeval.inputs import SAMPLE_KINDS, resolve_target

    brow = baseline_row(base, selector, bsrc)
    nb = scored_n(brow, base)
    if isinstance(nb, int):
        generators = all(s.kind not in SAMPLE_KINDS for s in resolve_target(target, **hints).sources)
        if opts.num_samples < nb or (generators and opts.num_samples != nb):
            refuse(bsrc, "these options", "N (n_samples)", opts.num_samples, nb)
    level = (base.get("bootstrap") or {}).get("level", 0.95)
    if opts.ci != level:  # the test reads whether two intervals overlap: a narrower level overlaps less
        refuse(bsrc, "these options", "interval level (--ci)", opts.ci, level)
    if _compared_reads_reference(opts, base, brow, bsrc):
        _check_reference(opts.reference, opts.resize, base, bsrc)


def _compared_reads_reference(opts: ScoreOptions, base: dict[str, Any], brow: dict[str, Any], bsrc: Path | str) -> bool:
    """Whether the column the baseline test will compare (the first of ``compared_order`` that these metrics compute
    and the baseline row has) reads reference statistics: an ``mnist_is`` depends on none, so a baseline that named
    or read other statistics is no less comparable on it. Where none is found, True: the check stays."""
    from ganeval.gate_baseline import compared_order, reads_reference
    from ganeval.gate_rules import number
    from ganeval.metrics.registry import METRICS

    ours = [c for m in opts.metrics if m in METRICS for c in METRICS[m].columns]
    primary = opts.primary or next((c for c in ("fid", "sfid", "mnist_fd", "custom_fd") if c in ours), None)  # ranking's default
    column = next((c for c in compared_order(primary, base.get("primary_metric"))
                   if c in ours and number(brow.get(c), f"{bsrc}: {brow.get('checkpoint')}.{c}") is not None), None)
    return column is None or reads_reference(column)


def check_named_inception(target: str | os.PathLike[str], opts: ScoreOptions, hints: dict[str, Any], columns: list[str],
                          selector: str) -> None:
    """Refuse an Inception criterion on a checkpoint named with ``--checkpoint`` (or ``best`` under
    ``--inception-top-k 0``) that the CPU plan may leave without Inception metrics (they cover the top-k by MNIST FD
    and the last): found after scoring, it cost the whole pass."""
    if selector == "last" or opts.inception_all or not INCEPTION_COLUMNS & set(columns):
        return
    if selector == "best" and opts.inception_top_k > 0:
        return  # the best by MNIST FD is among the top k
    from ganeval.devices import resolve_device
    from ganeval.inputs import resolve_target
    from ganeval.metrics.registry import METRICS

    if resolve_device(opts.device).type == "cuda" or not any("mnist_fd" in METRICS[m].columns for m in opts.metrics):
        return  # every checkpoint gets them (score's plan: no MNIST FD to pick the top K by, or a GPU)
    sources = resolve_target(target, **hints).sources
    rows = [{"checkpoint": s.name, "path": str(s.path) if s.path else None} for s in sources]
    named = selector if selector == "best" else select_row({"rows": rows}, selector, target)["checkpoint"]
    if named != sources[-1].name and len(sources) > opts.inception_top_k + 1:
        column = next(c for c in columns if c in INCEPTION_COLUMNS)
        raise GanevalError(f"--checkpoint {selector}: on a CPU, {column} is computed only for the top "
                           f"{opts.inception_top_k} checkpoints by MNIST FD and the last, so {named} may get none; give "
                           "--inception-all (every checkpoint), or gate that checkpoint file itself")


def score_target(target: str | os.PathLike[str], out: str | os.PathLike[str] | None, limits: dict[str, float],
                 score_options: dict[str, Any], hints: dict[str, Any], base: dict[str, Any] | None, bsrc: Path | None,
                 selector: str) -> tuple[dict[str, Any], Path | None]:
    """Score TARGET for the gate (its report written), after refusing what would make the result unusable: bad
    options, a criterion whose metric is not asked for, a baseline report that cannot be compared."""
    from ganeval.evaluate import score

    distributed = score_options.pop("distributed", None)
    opts = ScoreOptions.from_kwargs(**score_options)
    opts.check()  # the options themselves first, then whether they serve the criteria
    if any(name in FLOOR_LIMITS for name in limits) and not opts.real_floor:
        score_options["real_floor"] = opts.real_floor = "auto"  # a floor limit needs the floor of this very run
    for name in limits:
        needed = METRIC_OF[LIMITS[name][0] if name in LIMITS else FLOOR_LIMITS[name]]
        if needed not in opts.metrics:
            raise GanevalError(f"{_flag(name)} needs the {needed!r} metric; --metrics ({' '.join(opts.metrics)}) leaves it out")
    check_named_inception(target, opts, hints, [LIMITS[n][0] if n in LIMITS else FLOOR_LIMITS[n] for n in limits], selector)
    if base is not None:
        check_baseline_plan(opts, target, hints, base, bsrc or "", selector)
    from ganeval.hint_use import read_hints  # those only a baseline model reads are for its re-scoring (gate checked)

    summary = score(target, out=out, write_report=True, distributed=distributed,
                    **read_hints([target], score_options)).attrs["summary"]
    report = (summary.get("report") or {}).get("json")
    check_summary(summary, report or str(target))
    return summary, Path(report) if report else None
