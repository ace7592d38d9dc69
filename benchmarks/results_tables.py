"""Print Markdown tables of a ganeval report folder (used to write docs/results.md; numbers are copied, never typed).

Usage: python benchmarks/results_tables.py REPORT_DIR [REPORT_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

COLS = [("iteration", "iter"), ("fid", "FID"), ("fid_ci", "FID 95% CI"), ("is_mean", "IS"), ("kid_mean", "KID"),
        ("precision", "prec"), ("recall", "rec"), ("density", "dens"), ("coverage", "cov"), ("mnist_is", "MNIST-IS"),
        ("mnist_fd", "MNIST FD"), ("mnist_fd_ci", "MNIST FD 95% CI"), ("mnist_fd_inf", "MNIST FD∞"), ("modes_covered", "modes"),
        ("copying_ct", "C_T"), ("copy_share", "near-copy share"), ("copying_cells", "cells"), ("rank", "rank"), ("status", "status")]


def _cell(row: pd.Series, key: str) -> str:
    if key.endswith("_ci"):
        lo, hi = row.get(f"{key[:-3]}_ci_low"), row.get(f"{key[:-3]}_ci_high")
        return "—" if lo is None or pd.isna(lo) else f"[{lo:.2f}, {hi:.2f}]"
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        if math.isinf(v):
            return "∞"
        three = ("precision", "recall", "density", "coverage", "mnist_is", "is_mean", "mnist_fd_inf")
        if key == "copying_ct":
            return f"{v:+.2f}"
        if key in ("copy_share", "kid_mean"):
            return f"{v:.4f}" if key == "copy_share" else f"{v:.5f}"
        if key == "copying_cells":
            return f"{v:.0f}"
        return f"{v:.3f}" if key in three else f"{v:.2f}"
    return str(v)


def table(report: Path) -> str:
    """The Markdown table and verdict of one report folder."""
    df = pd.read_csv(report / "scores.csv")
    summary = json.loads((report / "summary.json").read_text())
    cols = [(k, h) for k, h in COLS if k in df or f"{k[:-3]}_ci_low" in df]
    cols = [(k, h) for k, h in cols if (df[f"{k[:-3]}_ci_low"] if k.endswith("_ci") else df[k]).notna().any()]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [_cell(row, k) for k, _ in cols]
        if row.get("is_best"):
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    prov = summary["provenance"]
    meta = ", ".join(f"{k}: weights {v['weights_sha256'][:12]}…, reference {v.get('reference')} (N={v.get('reference_n')})"
                     for k, v in prov.items())
    return "\n".join(lines) + f"\n\nVerdict: {summary['verdict']}\n\nN = {summary['n_samples']}, seed {summary['seed']}, " \
        f"precision {summary['precision']}, bootstrap {summary['bootstrap']['replicates']}; {meta}.\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT_DIR", help="ganeval report folders")
    for folder in parser.parse_args().reports:
        if not (folder / "scores.csv").is_file():
            parser.error(f"{folder}: no scores.csv (not a ganeval report folder)")
        print(f"### {folder}\n")
        print(table(folder))
