"""The report's second plot: fidelity and diversity over training (precision/recall, density/coverage, KID,
MNIST-IS, modes), the quantities that tell *how* a checkpoint is worse when one distance says only *that* it is.

A GAN that collapses late keeps its precision and loses recall and coverage; one that degrades in quality loses
precision and density. One panel per pair, each line with the real-data floor at the same N as a dotted level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ganeval.report.plots import PlotResult, column_floats, finish_figure, last_scored, mpl_text, x_axis

#: Two quantities read together: (fidelity column, diversity column, panel label, y limits or None).
PAIRS = (
    ("precision", "recall", "Inception precision / recall", (0.0, 1.02)),
    ("density", "coverage", "Inception density / coverage", None),
    ("mnist_precision", "mnist_recall", "MNIST precision / recall", (0.0, 1.02)),
    ("mnist_density", "mnist_coverage", "MNIST density / coverage", None),
)
#: One quantity with a band: (column, low/std columns, panel label). A "_std" band is ± 1 sd around the value.
BANDS = (
    ("kid_mean", ("kid_std",), "KID (Inception), ± 1 sd over subsets"),
    ("mnist_kid_mean", ("mnist_kid_std",), "KID (MNIST features), ± 1 sd"),
    ("mnist_is", ("mnist_is_std",), "MNIST-IS, ± 1 sd over splits"),
    ("modes_covered", ("modes_ci_low", "modes_ci_high"), "digits covered (modes), bootstrap CI"),
)


def _has(df: pd.DataFrame, col: str) -> bool:
    return col in df and bool(np.isfinite(column_floats(df, col)).any())


def _marks(ax: object, df: pd.DataFrame, x: np.ndarray, labelled: bool) -> None:
    """Vertical lines at the best (rank 1) and the last scored checkpoint, so each panel reads against the verdict (named in
    the first panel's legend only)."""
    names = [str(c) for c in df["checkpoint"]] if "checkpoint" in df else [str(i) for i in range(len(df))]
    best = np.flatnonzero(df["is_best"].fillna(False).astype(bool).to_numpy()) if "is_best" in df else []
    if len(best):
        ax.axvline(x[best[0]], color="tab:green", lw=1, alpha=0.6, label=f"best: {mpl_text(names[best[0]])}" if labelled else None)
    last = last_scored(df)  # not an unreadable newest file: the checkpoint the verdict judges as last
    if len(df) > 1 and last is not None:
        ax.axvline(x[last], color="tab:orange", lw=1, ls="--", alpha=0.6, label=f"last: {mpl_text(names[last])}" if labelled else None)


def _line(ax: object, x: np.ndarray, y: np.ndarray, order: np.ndarray, color: str, style: str, label: str,
          level: float | None) -> None:
    fin = np.isfinite(y[order])
    ax.plot(x[order][fin], y[order][fin], style, color=color, ms=3, lw=1.2, label=label)
    if level is not None:
        ax.axhline(level, ls=":", lw=1.3, color=color, alpha=0.8, label=f"{label}, real held-out: {level:.3g}")


def _level(floor: dict | None, col: str) -> float | None:
    v = (floor or {}).get(col)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) else None


def tradeoff_plot(df: pd.DataFrame, dpi: int = 90, floor: dict | None = None) -> PlotResult:
    """PNG of the fidelity/diversity panels that have data (None when none has, or with one row), and which were drawn.

    ``floor``: the real-data floor's values (``--real-floor``), drawn as dotted levels of the same colour.
    """
    from matplotlib.figure import Figure

    pairs = [p for p in PAIRS if _has(df, p[0]) or _has(df, p[1])]
    bands = [b for b in BANDS if _has(df, b[0])]
    drawn = [f"{p[0]}/{p[1]}" for p in pairs] + [b[0] for b in bands]
    if not drawn or len(df) < 2:  # "over training" needs two checkpoints; one's values are in the table
        return PlotResult(None, [], [])
    x, xlabel, ticks = x_axis(df)
    order = np.argsort(x, kind="stable")
    fig = Figure(figsize=(8, 2.4 * len(drawn)), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(drawn), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (fid_col, div_col, label, limits) in zip(axes, pairs, strict=False):
        _line(ax, x, column_floats(df, fid_col), order, "tab:blue", "-o", fid_col, _level(floor, fid_col))
        _line(ax, x, column_floats(df, div_col), order, "tab:red", "--s", div_col, _level(floor, div_col))
        if limits:
            ax.set_ylim(*limits)
        ax.set_ylabel(label, fontsize=8)
    for ax, (col, band, label) in zip(axes[len(pairs):], bands, strict=True):
        y = column_floats(df, col)
        lo, hi = ((y - column_floats(df, band[0]), y + column_floats(df, band[0])) if len(band) == 1
                  else (column_floats(df, band[0]), column_floats(df, band[1])))
        ok = np.isfinite(lo[order]) & np.isfinite(hi[order])
        if ok.any():
            ax.fill_between(x[order][ok], lo[order][ok], hi[order][ok], color="tab:blue", alpha=0.2, lw=0)
        _line(ax, x, y, order, "tab:blue", "-o", col, _level(floor, col))
        if col == "modes_covered":  # a count from 0 to all ten: a collapse reads as one, and the floor's 10 stays in view
            level = _level(floor, col)
            top = max(float(np.nanmax(np.concatenate([y, hi]))), level if level is not None else 0.0, 10.0)
            ax.set_ylim(0, top + 0.5)
        ax.set_ylabel(label, fontsize=8)
    for i, ax in enumerate(axes):
        _marks(ax, df, x, labelled=i == 0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    return PlotResult(finish_figure(fig, axes[-1], x, xlabel, ticks, dpi), [], drawn)
