"""The per-checkpoint table of ``report.html`` and ``compare.html``: which columns exist, and how each cell reads."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from typing import Any

import numpy as np
import pandas as pd

DASH, INF = "—", "∞"


def number(x: Any) -> float | None:
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
    f = number(x)
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
    f = number(x)
    return fmt(x, ".3g") if f is not None and math.isfinite(f) and abs(f) < 1 else fmt(x, ".2f")


def _modes_ci(row: pd.Series) -> str:
    lo, hi = number(row.get("modes_ci_low")), number(row.get("modes_ci_high"))
    return "" if lo is None or hi is None or lo == hi else f" <span class=muted>[{fmt(lo, 'int')}, {fmt(hi, 'int')}]</span>"


def _with_ci(row: pd.Series, col: str, show: Callable[[Any], str] = _fmt_fd) -> str:
    val = show(row.get(col))
    lo, hi = number(row.get(f"{col}_ci_low")), number(row.get(f"{col}_ci_high"))
    if lo is None or hi is None:
        return val
    return f"{val} <span class=muted>[{show(lo)}, {show(hi)}]</span>"


def _pm(row: pd.Series, mean: str, std: str, spec: str) -> str:
    m = fmt(row.get(mean), spec)
    return m if number(row.get(std)) is None or m == DASH else f"{m} ± {fmt(row.get(std), spec)}"


def _ci_or_pm(row: pd.Series, col: str) -> str:
    """``value [low, high]`` where a bootstrap interval exists, else ``value ± std`` (column ``COL_std``)."""
    if number(row.get(f"{col}_ci_low")) is not None and number(row.get(f"{col}_ci_high")) is not None:
        return _with_ci(row, col, lambda x: fmt(x, "sig4"))
    return _pm(row, col, f"{col}_std", "sig4")


def _pair(row: pd.Series, a: str, b: str) -> str:
    """Two 3-decimal values of one metric, ``0.812 / 0.774``."""
    return f"{fmt(row.get(a), '.3f')} / {fmt(row.get(b), '.3f')}"


def _share(row: pd.Series, col: str) -> str:
    value = number(row.get(col))
    return "" if value is None else f" [{100 * value:.1f}%]"


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
    ("sFID [CI]", "spatial FID (mixed_6/conv features), bootstrap CI", ("sfid",), lambda r: _with_ci(r, "sfid"), True),
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
    ("MNIST KID", "KID in MNIST-classifier features ± std over subsets", ("mnist_kid_mean",),
     lambda r: _pm(r, "mnist_kid_mean", "mnist_kid_std", "sig4"), True),
    ("MNIST P / R", "improved precision and recall in MNIST-classifier features", ("mnist_precision",),
     lambda r: _pair(r, "mnist_precision", "mnist_recall"), True),
    ("MNIST D / C", "density and coverage in MNIST-classifier features", ("mnist_density",),
     lambda r: _pair(r, "mnist_density", "mnist_coverage"), True),
    ("FD (net) [CI]", "Fréchet distance in your feature network's space, bootstrap CI", ("custom_fd",),
     lambda r: _with_ci(r, "custom_fd"), True),
    ("IS (net)", "Inception Score from your network's logits", ("custom_is",), lambda r: _pm(r, "custom_is", "custom_is_std", ".2f"), True),
    ("KID (net)", "KID in your network's features ± std", ("custom_kid_mean",),
     lambda r: _pm(r, "custom_kid_mean", "custom_kid_std", "sig4"), True),
    ("P / R (net)", "precision and recall in your network's features", ("custom_precision",),
     lambda r: _pair(r, "custom_precision", "custom_recall"), True),
    ("D / C (net)", "density and coverage in your network's features", ("custom_density",),
     lambda r: _pair(r, "custom_density", "custom_coverage"), True),
    ("realism", "median realism score R of the samples (Inception features; R ≥ 1: inside the real manifold) "
     "[share with R < 1]", ("realism",), lambda r: fmt(r.get("realism"), ".2f") + _share(r, "unrealistic_share"), True),
    ("MNIST realism", "median realism score R in MNIST-classifier features [share with R < 1]", ("mnist_realism",),
     lambda r: fmt(r.get("mnist_realism"), ".2f") + _share(r, "mnist_unrealistic_share"), True),
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
    ("MNIST PPL", "perceptual path length in MNIST-classifier features (torch-fidelity's definition): how far samples "
     "move for a latent step of 1e-4; bootstrap CI over pairs with --bootstrap, else ± std over pairs", ("mnist_ppl",),
     lambda r: _ci_or_pm(r, "mnist_ppl"), True),
    ("PPL (net)", "perceptual path length in your network's features: bootstrap CI, else ± std over pairs", ("custom_ppl",),
     lambda r: _ci_or_pm(r, "custom_ppl"), True),
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


def floor_row(floor: dict[str, Any]) -> pd.Series:
    """The real-data floor (summary ``real_floor``) as a table row: its metrics, no rank, no flags."""
    return pd.Series({**floor.get("values", {}), "checkpoint": floor.get("name"), "n_samples": floor.get("n"),
                      "status": floor.get("status") if floor.get("status") != "ok" else "real floor (not ranked)",
                      "error": floor.get("error"), "seconds": floor.get("seconds")})


def render_table(df: pd.DataFrame, floor: dict[str, Any] | None = None) -> str:
    """The per-checkpoint table (only the documented columns that exist); best, error and NaN rows are styled.
    ``floor``: the held-out real images' row, shown last and apart (``--real-floor``)."""
    cols = [c for c in TABLE if all(k in df for k in c[2])]
    head = "".join(f'<th title="{escape(tip)}">{escape(name)}</th>' for name, tip, _, _, _ in cols)
    body = []
    tds = ["<td class=n>" if num else "<td class=err>" if name == "error" else "<td>" for name, _, _, _, num in cols]
    for _, row in df.iterrows():
        cls = _row_class(row)
        cells = "".join(f"{td}{render(row)}</td>" for td, (_, _, _, render, _) in zip(tds, cols, strict=True))
        body.append(f"<tr class={cls}>{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    if floor:
        row = floor_row(floor)
        body.append("<tr class=floor>" + "".join(f"{td}{render(row)}</td>" for td, (_, _, _, render, _) in zip(tds, cols, strict=True))
                    + "</tr>")
    return (f'<div class=scroll><table id=scores><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')
