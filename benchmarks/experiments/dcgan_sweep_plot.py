"""Plot MNIST-IS and MNIST FD over iterations for the session-3 DCGAN sweep (from the device run's score CSVs).

Usage: python benchmarks/experiments/dcgan_sweep_plot.py docs/results/gpu/session3 docs/img/dcgan_sweep_metrics.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def main(folder: Path, out: Path) -> None:
    fig, (ax_is, ax_fd) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    for csv in sorted(folder.glob("b*_scores.csv")):
        df = pd.read_csv(csv).sort_values("iteration")
        name = f"batch {csv.name.split('_')[0][1:]}"
        ax_is.plot(df["iteration"], df["mnist_is"], marker="o", ms=3, label=name)
        ax_fd.plot(df["iteration"], df["mnist_fd"], marker="o", ms=3, label=name)
        ax_fd.fill_between(df["iteration"], df["mnist_fd_ci_low"], df["mnist_fd_ci_high"], alpha=0.2)
    ax_is.axhline(9.5, ls="--", c="k", lw=1, label="target 9.5")
    ax_is.axhline(9.832, ls=":", c="g", lw=1, label="real test 9.83")
    ax_is.set(xlabel="iteration", ylabel="MNIST-IS (N = 10,000)")
    ax_fd.set(xlabel="iteration", ylabel="MNIST FD (95% CI band)", yscale="log")
    ax_is.legend(fontsize=8)
    ax_fd.legend(fontsize=8)
    ax_is.grid(alpha=0.3)
    ax_fd.grid(alpha=0.3)
    fig.suptitle("DCGAN on one H100, three batch sizes side by side, lr decays linearly over the second half", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    print("wrote", out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
