"""The gate's shared vocabulary, below ``gating``, ``gate_baseline``, ``gate_prep`` and ``gate_floor`` (which all
import it): the limits and the columns they read, a criterion, and reading, checking and selecting from a report."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganeval.errors import GanevalError
from ganeval.metrics.interval import ci_percent
from ganeval.summary import json_value

#: criterion → (report column, "max" or "min").
LIMITS: dict[str, tuple[str, str]] = {
    "max_fid": ("fid", "max"), "min_is": ("is_mean", "min"), "max_kid": ("kid_mean", "max"),
    "min_mnist_is": ("mnist_is", "min"), "min_modes": ("modes_covered", "min"), "max_mnist_fd": ("mnist_fd", "max"),
    "min_coverage": ("coverage", "min"), "min_copying_ct": ("copying_ct", "min"),
    "min_inception_copying_ct": ("inception_copying_ct", "min"), "max_custom_fd": ("custom_fd", "max"),
    "min_precision": ("precision", "min"), "min_recall": ("recall", "min"), "max_mnist_kid": ("mnist_kid_mean", "max"),
    "min_mnist_precision": ("mnist_precision", "min"), "min_mnist_recall": ("mnist_recall", "min"),
    "min_mnist_coverage": ("mnist_coverage", "min"), "max_mnist_ppl": ("mnist_ppl", "max"),
    "max_custom_ppl": ("custom_ppl", "max"), "max_sfid": ("sfid", "max"),
}
#: report column → the registered metric (``--metrics`` name) that computes it.
METRIC_OF = {"fid": "fid", "is_mean": "is", "kid_mean": "kid", "mnist_is": "mnist_is", "modes_covered": "modes",
             "mnist_fd": "mnist_fd", "precision": "prc", "recall": "prc",
             "density": "dc", "coverage": "dc", "copying_ct": "copying",
             "inception_copying_ct": "inception_copying", "custom_fd": "custom_fd", "mnist_kid_mean": "mnist_kid",
             "mnist_precision": "mnist_prc", "mnist_recall": "mnist_prc", "mnist_coverage": "mnist_dc",
             "mnist_ppl": "mnist_ppl", "custom_ppl": "custom_ppl", "sfid": "sfid"}
INCEPTION_COLUMNS = {"fid", "sfid", "is_mean", "kid_mean", "precision", "recall", "density", "coverage", "inception_copying_ct"}
STD_COLUMN = {"is_mean": "is_std", "kid_mean": "kid_std", "mnist_is": "mnist_is_std", "mnist_kid_mean": "mnist_kid_std",
              "mnist_ppl": "mnist_ppl_std", "custom_ppl": "custom_ppl_std"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def fmt(x: float | None, other: float | None = None) -> str:
    """A value for messages: integers as such, 4 significant digits below 10, else 2 decimals; "inf"; "n/a". With
    ``other`` (the limit it is held against), as many more digits as tell the two apart: "277.32 is above the limit
    277.32" said nothing."""
    if x is None or math.isinf(x):
        return "n/a" if x is None else "inf" if x > 0 else "-inf"
    x = float(x)
    text = str(int(x)) if x.is_integer() and abs(x) < 1e9 else f"{x:.4g}" if abs(x) < 10 else f"{x:.2f}"
    if other is None or x == other or not math.isfinite(other) or text != fmt(other):
        return text
    return next((t for d in range(5, 18) if (t := f"{x:.{d}g}") != f"{other:.{d}g}"), repr(x))


@dataclass
class Criterion:
    """One check: the measured value, its limit, the interval where one exists, and the verdict."""

    name: str
    metric: str
    value: float | None
    limit: float
    passed: bool
    ci: tuple[float, float] | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view (infinity as the string ``"inf"``)."""
        ci = [json_value(self.ci[0]), json_value(self.ci[1])] if self.ci else None
        return {"name": self.name, "metric": self.metric, "value": json_value(self.value), "limit": json_value(self.limit),
                "ci": ci, "passed": self.passed, "message": self.message, **_json_safe(self.extra)}


def _json_safe(value: Any) -> Any:
    """``value`` with every float made strict-JSON-safe (``json_value``), however deep."""
    if isinstance(value, float):
        return json_value(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def load_summary(path: str | os.PathLike[str], role: str = "report") -> tuple[dict[str, Any], Path]:
    """Read and check a ``summary.json`` (or the one in a report folder); malformed → ``GanevalError``."""
    p = Path(path)
    if not p.exists():
        raise GanevalError(f"{p}: no such file or directory ({role})")
    if p.is_dir():
        p = next((c for c in (p / "summary.json", p / "report" / "summary.json") if c.is_file()), p)
        if p.is_dir():
            raise GanevalError(f"{p}: no summary.json in this folder ({role}; incomplete or interrupted report?)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GanevalError(f"{p}: not UTF-8 text (corrupted summary.json?)") from None
    except OSError as exc:
        raise GanevalError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if not text.strip():
        raise GanevalError(f"{p}: empty file (truncated summary.json?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GanevalError(f"{p}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg} "
                           "(truncated or corrupted summary.json?)") from None
    check_summary(data, p)
    return data, p


def check_summary(data: Any, source: Path | str) -> None:
    """Raise ``GanevalError`` unless ``data`` is shaped like ``build_summary``'s output."""
    from ganeval.summary import SCHEMA_VERSION

    if not isinstance(data, dict):
        raise GanevalError(f"{source}: not a ganeval summary (expected a JSON object, got {type(data).__name__})")
    if data.get("kind", "score") != "score":  # compare.json has rows and a primary metric too, of other things
        raise GanevalError(f"{source}: a `ganeval {data['kind']}` result, not a score summary; give the summary.json "
                           "of `ganeval score` (or the checkpoints, to score them here)")
    if "rows" not in data or "primary_metric" not in data:
        raise GanevalError(f"{source}: not a ganeval summary: missing 'rows' or 'primary_metric'")
    if isinstance(schema := data.get("schema"), int) and schema > SCHEMA_VERSION:
        raise GanevalError(f"{source}: summary schema {schema} is newer than this ganeval reads ({SCHEMA_VERSION}); upgrade")
    rows = data["rows"]
    if not isinstance(rows, list) or not rows:
        raise GanevalError(f"{source}: 'rows' must be a non-empty list of checkpoint rows")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "checkpoint" not in r:
            raise GanevalError(f"{source}: rows[{i}] is not a checkpoint row (an object with 'checkpoint')")
    for key in ("best", "last"):
        if data.get(key) is not None and not (isinstance(data[key], dict) and "checkpoint" in data[key]):
            raise GanevalError(f"{source}: {key!r} is not a checkpoint row")


def number(x: Any, where: str) -> float | None:
    """A report value as a float; ``None``/NaN → ``None`` (not computed), ``"inf"`` → infinity."""
    if x is None or isinstance(x, (bool, int, float)):
        return None if x is None or math.isnan(float(x)) else float(x)
    if isinstance(x, str) and x.strip().lower() in ("inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(x)
    raise GanevalError(f"{where}: {x!r} is not a number")


def find_report(target: str | os.PathLike[str]) -> Path | None:
    """The ``summary.json`` TARGET names, or ``None`` when TARGET is a checkpoint (folder) to score."""
    from ganeval.checkpoints import list_checkpoints
    from ganeval.inputs import scorable

    p = Path(target)
    if not p.exists():
        raise GanevalError(f"{p}: no such file or directory")
    if p.is_file():
        return p if p.suffix.lower() == ".json" else None
    if (p / "summary.json").exists():
        refuse_ambiguous(p)
        return p / "summary.json"
    if list_checkpoints(p):
        return None
    if any((p / n).exists() for n in ("scores.csv", "scores.parquet", "report.html")):
        raise GanevalError(f"{p}: report folder without summary.json (incomplete or interrupted report?)")
    if scorable(p):  # generator files or sample images (docs/inputs.md)
        return None
    raise GanevalError(f"{p}: neither a report (no summary.json) nor a checkpoint folder (no ckpt_*.safetensors)")


def refuse_ambiguous(folder: Path) -> None:
    """Refuse a folder holding both a report and checkpoints (or generator files): which is meant is unclear, and the
    report may be stale."""
    from ganeval.checkpoints import list_checkpoints
    from ganeval.inputs import GENERATOR_EXTS
    from ganeval.sources.state_dicts import STATE_EXTS

    if not (folder / "summary.json").exists():
        return
    models = [r.path for r in list_checkpoints(folder)] or sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in {*GENERATOR_EXTS, *STATE_EXTS})
    if models:
        raise GanevalError(f"{folder}: holds both a report (summary.json) and checkpoints or generator files "
                           f"({models[0].name} …): give {folder / 'summary.json'} to judge that report, or score them "
                           "into another --out")


def _is_model(path: str | os.PathLike[str]) -> bool:
    """A baseline that is a model to re-score (checkpoint, generator, samples), not a report (or a run folder with one)."""
    p = Path(path)
    if p.is_dir():
        refuse_ambiguous(p)
    if not p.exists() or (p.is_dir() and (p / "report" / "summary.json").is_file()):
        return False
    try:
        return find_report(p) is None
    except GanevalError:
        return False  # load_summary names the problem


def _matches(row: dict[str, Any], sel: str) -> bool:
    if sel in (row.get("checkpoint"), row.get("path")):
        return True
    path = row.get("path")
    if path and Path(sel).exists() and Path(path).exists():
        return Path(sel).resolve() == Path(path).resolve()
    return Path(sel).name == row.get("checkpoint")


def select_row(summary: dict[str, Any], selector: str, source: Path | str) -> dict[str, Any]:
    """The row judged: ``last``, ``best``, or the one whose ``path`` or ``checkpoint`` matches ``selector``."""
    rows = summary["rows"]
    if selector == "last":  # the newest file, scored or not (the summary's "last" is the newest scored one)
        row = rows[-1] if rows else summary.get("last")
        if row is None:
            raise GanevalError(f"{source}: no checkpoint in the report")
    elif selector == "best":
        # ranked first: the best, or where every row's samples held NaN/Inf (no best) the first of them, which fails
        row = summary.get("best") or next((r for r in rows if r.get("is_best") or r.get("rank") == 1), None)
        if row is None:
            raise GanevalError(f"{source}: no best checkpoint (no checkpoint could be ranked)")
    else:
        found = [r for r in rows if _matches(r, selector)]
        if len(found) != 1:
            names = ", ".join(str(r.get("checkpoint")) for r in rows[:8]) + (" …" if len(rows) > 8 else "")
            what = "no checkpoint matches" if not found else f"{len(found)} checkpoints match"
            raise GanevalError(f"{source}: {what} --checkpoint {selector!r} (checkpoints: {names})")
        row = found[0]
    if row.get("status") == "error":
        raise GanevalError(f"{source}: checkpoint {row.get('checkpoint')} could not be scored: {row.get('error') or 'error'}")
    return row


def unscored_reasons(unscored: list[dict[str, Any]]) -> str:
    """Each unscored row's error (its checkpoint where it has none), joined: the one wording of criterion and note."""
    return "; ".join(str(r.get("error") or r.get("checkpoint")) for r in unscored)


def unscored_criterion(unscored: list[dict[str, Any]], total: int, selector: str) -> Criterion:
    """Fails: checkpoints of the judged series could not be scored. ``best`` was then picked among the others only,
    and ``last`` judges a run with damaged files (``score`` and ``compare`` exit 1 on them too); never a silent pass."""
    why = unscored_reasons(unscored)
    how = "so the best was picked among the others" if selector == "best" else "so the run is not whole"
    return Criterion("scored", "status", float(len(unscored)), 0.0, False, None,
                     f"{len(unscored)} of {total} checkpoint(s) could not be scored, {how}: {why}")


def ci_of(row: dict[str, Any], metric: str, where: str) -> tuple[float, float] | None:
    """The row's confidence interval of ``metric``, or None when the report has none."""
    lo = number(row.get(f"{metric}_ci_low"), f"{where}.{metric}_ci_low")
    hi = number(row.get(f"{metric}_ci_high"), f"{where}.{metric}_ci_high")
    return (lo, hi) if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi) else None


def ci_level(summary: dict[str, Any]) -> str:
    """The report's interval level as text ("95% CI"), for the criterion lines."""
    level = (summary.get("bootstrap") or {}).get("level", 0.95)
    return f"{ci_percent(level)}% CI" if isinstance(level, (int, float)) else "CI"


def describe(metric: str, value: float | None, ci: tuple[float, float] | None, row: dict[str, Any], level: str,
             limit: float | None = None) -> str:
    """A metric's value for a criterion line, with its interval when the report has one (told apart from ``limit``)."""
    text = fmt(value, limit)
    if ci:
        return text + f" ({level} [{fmt(ci[0])}, {fmt(ci[1])}])"
    std = row.get(STD_COLUMN.get(metric, ""))
    return text + (f" (± {fmt(float(std))} std)" if isinstance(std, (int, float)) and not isinstance(std, bool) else "")
