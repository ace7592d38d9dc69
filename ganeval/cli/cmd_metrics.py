"""``ganeval metrics``: what can be computed: every registered metric, its feature space, columns and needs."""

from __future__ import annotations

import argparse
import json
import textwrap


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval metrics``: the metric registry as a table."""
    p = sub.add_parser("metrics", help="list the metrics --metrics accepts: feature space, columns, what each needs",
                       description="Every registered metric (the names `score --metrics`, `gate --metrics` and the API "
                                   "take), from the same registry the evaluator uses. docs/scoring.md has the details.")
    p.add_argument("--json", action="store_true", help="as JSON (one object per metric)")
    p.set_defaults(func=run)


def metric_table() -> list[dict[str, object]]:
    """One record per registered metric, in registry order."""
    from ganeval.metrics.registry import DEFAULT_METRICS, METRICS, table_columns

    return [{"name": m.name, "extractor": m.extractor, "default": m.name in DEFAULT_METRICS, "columns": list(table_columns(m)),
             "needs_real_images": m.needs_real, "needs_logits": m.needs_logits, "help": m.help} for m in METRICS.values()]


def run(args: argparse.Namespace) -> int:
    """Print every registered metric (text or JSON); returns 0."""
    rows = metric_table()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for r in rows:
        needs = [w for w, on in (("real images", r["needs_real_images"]), ("logits", r["needs_logits"])) if on]
        head = f"{r['name']}  [{r['extractor']}{', default' if r['default'] else ''}{'; needs ' + ', '.join(needs) if needs else ''}]"
        print(head)
        print(textwrap.fill(str(r["help"]), width=100, initial_indent="    ", subsequent_indent="    "))
        print(textwrap.fill("columns: " + ", ".join(r["columns"]), width=100, initial_indent="    ", subsequent_indent="      "))
    return 0
