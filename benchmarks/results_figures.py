"""Write the figures of docs/results.md from a report folder: metric-over-iterations plot and sample grids
of the best and the last checkpoint (first 30 latents of the shared set, as in the report).

Usage: python benchmarks/results_figures.py REPORT_DIR OUT_PREFIX
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from ganeval.checkpoints import load_generator
from ganeval.report.images import mosaic, png_bytes
from ganeval.report.plots import series_plot
from ganeval.sampling import latents, to_uint8


def grid_png(path: str, seed: int, n: int) -> bytes:
    """3×10 grid of a checkpoint's samples for the first 30 rows of the shared latent set."""
    gen, meta = load_generator(path)
    z = latents(n, int(meta["latent_dim"]), seed, 0, 30)
    with torch.inference_mode():
        images = to_uint8(gen(z))[:, 0].numpy()
    return png_bytes(mosaic(images, scale=2))


def main(report: Path, prefix: Path) -> None:
    df = pd.read_csv(report / "scores.csv")
    summary = json.loads((report / "summary.json").read_text())
    prefix.parent.mkdir(parents=True, exist_ok=True)
    plot = series_plot(df)
    if plot.png:
        Path(f"{prefix}_metrics.png").write_bytes(plot.png)
    for which in ("best", "last"):
        row = summary.get(which)
        if row and row.get("path"):
            Path(f"{prefix}_{which}.png").write_bytes(grid_png(row["path"], summary["seed"], summary["n_samples"]))
    print("wrote", sorted(str(p) for p in prefix.parent.glob(prefix.name + "_*.png")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, metavar="REPORT_DIR", help="a ganeval report folder")
    parser.add_argument("prefix", type=Path, metavar="OUT_PREFIX", help="figures go to OUT_PREFIX_metrics.png, _best.png, _last.png")
    args = parser.parse_args()
    if not (args.report / "scores.csv").is_file():
        parser.error(f"{args.report}: no scores.csv (not a ganeval report folder)")
    main(args.report, args.prefix)
