"""Is ``ganeval compare``'s interval honest? Its false-positive rate when two models are the same, and its
power when one is worse (by hand, not a test; the numbers are in docs/compare.md).

Null, stored samples: two disjoint sets of real MNIST training digits (independent resamples).
Null, generators: two "generators" that return digits from the same bank of 2,000 real training digits in two
different orders, so a latent picks a different digit in each but both have one distribution (paired
resamples). Two *different* banks would not be a null: each generator is then its own finite distribution, and
at N near the bank size the interval rightly tells them apart. Power: the second generator adds noise.
Every comparison goes through ``ganeval.compare`` on MNIST FD at the given N; "significant" is its verdict (the
permutation test, ``--permutations``, stopped sequentially at ``--sequential`` re-labellings as extreme), printed
beside how often the bootstrap interval alone excludes 0, with the mean number of re-labellings drawn.
``--variance``: why the interval is conservative near the floor. The bootstrap sd of one MNIST FD against its
true sampling sd (over 120 fresh draws from the same pool of real training digits), for all digits (FD at
its floor) and for digits 0–6 and 0–3 only (a model missing modes, FD well above the floor).

    python benchmarks/compare_calibration.py [--n 1000] [--pairs 100] [--bootstrap 100] [--sequential 10] [--json out.json]
    python benchmarks/compare_calibration.py --variance
    python benchmarks/compare_calibration.py --timing [--n 10000] [--sequential 10]

``--timing``: seconds of ``fd_difference_test`` (``--permutations`` re-labellings at most) on random 128-d features
of N rows, for two sets from one distribution (the null: an early stop) and for two clearly different ones (all
drawn), with the sequential stop and without it (``--sequential 0``).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn

from ganeval.comparing import compare
from ganeval.data import load_mnist


class Bank(nn.Module):
    """z → one of the bank's digits (chosen by z[:, 0]) plus ``noise`` × a fixed z-dependent pattern."""

    def __init__(self, images: np.ndarray, noise: float = 0.0, latent_dim: int = 16) -> None:
        super().__init__()
        self.latent_dim, self.noise = latent_dim, noise
        self.bank = torch.from_numpy(images.astype(np.float32) / 127.5 - 1).unsqueeze(1)
        self.proj = torch.randn(latent_dim, 784, generator=torch.Generator().manual_seed(0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = self.bank.shape[0]
        idx = (torch.special.ndtr(z[:, 0]) * k).long().clamp(0, k - 1)
        return (self.bank[idx] + self.noise * torch.tanh(z @ self.proj).view(-1, 1, 28, 28)).clamp(-1, 1)


TEST = {"permutations": 1000, "sequential": 10}  # compare's permutation test, set from the command line


def _run(a: object, b: object, n: int, bootstrap: int, seed: int) -> dict[str, float]:
    comp = compare({"a": a, "b": b}, num_samples=n, metrics=("mnist_fd",), bootstrap=bootstrap, seed=seed, device="cpu",
                   progress=False, **TEST)
    r = comp.differences.iloc[0]
    excludes = bool(r["ci_low"] > 0 or r["ci_high"] < 0)
    return {k: float(r[k]) for k in ("difference", "ci_low", "ci_high", "p_value", "relabellings")} | {
        "significant": bool(r["significant"]), "interval_excludes_0": excludes}


def _summary(name: str, rows: list[dict[str, float]]) -> dict[str, float]:
    k = sum(r["significant"] for r in rows)  # the verdict: the permutation test where compare runs one
    by_interval = sum(r.get("interval_excludes_0", r["significant"]) for r in rows)
    p = k / len(rows)
    half = 1.96 * math.sqrt(max(p * (1 - p), 1e-12) / len(rows))
    width = float(np.median([r["ci_high"] - r["ci_low"] for r in rows]))
    diffs = np.array([r["difference"] for r in rows])
    sd = float(diffs.std(ddof=1))
    # The width a 95 % interval needs, from the differences' real spread over the pairs: the ratio is how much
    # wider the bootstrap interval is than it has to be (null rows only: power rows mix pairs of unequal gaps).
    ratio = width / (2 * 1.96 * sd)
    drawn = float(np.mean([r.get("relabellings", math.nan) for r in rows]))
    print(f"{name:<44} significant {k:>3}/{len(rows)} = {p:.3f} (±{half:.3f}; interval excludes 0: {by_interval:>3})  "
          f"re-labellings drawn {drawn:.0f}  mean difference {diffs.mean():+.4f}  "
          f"sd over pairs {sd:.4f}  median CI width {width:.4f} ({ratio:.2f}x 3.92 sd)", flush=True)
    return {"significant": k, "interval_excludes_0": by_interval, "pairs": len(rows),
            "rate": p, "mean_relabellings": drawn, "mean_difference": float(diffs.mean()), "sd_difference": sd,
            "median_ci_width": width, "width_over_needed": ratio}


def variance_check(draws: int = 120, boot_draws: int = 25, replicates: int = 100) -> None:
    """Bootstrap sd of MNIST FD vs its sampling sd over fresh draws, at and away from the FD floor."""
    from ganeval.features import get_extractor
    from ganeval.metrics.fid import FIDReference, bootstrap_fid
    from ganeval.reference import dataset_features, reference_stats

    ex = get_extractor("mnist", device="cpu")
    feats = dataset_features("mnist-train", ex, 500).double().numpy()
    _, labels = load_mnist("train")
    st = reference_stats("mnist-train", ex)
    ref = FIDReference(st.mu, st.sigma)
    rng = np.random.default_rng(2)
    pools = {"all digits": np.arange(len(feats)), "digits 0-6": np.nonzero(labels < 7)[0], "digits 0-3": np.nonzero(labels < 4)[0]}
    for name, pool in pools.items():
        for n in (1000, 5000):
            fds, bsd = [], []
            for k in range(draws):
                x = feats[rng.choice(pool, n, replace=False)]
                fds.append(ref.fid(x.mean(0), np.cov(x, rowvar=False)))
                if k < boot_draws:
                    idx = [rng.integers(0, n, n) for _ in range(replicates)]
                    bsd.append(np.std(bootstrap_fid(torch.from_numpy(x).float(), ref, idx), ddof=1))
            true = float(np.std(fds, ddof=1))
            print(f"{name:<11} N={n}: MNIST FD {np.mean(fds):7.3f}  sampling sd {true:.4f}  bootstrap sd (median of "
                  f"{boot_draws}) {np.median(bsd):.4f}  ratio {np.median(bsd) / true:.2f}", flush=True)


def timing(n: int, permutations: int, sequential: int, d: int = 128) -> None:
    """The permutation test's cost at N = ``n`` on random d-dim features: null and clear difference, paired or not."""
    from ganeval.metrics.fid import FIDReference
    from ganeval.metrics.permutation import fd_difference_test

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4 * d, d, generator=g).double()
    ref = FIDReference(x.mean(0).numpy(), torch.cov(x.T).numpy())
    a, same, other = (torch.randn(n, d, generator=g) for _ in range(3))
    for case, b in (("null (same distribution)", same), ("clear difference (x 1.1)", other * 1.1)):
        for paired in (True, False):
            for h in dict.fromkeys((0, sequential)):
                t0 = time.perf_counter()
                r = fd_difference_test(a, b, ref, paired, permutations, sequential=h)
                print(f"N={n} d={d} {case:<25} {'paired  ' if paired else 'unpaired'} sequential={h:<3} "
                      f"{time.perf_counter() - t0:6.2f} s  p={r.p_value:.4g}  {r.describe()}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--power-pairs", type=int, default=30)
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--noise", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    ap.add_argument("--permutations", type=int, default=1000, help="compare's --permutations (0: the interval decides)")
    ap.add_argument("--sequential", type=int, default=10, help="compare's --sequential (0: all re-labellings drawn)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-stored", action="store_true", help="skip the stored-samples null")
    ap.add_argument("--variance", action="store_true", help="only the bootstrap-sd vs sampling-sd check")
    ap.add_argument("--timing", action="store_true", help="only the permutation test's cost at N = --n")
    args = ap.parse_args()
    if args.timing:
        timing(args.n, args.permutations, args.sequential)
        return
    if args.variance:
        variance_check()
        return
    TEST.update(permutations=args.permutations, sequential=args.sequential)
    images, _ = load_mnist("train")
    rng = np.random.default_rng(0)
    t0 = time.time()
    out: dict[str, object] = {"n": args.n, "bootstrap": args.bootstrap, **TEST}
    rows = []
    for _ in range(0 if args.skip_stored else args.pairs):
        idx = rng.permutation(len(images))[: 2 * args.n]
        rows.append(_run(images[idx[: args.n]], images[idx[args.n:]], args.n, args.bootstrap, 0))
    if rows:
        out["null_stored_samples"] = _summary("null: disjoint real digit sets (unpaired)", rows)
    rows = []
    for i in range(args.pairs):
        idx = rng.permutation(len(images))[:2000]
        rows.append(_run(Bank(images[idx]), Bank(images[rng.permutation(idx)]), args.n, args.bootstrap, i))
    out["null_generators"] = _summary("null: one bank in two orders (paired)", rows)
    for noise in args.noise:
        rows = []
        for i in range(args.power_pairs):
            idx = rng.permutation(len(images))[:2000]
            rows.append(_run(Bank(images[idx]), Bank(images[rng.permutation(idx)], noise), args.n, args.bootstrap, i))
        out[f"power_noise_{noise}"] = _summary(f"power: second order + noise {noise}", rows)
    out["seconds"] = round(time.time() - t0, 1)
    print(f"{out['seconds']} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
