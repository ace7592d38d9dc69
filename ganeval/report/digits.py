"""The report's per-digit table: MNIST FD per predicted digit for every checkpoint, the worst digit of each row
marked, and the change from the best to the last checkpoint ("which digit got worse at the end?")."""

from __future__ import annotations

import math
from html import escape

import pandas as pd

from ganeval.metrics.intra import DIGIT_COLUMNS

#: Series longer than this start with the table folded.
OPEN_ROWS = 12


def _num(x: object) -> float | None:
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _cells(values: list[float | None], mark_worst: bool, signed: bool = False) -> str:
    known = [v for v in values if v is not None]
    worst = max(known) if known and mark_worst else None
    out = []
    for v in values:
        if v is None:
            out.append('<td class=n title="fewer than 20 samples or real images of this digit">—</td>')
            continue
        text = f"{v:+.3g}" if signed else f"{v:.3g}"
        out.append(f"<td class=n><b>{text}</b></td>" if worst is not None and v == worst else f"<td class=n>{text}</td>")
    return "".join(out)


def digits_section(df: pd.DataFrame, floor: dict | None = None) -> str:
    """HTML for the per-digit table; empty when ``mnist_intra`` was not computed. ``floor`` (the real-data floor's
    summary, ``--real-floor``) adds held-out real digits scored the same way: what each digit's distance is at this N
    for real images, since per-digit distances are biased upward by their few images."""
    if not all(c in df for c in DIGIT_COLUMNS) or df[list(DIGIT_COLUMNS)].isna().all().all():
        return ""
    head = "<tr><th>checkpoint</th>" + "".join(f"<th>{c}</th>" for c in range(10)) + "</tr>"
    rows = []
    for _, r in df.iterrows():
        values = [_num(r.get(c)) for c in DIGIT_COLUMNS]
        cls = " class=best" if bool(r.get("is_best")) is True else ""
        rows.append(f"<tr{cls}><td>{escape(str(r.get('checkpoint')))}</td>{_cells(values, True)}</tr>")
    best = df[df["is_best"].fillna(False).astype(bool)] if "is_best" in df else df.iloc[:0]
    last = df[df["status"] != "error"].iloc[-1:] if "status" in df else df.iloc[-1:]
    change = ""
    if len(best) and len(last) and best.iloc[0]["checkpoint"] != last.iloc[0]["checkpoint"]:
        b, lst = best.iloc[0], last.iloc[0]
        pairs = [(_num(lst.get(c)), _num(b.get(c))) for c in DIGIT_COLUMNS]
        diffs = [None if x is None or y is None else x - y for x, y in pairs]
        change = f"<tr><td><i>last − best</i></td>{_cells(diffs, True, signed=True)}</tr>"
    values = (floor or {}).get("values") or {}
    real = [_num(values.get(c)) for c in DIGIT_COLUMNS]
    if any(v is not None for v in real):
        name = escape(str((floor or {}).get("name") or "real held-out"))
        change += f"<tr class=floor><td><i>{name}, same N</i></td>{_cells(real, False)}</tr>"
    opened = " open" if len(df) <= OPEN_ROWS else ""
    return (f"<h2>Per-digit MNIST FD</h2><details{opened}><summary>samples and real images grouped by the classifier's "
            f"predicted digit; the worst digit of each row in bold; then how each digit changed from the best to "
            "the last checkpoint, and (with --real-floor) held-out real digits scored alike</summary><div class=scroll><table>"
            f"<thead>{head}</thead><tbody>{''.join(rows)}{change}</tbody></table></div></details>")
