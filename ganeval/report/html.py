"""``report.html``: one self-contained page (inline CSS, images as ``data:`` URIs, no scripts, no external URLs).

It shows the verdict and flags first, then the per-checkpoint table, the metric plot, sample grids of the best
and last checkpoints, an animation across training, and the provenance of every number. Every string that
comes from users' files (checkpoint names, error messages, notes) is HTML-escaped; a Content-Security-Policy
meta tag additionally forbids scripts and any network access from the page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ganeval.report.digits import digits_section
from ganeval.report.images import animated_gif, data_uri, mosaic, png_bytes
from ganeval.report.neighbours import neighbours_section
from ganeval.report.plots import series_plot
from ganeval.version import __version__

if TYPE_CHECKING:
    from ganeval.evaluate import ScoreResult

#: Most frames in the training animation; longer series are subsampled evenly (first, best and last kept).
MAX_GIF_FRAMES = 40
DASH, INF = "—", "∞"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;max-width:1300px;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{font-size:1.1em;background:#f4f8ff;border-left:4px solid #3b73c4;padding:.6em .9em}
.banner{background:#fff1f0;border-left:4px solid #c0392b;padding:.5em .9em}
.flags{display:flex;gap:1em;flex-wrap:wrap}.flag{border:1px solid #ccc;border-radius:6px;padding:.5em .8em;flex:1;min-width:18em}
.flag.on{border-color:#c0392b;background:#fff6f5}
.badge{font-weight:600;padding:0 .4em;border-radius:3px;background:#2e8b57;color:#fff}
.on .badge{background:#c0392b}.muted{color:#777}
table{border-collapse:collapse;font-size:12.5px}th,td{border:1px solid #ddd;padding:2px 6px;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.best td{background:#e6f6e6;font-weight:600}tr.error td{background:#fdecea;color:#8a1f11}tr.nan td{background:#fff7e0}
td.err{max-width:28em;word-break:break-word;font-size:11.5px}.scroll{overflow-x:auto}
img.px{image-rendering:pixelated;image-rendering:crisp-edges}figure{display:inline-block;margin:.5em 1.5em .5em 0}
figcaption{font-size:12px;color:#555}code{font-size:11.5px;word-break:break-all}
"""


# -- value formatting ---------------------------------------------------------------------------------------------
def _float(x: Any) -> float | None:
    """A number as float, or None for missing values (None, pd.NA, NaN); summary strings "inf" count as numbers."""
    if x is None or x is pd.NA or isinstance(x, bool | np.bool_):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def fmt(x: Any, spec: str = ".2f") -> str:
    """One number for the page: missing → "—", ±inf → "∞", else ``format(x, spec)`` (``"sig4"``: 4 significant)."""
    f = _float(x)
    if f is None:
        return DASH
    if math.isinf(f):
        return INF if f > 0 else "−" + INF
    if spec == "sig4":
        return f"{f:.4g}"
    if spec == "int":
        return f"{int(round(f)):,}".replace(",", "\u2009")
    return format(f, spec)


def _fmt_fd(x: Any) -> str:
    """Fréchet distances: 2 decimals, but 3 significant digits below 1 (MNIST FD can be small)."""
    f = _float(x)
    return fmt(x, ".3g") if f is not None and math.isfinite(f) and abs(f) < 1 else fmt(x, ".2f")


def _modes_ci(row: pd.Series) -> str:
    lo, hi = _float(row.get("modes_ci_low")), _float(row.get("modes_ci_high"))
    return "" if lo is None or hi is None or lo == hi else f" <span class=muted>[{fmt(lo, 'int')}, {fmt(hi, 'int')}]</span>"


def _with_ci(row: pd.Series, col: str) -> str:
    val = _fmt_fd(row.get(col))
    lo, hi = _float(row.get(f"{col}_ci_low")), _float(row.get(f"{col}_ci_high"))
    if lo is None or hi is None:
        return val
    return f"{val} <span class=muted>[{_fmt_fd(lo)}, {_fmt_fd(hi)}]</span>"


def _pm(row: pd.Series, mean: str, std: str, spec: str) -> str:
    m = fmt(row.get(mean), spec)
    return m if _float(row.get(std)) is None or m == DASH else f"{m} ± {fmt(row.get(std), spec)}"


def _missing(x: Any) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float | np.floating) and math.isnan(x))


def _text(x: Any, empty: str = DASH) -> str:
    """A user-supplied string, HTML-escaped; missing → ``empty``."""
    return empty if _missing(x) else escape(str(x))


def _yes(x: Any) -> bool:
    """Truthiness of a table flag that may be bool, numpy bool, 0/1, NaN or pd.NA."""
    return not _missing(x) and bool(x)


#: Table columns: header, tooltip, columns that must exist for it to be shown, cell renderer (returns HTML).
Cell = Callable[[pd.Series], str]
TABLE: list[tuple[str, str, tuple[str, ...], Cell, bool]] = [
    ("iteration", "training iteration", ("iteration",), lambda r: fmt(r.get("iteration"), "int"), True),
    ("checkpoint", "checkpoint file", ("checkpoint",), lambda r: escape(str(r.get("checkpoint"))), False),
    ("N", "samples per checkpoint", ("n_samples",), lambda r: fmt(r.get("n_samples"), "int"), True),
    ("FID [CI]", "Fréchet Inception Distance, bootstrap CI", ("fid",), lambda r: _with_ci(r, "fid"), True),
    ("FID∞", "FID extrapolated to infinite N (Chong & Forsyth 2020): comparable across N", ("fid_inf",),
     lambda r: _fmt_fd(r.get("fid_inf")), True),
    ("IS", "Inception Score ± std over splits", ("is_mean",), lambda r: _pm(r, "is_mean", "is_std", ".2f"), True),
    ("KID", "Kernel Inception Distance ± std over subsets", ("kid_mean",), lambda r: _pm(r, "kid_mean", "kid_std", "sig4"), True),
    ("precision", "improved precision", ("precision",), lambda r: fmt(r.get("precision"), ".3f"), True),
    ("recall", "improved recall", ("recall",), lambda r: fmt(r.get("recall"), ".3f"), True),
    ("density", "density (Naeem et al. 2020): 1 when samples sit in real k-NN balls as often as real points do",
     ("density",), lambda r: fmt(r.get("density"), ".3f"), True),
    ("coverage", "share of real k-NN balls holding a sample", ("coverage",), lambda r: fmt(r.get("coverage"), ".3f"), True),
    ("MNIST IS", "Inception Score with the MNIST classifier", ("mnist_is",),
     lambda r: _pm(r, "mnist_is", "mnist_is_std", ".2f"), True),
    ("MNIST FD [CI]", "Fréchet distance of MNIST-classifier features, bootstrap CI", ("mnist_fd",),
     lambda r: _with_ci(r, "mnist_fd"), True),
    ("MNIST FD∞", "MNIST FD extrapolated to infinite N: comparable across N", ("mnist_fd_inf",),
     lambda r: _fmt_fd(r.get("mnist_fd_inf")), True),
    ("modes", "digit classes covered (bootstrap interval when it is not a single number)", ("modes_covered",),
     lambda r: fmt(r.get("modes_covered"), "int") + _modes_ci(r), True),
    ("class KL [CI]", "KL(class histogram ‖ uniform), bootstrap CI", ("class_kl",), lambda r: _with_ci(r, "class_kl"), True),
    ("confidence", "mean top-class probability", ("mnist_confidence",), lambda r: fmt(r.get("mnist_confidence"), ".3f"), True),
    ("intra FD", "MNIST FD per predicted digit, mean over the digits measured (how many: after the slash)",
     ("mnist_intra_fd",), lambda r: f"{fmt(r.get('mnist_intra_fd'), 'sig4')} / {fmt(r.get('mnist_intra_digits'), 'int')}", True),
    ("worst digit", "the digit with the largest per-digit MNIST FD, and that distance", ("mnist_worst_digit",),
     lambda r: "" if _missing(r.get("mnist_worst_digit")) else
     f"{fmt(r.get('mnist_worst_digit'), 'int')} ({fmt(r.get('mnist_worst_digit_fd'), 'sig4')})", False),
    ("Vendi", "Vendi score (Friedman & Dieng 2023), Inception features: effective number of distinct samples; "
     "after the slash, the same for as many real images", ("vendi",),
     lambda r: f"{fmt(r.get('vendi'), '.1f')} / {fmt(r.get('vendi_real'), '.1f')}", True),
    ("MNIST Vendi", "Vendi score on MNIST-classifier features; after the slash, real images", ("mnist_vendi",),
     lambda r: f"{fmt(r.get('mnist_vendi'), '.2f')} / {fmt(r.get('mnist_vendi_real'), '.2f')}", True),
    ("copying C_T", "data-copying test (Meehan et al. 2020): ≪ 0 memorised training images (flag below the threshold), "
     "≈ 0 like held-out data, > 0 farther from the training images than held-out data", ("copying_ct",),
     lambda r: fmt(r.get("copying_ct"), "+.2f"), True),
    ("near-copies", "share of samples nearer to a training image than 99% of held-out images are (≈ 0.01 without copying)",
     ("copy_share",), lambda r: fmt(r.get("copy_share"), ".3f"), True),
    ("Inception C_T", "the copying test in Inception features", ("inception_copying_ct",),
     lambda r: fmt(r.get("inception_copying_ct"), "+.2f"), True),
    ("Inception near-copies", "near-copy share in Inception features", ("inception_copy_share",),
     lambda r: fmt(r.get("inception_copy_share"), ".3f"), True),
    ("rank", "1 = best by the primary metric", ("rank",), lambda r: fmt(r.get("rank"), "int"), True),
    ("best", "the checkpoint to keep", ("is_best",), lambda r: "★" if _yes(r.get("is_best")) else "", False),
    ("status", "ok / nan_samples / error", ("status",),
     lambda r: _text(r.get("status")) + (" · mode collapse" if _yes(r.get("mode_collapse")) else "")
     + (" · data copying" if _yes(r.get("data_copying")) else ""), False),
    ("error", "why a checkpoint failed", ("error",), lambda r: _text(r.get("error"), ""), False),
    ("seconds", "wall time for this checkpoint", ("seconds",), lambda r: fmt(r.get("seconds"), ".1f"), True),
]


def _row_class(row: pd.Series) -> str:
    status = str(row.get("status"))
    if status == "error":
        return "error"
    if status == "nan_samples":
        return "nan"
    return "best" if _yes(row.get("is_best")) else ""


def render_table(df: pd.DataFrame) -> str:
    """The per-checkpoint table (only the documented columns that exist); best, error and NaN rows are styled."""
    cols = [c for c in TABLE if all(k in df for k in c[2])]
    head = "".join(f'<th title="{escape(tip)}">{escape(name)}</th>' for name, tip, _, _, _ in cols)
    body = []
    tds = ["<td class=n>" if num else "<td class=err>" if name == "error" else "<td>" for name, _, _, _, num in cols]
    for _, row in df.iterrows():
        cls = _row_class(row)
        cells = "".join(f"{td}{render(row)}</td>" for td, (_, _, _, render, _) in zip(tds, cols, strict=True))
        body.append(f"<tr class={cls}>{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    return (f'<div class=scroll><table id=scores><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


# -- sections ------------------------------------------------------------------------------------------------------
def _flag_head(title: str, on: bool) -> str:
    return f'<div class="flag{" on" if on else ""}"><b>{title}</b> <span class=badge>{"FLAG" if on else "no"}</span><br>'


def _flags(summary: dict[str, Any]) -> str:
    """The late-collapse and mode-collapse boxes, with the numbers behind each flag."""
    late = summary.get("late_collapse") or {}
    on = bool(late.get("flag"))
    metric = escape(str(late.get("metric", summary.get("primary_metric", "?"))))
    parts = [_flag_head("Late-training collapse", on)]
    if late.get("last") is not None:
        rel = _float(late.get("relative"))
        rel_s = fmt(100 * rel, "+.1f") + "%" if rel is not None and math.isfinite(rel) else fmt(rel)
        parts.append(f"last <code>{escape(str(late['last']))}</code> vs best <code>{escape(str(late.get('best')))}</code>: "
                     f"{metric} difference {fmt(late.get('difference'), '+.4g')} (relative {rel_s})")
        if _float(late.get("ci_low")) is not None:
            level = _float(late.get("ci_level")) or 0.95
            lo, hi = fmt(late.get("ci_low"), ".4g"), fmt(late.get("ci_high"), ".4g")
            parts.append(f", {round(100 * level)}% paired CI [{lo}, {hi}]")
        parts.append("<br>")
    if late.get("threshold") is not None:
        parts.append(f"<span class=muted>flag when relative &gt; {fmt(100 * (_float(late['threshold']) or 0), '.0f')}% "
                     "and the CI excludes zero</span>")
    if late.get("reason"):
        parts.append(f"<br><span class=muted>{escape(str(late['reason']))}</span>")
    parts.append("</div>")
    mode = summary.get("mode_collapse") or {}
    names = [str(c) for c in mode.get("checkpoints") or []]
    on = bool(mode.get("flag"))
    parts.append(_flag_head("Mode collapse", on))
    if names:
        shown = ", ".join(f"<code>{escape(n)}</code>" for n in names[:12])
        parts.append(f"{len(names)} checkpoint(s): {shown}{f' and {len(names) - 12} more' if len(names) > 12 else ''}<br>")
    crit = []
    if mode.get("min_modes") is not None:
        crit.append(f"fewer than {escape(str(mode['min_modes']))} classes covered")
    if mode.get("max_class_kl") is not None:
        crit.append(f"class KL &gt; {escape(str(mode['max_class_kl']))}")
    sure = [str(c) for c in mode.get("beyond_noise") or []]
    if names and "beyond_noise" in mode:
        parts.append(f"beyond sampling noise (the whole {round(100 * (_float(mode.get('ci_level')) or 0.95))}% interval past "
                     f"the limit): {len(sure)} of {len(names)}<br>")
    if crit:
        parts.append(f"<span class=muted>flag when {' or '.join(crit)}</span>")
    parts.append("</div>")
    copying = summary.get("data_copying")
    if copying is not None:
        names = [str(c) for c in copying.get("checkpoints") or []]
        parts.append(_flag_head("Data copying", bool(copying.get("flag"))))
        if names:
            shown = ", ".join(f"<code>{escape(n)}</code>" for n in names[:12])
            parts.append(f"{len(names)} checkpoint(s): {shown}{f' and {len(names) - 12} more' if len(names) > 12 else ''}<br>")
        parts.append(f"<span class=muted>flag when the copying test's C_T &lt; {fmt(copying.get('threshold'), '+.1f')} "
                     "(samples nearer to training images than held-out images are)</span></div>")
    return f"<div class=flags>{''.join(parts)}</div>"


def notes_section(summary: dict[str, Any]) -> str:
    notes = [str(n) for n in summary.get("notes") or []]
    if not notes:
        return "<p class=muted>No notes.</p>"
    return "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"


def _plot(df: pd.DataFrame, summary: dict[str, Any]) -> str:
    threshold = _float((summary.get("data_copying") or {}).get("threshold"))
    res = series_plot(df, copying_threshold=-3.0 if threshold is None else threshold)
    notes = "".join(f"<li>{escape(n)}</li>" for n in res.notes)
    notes = f"<ul class=muted>{notes}</ul>" if notes else ""
    if res.png is None:
        return f"<p class=muted>No FID or MNIST FD values to plot.</p>{notes}"
    return (f'<img src="{data_uri(res.png, "image/png")}" alt="FID and MNIST FD over training" '
            f'style="max-width:100%">{notes}')


def _ordered_grids(result: ScoreResult) -> list[str]:
    """Checkpoints with a grid in training order (table order sorted by iteration when known), then any others."""
    df = result.table
    names = [str(c) for c in df["checkpoint"]] if "checkpoint" in df else []
    if "iteration" in df:
        it = pd.to_numeric(df["iteration"], errors="coerce").to_numpy(dtype=float)
        if np.isfinite(it).all():
            names = [names[i] for i in np.argsort(it, kind="stable")]
    names += [k for k in result.grids if k not in names]
    return [n for n in names if result.grids.get(n) is not None]


def _subsample(names: list[str], keep: set[str], limit: int) -> list[str]:
    if len(names) <= limit:
        return names
    idx = set(np.linspace(0, len(names) - 1, limit - len(keep)).round().astype(int).tolist())
    return [n for i, n in enumerate(names) if i in idx or n in keep]


def _grids(result: ScoreResult) -> str:
    df = result.table
    best = df.loc[df["is_best"].fillna(False).astype(bool), "checkpoint"] if "is_best" in df else pd.Series([], dtype=object)
    best_name = str(best.iloc[0]) if len(best) else None
    last_name = str(df["checkpoint"].iloc[-1]) if len(df) and "checkpoint" in df else None
    shown: list[tuple[str, str]] = []
    if best_name is not None:
        shown.append(("best" + (" = last" if best_name == last_name else ""), best_name))
    if last_name is not None and last_name != best_name:
        shown.append(("last", last_name))
    out = []
    for role, name in shown:
        grid = result.grids.get(name)
        if grid is None:
            out.append(f"<p class=muted>{role}: no samples for <code>{escape(name)}</code>.</p>")
            continue
        out.append(grid_figure(grid, name, f"{role}: <code>{escape(name)}</code>"))
    if not out:
        out.append("<p class=muted>No sample grids.</p>")
    order = _ordered_grids(result)
    if len(order) > 1:
        frames = _subsample(order, {n for n in (best_name, last_name) if n in order}, MAX_GIF_FRAMES)
        gif = animated_gif([(n, result.grids[n]) for n in frames])
        sub = f" ({len(frames)} of {len(order)} checkpoints, evenly spaced)" if len(frames) < len(order) else ""
        width = mosaic(result.grids[frames[0]], scale=1).shape[1] * 3
        out.append(f'<h3>Across training</h3><figure><img class=px width="{width}" src="{data_uri(gif, "image/gif")}" '
                   f'alt="sample grids across training"><figcaption>the same latents at every checkpoint, in training '
                   f"order{sub}</figcaption></figure>")
    return "".join(out)


def grid_figure(grid: np.ndarray, name: str, caption: str) -> str:
    """A sample grid as an inline pixel-exact figure; ``caption`` is HTML (escape what comes from users)."""
    png = png_bytes(mosaic(grid, scale=3))
    return (f'<figure><img class=px src="{data_uri(png, "image/png")}" alt="samples of {escape(name)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def page_head(title: str) -> str:
    """Doctype, a Content-Security-Policy that forbids scripts and network access, the CSS, and the title."""
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>", f"<h1>{escape(title)}</h1>",
    ])


def _kv_table(items: list[tuple[str, Any]]) -> str:
    def show(v: Any) -> str:
        return escape(v if isinstance(v, str) else json.dumps(v, default=str))

    rows = "".join(f"<tr><th>{escape(k)}</th><td><code>{show(v)}</code></td></tr>" for k, v in items)
    return f"<table>{rows}</table>"


PROVENANCE_KEYS = ("extractor", "weights_sha256", "weights_source", "resize", "channels", "precision", "reference",
                   "reference_sha256", "reference_n")


def provenance_section(summary: dict[str, Any]) -> str:
    out = []
    prov = summary.get("provenance") or {}
    if prov:
        keys = list(PROVENANCE_KEYS) + sorted({k for p in prov.values() for k in (p or {}) if k not in PROVENANCE_KEYS})
        head = "".join(f"<th>{escape(k)}</th>" for k in keys)
        rows = "".join("<tr>" + "".join(f"<td><code>{escape(str((p or {}).get(k, DASH)))}</code></td>" for k in keys) + "</tr>"
                       for p in prov.values())
        out.append(f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")
    boot = summary.get("bootstrap") or {}
    run = [("N (samples per checkpoint)", summary.get("n_samples")), ("seed", summary.get("seed")),
           ("reference", summary.get("reference")), ("precision", summary.get("precision")),
           ("primary metric", summary.get("primary_metric")),
           ("bootstrap", boot and f"{boot.get('replicates', '?')} replicates, level {boot.get('level', '?')}, "
                         f"{boot.get('method', '?')}"),
           ("checkpoints", summary.get("n_checkpoints")), ("errors", summary.get("n_errors")),
           ("ganeval version", summary.get("ganeval_version", __version__)), ("date", summary.get("date")),
           ("seconds", summary.get("seconds")), ("world size", summary.get("world_size"))]
    out.append(_kv_table([(k, v) for k, v in run if v is not None and v != {}]))
    options = summary.get("options") or {}
    if options:
        out.append("<h3>Options</h3>" + _kv_table(sorted(options.items())))
    return "".join(out)


def render_html(result: ScoreResult) -> str:
    """The whole report page for ``result`` as one HTML string (no external resources)."""
    s, df = result.summary, result.table
    title = f"ganeval report — {len(df)} checkpoint(s)"
    banner = ""
    n_err = int((df["status"] == "error").sum()) if "status" in df else 0
    if result.failed or n_err:
        banner = f"<p class=banner>{n_err} checkpoint(s) could not be scored; see the error column.</p>"
    return "\n".join([
        page_head(title),
        f"<p class=muted>{escape(str(s.get('date', '')))} · primary metric {escape(str(s.get('primary_metric', '?')))}"
        f" · N = {escape(str(s.get('n_samples', '?')))}</p>",
        f"<p class=verdict>{escape(str(s.get('verdict', 'No verdict.')))}</p>",
        banner,
        _flags(s),
        "<h2>Notes</h2>", notes_section(s),
        "<h2>Checkpoints</h2>", render_table(df),
        "<h2>Metrics over training</h2>", _plot(df, s), digits_section(df),
        "<h2>Samples</h2>", _grids(result), neighbours_section(result),
        "<h2>Provenance</h2>", provenance_section(s),
        "</body></html>",
    ])
