"""``report.html``: one self-contained page (inline CSS, images as ``data:`` URIs, no scripts, no external URLs).

It shows the verdict and flags first, then the per-checkpoint table, the metric plot, sample grids of the best
and last checkpoints, an animation across training, and the provenance of every number. Every string that
comes from users' files (checkpoint names, error messages, notes) is HTML-escaped; a Content-Security-Policy
meta tag additionally forbids scripts and any network access from the page.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ganeval.metrics.interval import ci_percent
from ganeval.report.digits import digits_section
from ganeval.report.images import animated_gif, data_uri, mosaic, png_bytes
from ganeval.report.neighbours import neighbours_section
from ganeval.report.plots import last_scored, series_plot, unscored_newest
from ganeval.report.realism import realism_section
from ganeval.report.table import DASH, fmt, number, render_table
from ganeval.report.tradeoff_plot import tradeoff_plot
from ganeval.summary import ci_kind
from ganeval.version import __version__

if TYPE_CHECKING:
    from ganeval.score_result import ScoreResult

#: Most frames in the training animation; longer series are subsampled evenly (first, best and last kept).
MAX_GIF_FRAMES = 40

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;max-width:1300px;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{font-size:1.1em;background:#f4f8ff;border-left:4px solid #3b73c4;padding:.6em .9em}
.banner{background:#fff1f0;border-left:4px solid #c0392b;padding:.5em .9em}
.flags{display:flex;gap:1em;flex-wrap:wrap}.flag{border:1px solid #ccc;border-radius:6px;padding:.5em .8em;flex:1;min-width:18em}
.flag.on{border-color:#c0392b;background:#fff6f5}
.badge{font-weight:600;padding:0 .4em;border-radius:3px;background:#2e8b57;color:#fff}
.on .badge{background:#c0392b}.untested .badge{background:#888}.muted{color:#777}
table{border-collapse:collapse;font-size:12.5px}th,td{border:1px solid #ddd;padding:2px 6px;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.best td{background:#e6f6e6;font-weight:600}tr.error td{background:#fdecea;color:#8a1f11}tr.nan td{background:#fff7e0}
tr.floor td{background:#eef0f7;font-style:italic;border-top:2px solid #99a}
td.err{max-width:28em;word-break:break-word;font-size:11.5px}.scroll{overflow-x:auto}
img.px{image-rendering:pixelated;image-rendering:crisp-edges}figure{display:inline-block;margin:.5em 1.5em .5em 0}
figcaption{font-size:12px;color:#555}code{font-size:11.5px;word-break:break-all}
"""


# -- value formatting ---------------------------------------------------------------------------------------------
# -- sections ------------------------------------------------------------------------------------------------------
def _flag_head(title: str, on: bool | None) -> str:
    """A flag box's title and badge: FLAG, no, or (``on`` None) not tested."""
    state, badge = (" on", "FLAG") if on else ("", "no") if on is not None else (" untested", "not tested")
    return f'<div class="flag{state}"><b>{title}</b> <span class=badge>{badge}</span><br>'


def _untested(title: str, flag: str) -> str:
    """The box of a check this run did not make (its metric was not asked for): never a green "no"."""
    return (f"{_flag_head(title, None)}<span class=muted>not tested: add <code>--metrics {flag}</code> "
            "(with the other metrics) to test it</span></div>")


def _flags(summary: dict[str, Any]) -> str:
    """The late-collapse and mode-collapse boxes, with the numbers behind each flag."""
    late = summary.get("late_collapse") or {}
    on = bool(late.get("flag"))
    metric = escape(str(late.get("metric", summary.get("primary_metric", "?"))))
    parts = [_flag_head("Late-training collapse", on)]
    if late.get("last") is not None and late.get("unmeasurable"):  # the reason line says why
        parts.append(f"last <code>{escape(str(late['last']))}</code>: {metric} not measurable<br>")
    elif late.get("last") is not None:
        rel = number(late.get("relative"))
        rel_s = fmt(100 * rel, "+.1f") + "%" if rel is not None and math.isfinite(rel) else fmt(rel)
        parts.append(f"last <code>{escape(str(late['last']))}</code> vs best <code>{escape(str(late.get('best')))}</code>: "
                     f"{metric} difference {fmt(late.get('difference'), '+.4g')} ({rel_s} worse)")
        if number(late.get("ci_low")) is not None:
            level = number(late.get("ci_level")) or 0.95
            lo, hi = fmt(late.get("ci_low"), ".4g"), fmt(late.get("ci_high"), ".4g")
            parts.append(f", {ci_percent(level)}% {ci_kind(late)} CI [{lo}, {hi}]")
        parts.append("<br>")
    if late.get("threshold") is not None:
        parts.append(f"<span class=muted>flag when relative &gt; {fmt(100 * (number(late['threshold']) or 0), '.4g')}% "
                     "and the CI excludes zero</span>")
    for key in ("basis", "reason", "note"):
        if late.get(key):
            parts.append(f"<br><span class=muted>{escape(str(late[key]))}</span>")
    parts.append("</div>")
    parts.append(_mode_box(summary))
    copying = summary.get("data_copying")
    if copying is not None and copying.get("tested") is False:
        parts.append(_untested("Data copying", "copying"))
    elif copying is not None:
        names = [str(c) for c in copying.get("checkpoints") or []]
        parts.append(_flag_head("Data copying", bool(copying.get("flag"))))
        if names:
            shown = ", ".join(f"<code>{escape(n)}</code>" for n in names[:12])
            parts.append(f"{len(names)} checkpoint(s): {shown}{f' and {len(names) - 12} more' if len(names) > 12 else ''}<br>")
        parts.append(f"<span class=muted>flag when the copying test's C_T &lt; {fmt(copying.get('threshold'), '+.1f')} "
                     "(samples nearer to training images than held-out images are)</span></div>")
    return f"<div class=flags>{''.join(parts)}</div>"


def _mode_box(summary: dict[str, Any]) -> str:
    """The mode-collapse box: the flagged checkpoints, how many beyond sampling noise, and the rule."""
    mode = summary.get("mode_collapse") or {}
    names = [str(c) for c in mode.get("checkpoints") or []]
    on = bool(mode.get("flag"))
    if mode.get("tested") is False:
        return _untested("Mode collapse", "modes")
    parts = [_flag_head("Mode collapse", on)]
    if names:
        shown = ", ".join(f"<code>{escape(n)}</code>" for n in names[:12])
        parts.append(f"{len(names)} checkpoint(s): {shown}{f' and {len(names) - 12} more' if len(names) > 12 else ''}<br>")
    crit = []
    if mode.get("min_modes") is not None:
        crit.append(f"fewer than {escape(str(mode['min_modes']))} classes covered")
    if mode.get("max_class_kl") is not None:
        crit.append(f"class KL &gt; {escape(str(mode['max_class_kl']))}")
    sure = mode.get("beyond_noise")
    if names and sure is not None:
        parts.append(f"beyond sampling noise (the whole {ci_percent(number(mode.get('ci_level')) or 0.95)}% interval past "
                     f"the limit): {len(sure)} of {len(names)}<br>")
    elif names and "beyond_noise" in mode:  # null: no interval was computed, so nothing was tested against noise
        reps = (summary.get("bootstrap") or {}).get("replicates")
        parts.append(f"beyond sampling noise: not tested ({'--bootstrap 0' if reps == 0 else 'no interval'})<br>")
    if crit:
        parts.append(f"<span class=muted>flag when {' or '.join(crit)}</span>")
    parts.append("</div>")
    return "".join(parts)


def _floor_note(floor: dict[str, Any] | None) -> str:
    """What the last, shaded row is: real images the reference was not made from, scored exactly like the checkpoints."""
    if not floor:
        return ""
    return (f"<p class=muted>The shaded last row is the real-data floor: {escape(str(floor.get('n')))} held-out real images "
            f"({escape(str(floor.get('source')))}, pixel SHA-256 <code>{escape(str(floor.get('dataset_sha256', ''))[:16])}</code>…; "
            f"{escape(str(floor.get('subset', 'all')))} of {escape(str(floor.get('n_available')))}) "
            "scored like a checkpoint, with the same N, extractors, reference and bootstrap: what finite N costs real data. A "
            "generator matching the real distribution scores about this, within the intervals; below it is noise, or copies "
            "of the reference images.</p>")


def notes_section(summary: dict[str, Any]) -> str:
    """The report's notes (what was unavailable or assumed) as an HTML list; empty when none."""
    notes = [str(n) for n in summary.get("notes") or []]
    if not notes:
        return "<p class=muted>No notes.</p>"
    return "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"


def _plot(df: pd.DataFrame, summary: dict[str, Any]) -> str:
    threshold = number((summary.get("data_copying") or {}).get("threshold"))
    floor = (summary.get("real_floor") or {}).get("values")
    res = series_plot(df, copying_threshold=-3.0 if threshold is None else threshold, floor=floor)
    notes = "".join(f"<li>{escape(n)}</li>" for n in res.notes)
    notes = f"<ul class=muted>{notes}</ul>" if notes else ""
    if res.png is None:
        return f"<p class=muted>No FID or MNIST FD values to plot.</p>{notes}"
    return (f'<img src="{data_uri(res.png, "image/png")}" alt="FID and MNIST FD over training" '
            f'style="max-width:100%">{notes}')


def _tradeoff(df: pd.DataFrame, summary: dict[str, Any]) -> str:
    res = tradeoff_plot(df, floor=(summary.get("real_floor") or {}).get("values"))
    if res.png is None:
        return ""
    return ("<h2>Fidelity and diversity over training</h2><p class=muted>Fidelity (precision, density) falling says the "
            "samples got worse; diversity (recall, coverage, modes) falling says the generator collapsed. Dotted: "
            "real held-out images at the same N, when scored (--real-floor).</p>"
            f'<img src="{data_uri(res.png, "image/png")}" alt="fidelity and diversity over training" style="max-width:100%">')


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
    last = last_scored(df) if "checkpoint" in df else None  # the checkpoint the verdict judges, not an unreadable file
    if last is None and len(df) and "checkpoint" in df:
        last = len(df) - 1  # none could be scored: name the newest ("no samples for …")
    last_name = str(df["checkpoint"].iloc[last]) if last is not None else None
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
    if (newest := unscored_newest(df)) is not None:
        out.append(f"<p class=muted>{escape(newest[0].upper() + newest[1:])}</p>")
    order = _ordered_grids(result)
    if len(order) > 1:
        frames = _subsample(order, {n for n in (best_name, last_name) if n in order}, MAX_GIF_FRAMES)
        gif = animated_gif([(n, result.grids[n]) for n in frames])
        sub = f" ({len(frames)} of {len(order)} checkpoints, evenly spaced)" if len(frames) < len(order) else ""
        width = mosaic(result.grids[frames[0]], scale=1).shape[1] * 3
        out.append(f'<h3>Across training</h3><figure><img class=px width="{width}" src="{data_uri(gif, "image/gif")}" '
                   f'alt="sample grids across training"><figcaption>{_gif_what(frames, result.summary)}, in training '
                   f"order{sub}</figcaption></figure>")
    return "".join(out)


def _gif_what(frames: list[str], summary: dict[str, Any]) -> str:
    """What the animation's frames have in common: the same latents only where every frame is a generator's."""
    own = set((summary.get("bootstrap") or {}).get("unpaired") or [])
    if not own & set(frames):
        return "the same latents at every checkpoint"
    if own >= set(frames):
        return "each frame's own images: no shared latents (stored samples' first images, or another latent size's)"
    return ("the same latents for the generators of the run's latent size; the others' own images (stored samples' "
            "first images, or another latent size's)")


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


def scored_n(summary: dict[str, Any]) -> str:
    """The N the checkpoints were scored at ("300", or "300–2000"), with --num-samples when that differs; a summary
    without ``n_scored`` (older) gives --num-samples."""
    asked = summary.get("n_samples")
    sizes = [int(n) for n in summary.get("n_scored") or []]
    if not sizes:
        return str(asked if asked is not None else "?")
    text = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    return text if sizes == [asked] else f"{text} ({asked} asked for)"


def _kv_table(items: list[tuple[str, Any]]) -> str:
    def show(v: Any) -> str:
        return escape(v if isinstance(v, str) else json.dumps(v, default=str))

    rows = "".join(f"<tr><th>{escape(k)}</th><td><code>{show(v)}</code></td></tr>" for k, v in items)
    return f"<table>{rows}</table>"


PROVENANCE_KEYS = ("extractor", "weights_sha256", "weights_source", "resize", "channels", "precision", "reference",
                   "reference_sha256", "reference_n")


def _prov_cell(value: Any) -> str:
    """One provenance value: the real images' subset as "N of M, method" (its indices' SHA-256 is in summary.json)."""
    if isinstance(value, dict) and {"n", "of", "method"} <= set(value):
        return f"{value['n']} of {value['of']}, {value['method']}"
    return str(value)


def provenance_section(summary: dict[str, Any]) -> str:
    """Where every number came from (extractors, weights SHA-256, resize, N, seed) as HTML."""
    out = []
    prov = summary.get("provenance") or {}
    if prov:
        keys = list(PROVENANCE_KEYS) + sorted({k for p in prov.values() for k in (p or {}) if k not in PROVENANCE_KEYS})
        head = "".join(f"<th>{escape(k)}</th>" for k in keys)
        rows = "".join("<tr>" + "".join(f"<td><code>{escape(_prov_cell((p or {}).get(k, DASH)))}</code></td>" for k in keys)
                       + "</tr>" for p in prov.values())
        out.append(f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")
    boot = summary.get("bootstrap") or {}
    run = [("N (samples per checkpoint)", scored_n(summary)), ("seed", summary.get("seed")),
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
        f" · N = {escape(scored_n(s))}</p>",
        f"<p class=verdict>{escape(str(s.get('verdict', 'No verdict.')))}</p>",
        banner,
        _flags(s),
        "<h2>Notes</h2>", notes_section(s),
        "<h2>Checkpoints</h2>", render_table(df, s.get("real_floor")), _floor_note(s.get("real_floor")),
        "<h2>Metrics over training</h2>", _plot(df, s), _tradeoff(df, s), digits_section(df, s.get("real_floor")),
        "<h2>Samples</h2>", _grids(result), neighbours_section(result), realism_section(result),
        "<h2>Provenance</h2>", provenance_section(s),
        "</body></html>",
    ])
