"""Your own feature network, checked end to end on real data: ganeval's MNIST classifier behind the
``--feature-network`` contract must reproduce the MNIST metrics exactly (statistics of all 60,000 training
digits, then MNIST FD / IS of real checkpoints at N = 10,000), and the run shows what the custom path costs.

    python benchmarks/custom_network_parity.py CKPT [CKPT ...] [--num-samples 10000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import ganeval
from ganeval.features.custom import CustomExtractor
from ganeval.stats import SHIPPED_DIR, compute_stats, load_stats, save_stats

#: ganeval's MNIST classifier behind the --feature-network contract.
NETWORK = f"{Path(__file__).resolve().parent.parent / 'examples' / 'mnist_feature_network.py'}:MnistAsCustom"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpts", nargs="+", type=Path)
    ap.add_argument("--num-samples", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=None, help="write results.json here")
    args = ap.parse_args()
    ref = Path(tempfile.mkdtemp(prefix="custom_ref_"))
    for suffix in (".npz", ".json"):
        shutil.copy(SHIPPED_DIR / f"mnist-train_mnist{suffix}", ref / f"mnist-train_mnist{suffix}")
    t0 = time.perf_counter()
    stats = compute_stats("mnist-train", CustomExtractor(NETWORK, device="cpu"), batch_size=500, progress=False)
    stats_s = time.perf_counter() - t0
    save_stats(ref / "mnist-train_custom.npz", stats)
    shipped = load_stats(ref / "mnist-train_mnist.npz")
    out = {"stats_seconds_60k": round(stats_s, 1), "mu_max_abs_diff": float(np.abs(stats.mu - shipped.mu).max()),
           "sigma_max_abs_diff": float(np.abs(stats.sigma - shipped.sigma).max()), "checkpoints": []}
    print(f"statistics of 60,000 digits through the custom path: {stats_s:.1f} s; |Δmu| ≤ {out['mu_max_abs_diff']:.2e}, "
          f"|Δsigma| ≤ {out['sigma_max_abs_diff']:.2e} against the shipped mnist statistics")
    metrics = ("mnist_fd", "mnist_is", "custom_fd", "custom_is")
    for ckpt in args.ckpts:
        timings = {}
        for name in ("mnist_fd", "custom_fd"):  # each alone, cold cache, for the cost of the custom path
            t0 = time.perf_counter()
            network = {"feature_network": NETWORK} if name == "custom_fd" else {}  # refused where no metric reads it
            ganeval.score(ckpt, metrics=(name,), reference=str(ref), num_samples=args.num_samples, bootstrap=100,
                          device="cpu", progress=False, use_cache=False, **network)
            timings[name] = round(time.perf_counter() - t0, 2)
        row = ganeval.score(ckpt, metrics=metrics, reference=str(ref), feature_network=NETWORK,
                            num_samples=args.num_samples, bootstrap=100, device="cpu", progress=False).iloc[0]
        got = {k: float(row[k]) for k in ("mnist_fd", "custom_fd", "mnist_fd_ci_low", "custom_fd_ci_low", "mnist_fd_ci_high",
                                           "custom_fd_ci_high", "mnist_is", "custom_is")}
        got.update(checkpoint=str(ckpt), seconds=timings,
                   fd_rel_diff=abs(got["custom_fd"] - got["mnist_fd"]) / got["mnist_fd"],
                   is_rel_diff=abs(got["custom_is"] - got["mnist_is"]) / got["mnist_is"])
        out["checkpoints"].append(got)
        print(f"{ckpt}: MNIST FD {got['mnist_fd']:.6f} [{got['mnist_fd_ci_low']:.4f}, {got['mnist_fd_ci_high']:.4f}] vs custom_fd "
              f"{got['custom_fd']:.6f} [{got['custom_fd_ci_low']:.4f}, {got['custom_fd_ci_high']:.4f}] "
              f"(relative {got['fd_rel_diff']:.1e}); "
              f"MNIST IS {got['mnist_is']:.5f} vs {got['custom_is']:.5f}; seconds (cold, N={args.num_samples}, 100 bootstrap): "
              f"mnist_fd {timings['mnist_fd']}, custom_fd {timings['custom_fd']}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
