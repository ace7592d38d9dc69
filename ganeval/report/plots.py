"""The report's metric-over-training plot (matplotlib, rendered off-screen to PNG bytes).

Uses ``matplotlib.figure.Figure`` directly rather than ``pyplot``, so no global backend or figure state is
touched (safe inside notebooks and threads) and the Agg renderer is used whatever backend is configured.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Panels in display order: value column, CI columns, axis label.
PANELS = (("fid", "fid_ci_low", "fid_ci_high", "FID (Inception)"),
          ("mnist_fd", "mnist_fd_ci_low", "mnist_fd_ci_high", "MNIST FD (classifier features)"))
#: Panels drawn only when computed: Fréchet distance in your own feature network's space, path lengths.
OPTIONAL_PANELS = (("sfid", "sfid_ci_low", "sfid_ci_high", "sFID (spatial Inception)"),
                   ("custom_fd", "custom_fd_ci_low", "custom_fd_ci_high", "FD (your feature network)"),
                   ("mnist_ppl", "mnist_ppl_ci_low", "mnist_ppl_ci_high", "MNIST PPL (path length)"),
                   ("custom_ppl", "custom_ppl_ci_low", "custom_ppl_ci_high", "PPL (your feature network)"))
#: Shown only when computed (no "skipped" note): the copying test's C_T, with its 0 and flag lines.
COPYING_PANEL = ("copying_ct", "", "", "copying C_T (data-copying test)")


@dataclass
class PlotResult:
    """PNG bytes of the figure (None when no panel had data) and remarks for the caption."""

    png: bytes | None
    notes: list[str]
    #: The panels drawn (their value columns), for captions and tests.
    panels: list[str] = field(default_factory=list)


def column_floats(df: pd.DataFrame, col: str) -> np.ndarray:
    """``df[col]`` as floats (NaN where missing or not a number; all NaN when there is no such column)."""
    if col not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").astype(float).to_numpy()


def x_axis(df: pd.DataFrame) -> tuple[np.ndarray, str, list[str] | None]:
    """Iterations when every row has one, else the row order (single files have no iteration).

    Returns the x values, the axis label and, for row order, tick labels (checkpoint names).
    """
    it = column_floats(df, "iteration")
    if len(it) and np.isfinite(it).all():
        return it, "iteration", None
    names = [str(c) for c in df["checkpoint"]] if "checkpoint" in df else [str(i) for i in range(len(df))]
    return np.arange(len(df), dtype=float), "checkpoint (row order)", names


def last_scored(df: pd.DataFrame) -> int | None:
    """Row position of the checkpoint the report calls "last": the last one that is not an error (an unreadable
    newest file is passed over, as the verdict, summary.json's ``last`` and the illustrations do); None when none."""
    if "status" not in df:
        return len(df) - 1 if len(df) else None
    ok = np.flatnonzero((df["status"] != "error").to_numpy())
    return int(ok[-1]) if len(ok) else None


def unscored_newest(df: pd.DataFrame) -> str | None:
    """A caption line when the newest file could not be scored, naming it and the checkpoint judged as last instead."""
    last = last_scored(df)
    if last is None or last == len(df) - 1 or "checkpoint" not in df:
        return None
    return (f"the newest file {df['checkpoint'].iloc[-1]} could not be scored (see the error column); "
            f"\"last\" is {df['checkpoint'].iloc[last]}.")


def mpl_text(s: str, limit: int = 40) -> str:
    """Checkpoint names as plain matplotlib text: ``$`` would start mathtext; long names lose their middle (names of
    one run share a prefix and differ at the end)."""
    head = (limit - 1) // 2
    s = s if len(s) <= limit else s[:head] + "…" + s[len(s) - (limit - 1 - head):]
    return s.replace("$", r"\$")


def _panel(ax: object, df: pd.DataFrame, x: np.ndarray, col: str, lo_col: str, hi_col: str, label: str,
           notes: list[str], copying_threshold: float = -3.0, floor: dict[str, Any] | None = None) -> None:
    y, lo, hi = column_floats(df, col), column_floats(df, lo_col), column_floats(df, hi_col)
    names = [str(c) for c in df["checkpoint"]] if "checkpoint" in df else [str(i) for i in range(len(df))]
    order = np.argsort(x, kind="stable")
    fin = np.isfinite(y[order])
    xs, ys = x[order][fin], y[order][fin]
    band = np.isfinite(lo[order]) & np.isfinite(hi[order])
    if band.sum() == 1:  # one point: a band would have no width
        i = order[band][0]
        ax.vlines([x[i]], [lo[i]], [hi[i]], color="tab:blue", alpha=0.3, lw=8, label="bootstrap CI")
    elif band.any():
        ax.fill_between(x[order][band], lo[order][band], hi[order][band], color="tab:blue", alpha=0.2, lw=0,
                        label="bootstrap CI")
    ax.plot(xs, ys, "-o", color="tab:blue", ms=3, lw=1.2, label=label.split(" (")[0])
    level = (floor or {}).get(col)
    level = float(level) if isinstance(level, int | float) and not isinstance(level, bool) and np.isfinite(level) else None
    finite_vals = np.concatenate([ys, lo[np.isfinite(lo)], hi[np.isfinite(hi)], [level] if level is not None else []])
    positive = finite_vals[finite_vals > 0]
    spread = positive.size == finite_vals.size and positive.size > 1 and positive.max() / positive.min() > 20
    log = spread and not col.endswith("copying_ct")
    if log:
        ax.set_yscale("log")
    inf = np.isinf(y)
    if inf.any():
        top = (finite_vals.max() * (1.4 if log else 1.08)) if finite_vals.size else 1.0
        ax.scatter(x[inf], np.full(inf.sum(), top), marker="^", color="tab:red", s=40, zorder=5,
                   label="non-finite (NaN/Inf samples)")
        notes.append(f"{label.split(' (')[0]}: {int(inf.sum())} checkpoint(s) with non-finite values"
                     " drawn as red triangles at the top.")
    is_best = df["is_best"].fillna(False).astype(bool).to_numpy() if "is_best" in df else np.zeros(len(df), bool)
    best_idx = [i for i in np.flatnonzero(is_best) if np.isfinite(y[i])]
    if not best_idx and np.isfinite(y).any():
        best_idx = [int(np.nanargmin(np.where(np.isfinite(y), y, np.nan)))]
    if best_idx:
        i = best_idx[0]
        what = "best (rank 1)" if is_best[i] else "lowest"
        ax.scatter([x[i]], [y[i]], marker="*", s=160, color="tab:green", zorder=6, label=f"{what}: {mpl_text(names[i])}")
    last = last_scored(df)
    if last is not None and np.isfinite(y[last]):
        ax.scatter([x[last]], [y[last]], marker="s", s=50, facecolors="none", edgecolors="tab:orange", lw=2, zorder=6,
                   label=f"last: {mpl_text(names[last])}")
    elif last is not None:
        notes.append(f"{label.split(' (')[0]}: the last checkpoint has no finite value.")
    if level is not None and not col.endswith("copying_ct"):  # the copying panel has its held-out level already
        ax.axhline(level, ls=":", lw=1.5, color="tab:purple", label=f"real held-out, same N: {level:.3g}")
    if col.endswith("copying_ct"):
        for level, text, color in ((0.0, "held-out level", "tab:gray"), (copying_threshold, "flag: copying", "tab:red")):
            ax.axhline(level, ls="--", lw=1, color=color, alpha=0.7, label=text)
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)


def series_plot(df: pd.DataFrame, dpi: int = 90, copying_threshold: float = -3.0,
                floor: dict[str, Any] | None = None) -> PlotResult:
    """FID and MNIST FD over training with their CI bands, best and last marked, and the copying test's C_T when
    computed; one panel per metric with data; ``floor``: the real-data floor's values, drawn as a level.

    A panel is skipped when its column is missing or all NaN; rows with ±inf (NaN/Inf samples) are drawn as
    markers at the top instead of breaking the line or the axis limits.
    """
    from matplotlib.figure import Figure

    notes: list[str] = []
    panels = [p for p in PANELS if p[0] in df and (~np.isnan(column_floats(df, p[0]))).any()]
    # A column the run has but no checkpoint got (an Inception stage that failed) is worth a note; one that was never
    # asked for (no `fid` in --metrics, so no such column) is not.
    notes += [f"{p[0]}: not computed for any checkpoint, panel skipped." for p in PANELS if p not in panels and p[0] in df]
    panels += [p for p in OPTIONAL_PANELS if p[0] in df and (~np.isnan(column_floats(df, p[0]))).any()]
    ct = next((c for c in ("copying_ct", "inception_copying_ct") if c in df and (~np.isnan(column_floats(df, c))).any()), None)
    if ct is not None:
        panels.append((ct, "", "", COPYING_PANEL[3] if ct == "copying_ct" else "Inception C_T (data-copying test)"))
    if not panels or len(df) == 0:
        return PlotResult(None, notes)
    x, xlabel, ticks = x_axis(df)
    fig = Figure(figsize=(8, 2.9 * len(panels)), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (col, lo, hi, label) in zip(axes, panels, strict=True):
        _panel(ax, df, x, col, lo, hi, label, notes, copying_threshold, floor)
    notes += [n for n in [unscored_newest(df)] if n]
    return PlotResult(finish_figure(fig, axes[-1], x, xlabel, ticks, dpi), notes, [p[0] for p in panels])


def finish_figure(fig: Any, bottom: Any, x: np.ndarray, xlabel: str, ticks: list[str] | None, dpi: int) -> bytes:
    """Label the shared x axis (checkpoint names as ticks when there are no iterations) and render a palette PNG."""
    bottom.set_xlabel(xlabel)
    if ticks is not None:
        step = max(1, len(ticks) // 15)
        bottom.set_xticks(x[::step], [mpl_text(t, 18) for t in ticks[::step]], rotation=30, ha="right", fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return palette_png(buf.getvalue())


def palette_png(png: bytes, colors: int = 64) -> bytes:
    """Re-encode a matplotlib PNG with a 64-colour palette: a third of the size, no visible difference for line plots."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
