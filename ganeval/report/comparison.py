"""The ``compare`` report: ``members.csv``/``.parquet``, ``arms.csv``, ``differences.csv``, ``compare.json`` and a
self-contained ``compare.html`` (verdict, differences with a forest plot, per-arm means, samples, provenance)."""

from __future__ import annotations

import io
import json
import os
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ganeval.atomic import write_set
from ganeval.compare_tests import n_text, scored_sizes
from ganeval.metrics.directions import DIFFERENCE_WORDS, LABELS, SIGN_NOTE
from ganeval.names import COMPARE_FILES
from ganeval.report.html import grid_figure, notes_section, page_head, provenance_section
from ganeval.report.images import data_uri
from ganeval.report.markdown import md_code, md_text
from ganeval.report.plots import mpl_text, palette_png
from ganeval.report.table import fmt, render_table

if TYPE_CHECKING:
    from ganeval.comparing import Comparison



def forest_plot(diffs: pd.DataFrame, dpi: int = 90) -> bytes | None:
    """Each arm's difference from the baseline with its interval, one panel per metric; None when nothing to draw."""
    from matplotlib.figure import Figure

    d = diffs[np.isfinite(pd.to_numeric(diffs["difference"], errors="coerce").astype(float))]
    metrics = list(dict.fromkeys(d["metric"]))
    if not metrics:
        return None
    arms = list(dict.fromkeys(d["arm"]))
    fig = Figure(figsize=(7, 0.9 + 0.45 * len(arms) * len(metrics) + 0.5 * len(metrics)), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics, strict=True):
        rows = d[d["metric"] == metric]
        y = np.arange(len(rows))[::-1]
        x = rows["difference"].to_numpy(dtype=float)
        lo = rows["ci_low"].to_numpy(dtype=float)
        hi = rows["ci_high"].to_numpy(dtype=float)
        has = np.isfinite(lo) & np.isfinite(hi)
        colors = [{"better": "#2e8b57", "worse": "#c0392b"}.get(v, "#1f5fa8" if v in DIFFERENCE_WORDS.get(metric, ()) else "#555")
                  for v in rows["verdict"]]
        for yi, xi, low, high, c, ok in zip(y, x, lo, hi, colors, has, strict=True):
            if ok:
                ax.plot([low, high], [yi, yi], color=c, lw=2)
            ax.plot([xi], [yi], "o", color=c)
        ax.axvline(0, color="#999", lw=1, ls="--")
        ax.set_yticks(y, [mpl_text(str(a), 24) for a in rows["arm"]])
        base = mpl_text(str(rows["baseline"].iloc[0]), 24)
        ax.set_xlabel(f"{LABELS.get(metric, metric)}: arm − {base} ({SIGN_NOTE.get(metric, 'lower is better')})")
        ax.set_ylim(-0.7, len(rows) - 0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return palette_png(buf.getvalue())


def curves_plot(curves: dict[str, pd.DataFrame], dpi: int = 90) -> bytes | None:
    """Each picked run's series over iterations (FID where every run has it on ≥ 2 checkpoints, else MNIST FD),
    the picked checkpoint starred; None when no run was picked from a folder."""
    from matplotlib.figure import Figure

    def values(df: pd.DataFrame, col: str) -> np.ndarray:
        return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float) if col in df else np.full(len(df), np.nan)

    if not curves:
        return None
    metric = "fid" if all(np.isfinite(values(c, "fid")).sum() >= 2 for c in curves.values()) else "mnist_fd"
    fig = Figure(figsize=(8, 3.4), dpi=dpi, layout="constrained")
    ax = fig.subplots()
    for name, c in curves.items():
        x, y = values(c, "iteration"), values(c, metric)
        ok = np.isfinite(x) & np.isfinite(y)
        line = ax.plot(x[ok], y[ok], "o-", ms=3, lw=1.2, label=mpl_text(name, 48))[0]
        picked = ok & c["picked"].to_numpy(dtype=bool)
        ax.plot(x[picked], y[picked], "*", ms=13, color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"{LABELS.get(metric, metric)} (log scale)")
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return palette_png(buf.getvalue())


def _n(comp: Comparison) -> str:
    """The sample counts the runs were scored at ("300–500" where a sample set held fewer), else the N asked for."""
    sizes = scored_sizes(comp.members, list(comp.members["checkpoint"]))
    return n_text(sizes) if sizes else str(comp.summary.get("n_samples", "?"))


def _cell(x: Any, spec: str = "sig4") -> str:
    return fmt(x, spec)


def _diff_table(diffs: pd.DataFrame) -> str:
    if diffs.empty:
        return "<p class=muted>No Fréchet distance was computed in two arms: nothing to compare with an interval.</p>"
    head = ("<tr><th>arm</th><th>metric</th><th>arm value</th><th>baseline value</th><th>difference</th><th>relative</th>"
            "<th>interval</th><th>verdict</th><th>p</th><th>runs</th><th>method</th></tr>")
    body = []
    for _, r in diffs.iterrows():
        rel = r["relative"]
        rel_s = "" if pd.isna(rel) else f"{100 * float(rel):+.1f}%"
        ci = "" if pd.isna(r["ci_low"]) else f"[{float(r['ci_low']):+.4g}, {float(r['ci_high']):+.4g}]"
        diff = "" if pd.isna(r["difference"]) else f"{float(r['difference']):+.4g}"
        verdict = "" if pd.isna(r["verdict"]) else str(r["verdict"])
        cls = " class=best" if verdict == "better" else " class=error" if verdict == "worse" else ""
        runs = f"{int(r['runs'])} vs {int(r['baseline_runs'])}" if not pd.isna(r["runs"]) else ""
        body.append(f"<tr{cls}><td>{escape(str(r['arm']))}</td><td>{escape(LABELS.get(str(r['metric']), str(r['metric'])))}</td>"
                    f"<td class=n>{_cell(r['value'])}</td><td class=n>{_cell(r['baseline_value'])}</td>"
                    f"<td class=n>{diff}</td><td class=n>{rel_s}</td><td class=n>{ci}</td><td>{escape(verdict)}</td>"
                    f"<td class=n>{_cell(r['p_value'], '.3g')}</td><td class=n>{runs}</td><td>{escape(str(r['method']))}</td></tr>")
    return f"<div class=scroll><table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>"


def _arm_table(arms: pd.DataFrame) -> str:
    cols = [c for c in arms.columns if c != "arm"]
    head = "<tr><th>arm</th>" + "".join(f"<th>{escape(c)}</th>" for c in cols) + "</tr>"
    body = []
    for _, r in arms.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c in ("mode_collapse_sure", "data_copying") and (v is None or v is pd.NA):
                cells.append("<td class=n><span class=muted>not tested</span></td>")
                continue
            cells.append(f"<td class=n>{escape(str(bool(v))) if isinstance(v, (bool, np.bool_)) else _cell(v)}</td>")
        body.append(f"<tr><td>{escape(str(r['arm']))}</td>{''.join(cells)}</tr>")
    return f"<div class=scroll><table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>"


def _samples(comp: Comparison) -> str:
    out = []
    for arm, names in comp.arm_members.items():
        grid = next((comp.result.grids[n] for n in names if comp.result.grids.get(n) is not None), None)
        if grid is None:
            out.append(f"<p class=muted>{escape(arm)}: no samples.</p>")
            continue
        out.append(grid_figure(grid, arm, f"<code>{escape(arm)}</code> (first run)"))
    return "".join(out)


def render_comparison(comp: Comparison) -> str:
    """The whole comparison page as one HTML string (no external resources, no scripts)."""
    s = comp.summary
    title = f"ganeval compare — {len(comp.arm_members)} arms, baseline {s.get('baseline')}"
    png = forest_plot(comp.differences)
    plot = (f'<img src="{data_uri(png, "image/png")}" alt="differences from the baseline" style="max-width:100%">'
            if png else "<p class=muted>No differences to plot.</p>")
    cpng = curves_plot(comp.curves)
    curves = ("<h2>Over training</h2>"
              f'<img src="{data_uri(cpng, "image/png")}" alt="the picked runs over training" style="max-width:100%">'
              "<p class=muted>Each run's series as scored for picking (★: the checkpoint compared).</p>") if cpng else ""
    verdict = "".join(f"<p class=verdict>{escape(line)}</p>" for line in s.get("verdict_lines") or ["No verdict."])
    banner = (f"<p class=banner>{s.get('n_errors')} run(s) could not be scored; see the error column.</p>"
              if s.get("n_errors") else "")
    return "\n".join([
        page_head(title),
        f"<p class=muted>{escape(str(s.get('date', '')))} · N = {escape(_n(comp))} per run</p>",
        verdict, banner,
        "<h2>Notes</h2>", notes_section(s),
        "<h2>Differences from the baseline</h2>", _diff_table(comp.differences), plot,
        curves,
        "<h2>Arms (mean over runs)</h2>", _arm_table(comp.arms),
        "<h2>Runs</h2>", render_table(comp.members, s.get("real_floor")),
        "<h2>Samples</h2>", _samples(comp),
        "<h2>Provenance</h2>", provenance_section(s),
        "</body></html>",
    ])


def markdown(comp: Comparison) -> str:
    """The verdict and the differences as a Markdown section (``GITHUB_STEP_SUMMARY``, pull-request comments)."""
    s = comp.summary
    lines = [f"### ganeval compare — baseline {md_code(s.get('baseline'))}, N = {_n(comp)}", ""]
    lines += [f"- {md_text(line)}" for line in s.get("verdict_lines") or []]
    if not comp.differences.empty:
        lines += ["", "| arm | metric | arm value | baseline value | difference | interval | verdict |", "|---|---|---|---|---|---|---|"]
        for _, r in comp.differences.iterrows():
            ci = "–" if pd.isna(r["ci_low"]) else f"[{float(r['ci_low']):+.4g}, {float(r['ci_high']):+.4g}]"
            diff = "–" if pd.isna(r["difference"]) else f"{float(r['difference']):+.4g}"
            verdict = "–" if pd.isna(r["verdict"]) else str(r["verdict"])
            lines.append(f"| {md_text(r['arm'])} | {LABELS.get(str(r['metric']), r['metric'])} | {_cell(r['value'])} | "
                         f"{_cell(r['baseline_value'])} | {diff} | {ci} | {verdict} |")
    return "\n".join(lines) + "\n\n"


def write_comparison(comp: Comparison, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every comparison file into ``out_dir`` as one set (:func:`ganeval.atomic.write_set`); returns their
    paths by kind. A value that cannot be encoded (e.g. not JSON-serialisable), a failed write (a full disk) or an
    interrupt leaves the earlier comparison whole, never new tables beside an old ``compare.json`` (renamed last)."""
    out = Path(out_dir)
    paths = {kind: out / name for kind, name in COMPARE_FILES.items()}
    summary = {**comp.summary, "report": {k: str(v) for k, v in paths.items()}}
    texts = {"json": json.dumps(summary, indent=2, allow_nan=False) + "\n", "members_csv": comp.members.to_csv(index=False),
             "arms_csv": comp.arms.to_csv(index=False), "differences_csv": comp.differences.to_csv(index=False),
             "html": render_comparison(comp), "markdown": markdown(comp)}
    data = {k: v.encode("utf-8") for k, v in texts.items()}
    buf = io.BytesIO()
    comp.members.to_parquet(buf, index=False)
    data["members_parquet"] = buf.getvalue()
    order = ("members_csv", "members_parquet", "arms_csv", "differences_csv", "html", "markdown", "json")
    write_set({paths[kind]: data[kind] for kind in order})  # compare.json last: its presence says the report is complete
    return paths
