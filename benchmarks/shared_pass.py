"""FID and sFID in one Inception pass: ``score --metrics fid,sfid`` against scoring each alone, same checkpoint and N.

sFID's layer (Mixed_6d's 1×1 branch) lies on the full network's way to the pool features, so scoring both reads it
off the FID pass instead of running the network a second time as far as Mixed_6d. This times, with cold caches
(``use_cache=False``) and alternating order per round, ``score(metrics=("fid", "sfid"))`` against
``score(metrics=("fid",))`` + ``score(metrics=("sfid",))``, and checks both give the same FID and sFID.

    python benchmarks/shared_pass.py --checkpoint ganeval/pretrained/dcgan_info/ckpt_0010000.safetensors --n 500
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


def _timed(checkpoint: str, metrics: tuple[str, ...], n: int, device: str, precision: str) -> tuple[float, dict[str, float]]:
    import ganeval

    t0 = time.perf_counter()
    df = ganeval.score(checkpoint, metrics=metrics, num_samples=n, bootstrap=0, device=device, precision=precision,
                       progress=False, use_cache=False)
    return time.perf_counter() - t0, {m: float(df.iloc[0][m]) for m in metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="ganeval/pretrained/dcgan_info/ckpt_0010000.safetensors")
    parser.add_argument("--n", type=int, default=500, help="samples (default 500)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, order alternating (default 2); medians reported")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "tf32"))
    args = parser.parse_args()

    import torch

    _timed(args.checkpoint, ("fid", "sfid"), 16, args.device, args.precision)  # warm-up: weights, packing, statistics
    together, apart, fid_alone, values = [], [], [], []
    for r in range(args.rounds):
        order = ("together", "apart") if r % 2 == 0 else ("apart", "together")
        for what in order:
            if what == "together":
                secs, got = _timed(args.checkpoint, ("fid", "sfid"), args.n, args.device, args.precision)
                together.append(secs)
                values.append(("together", got))
            else:
                s1, fid = _timed(args.checkpoint, ("fid",), args.n, args.device, args.precision)
                s2, sfid = _timed(args.checkpoint, ("sfid",), args.n, args.device, args.precision)
                apart.append(s1 + s2)
                fid_alone.append(s1)
                values.append(("apart", fid | sfid))
    t, a = statistics.median(together), statistics.median(apart)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.checkpoint}, N={args.n}, {args.device} {args.precision}, "
          f"{args.rounds} round(s)")
    print(f"fid and sfid together: {t:.1f} s (median of {', '.join(f'{x:.1f}' for x in together)})")
    print(f"fid, then sfid apart:  {a:.1f} s (median of {', '.join(f'{x:.1f}' for x in apart)})")
    f = statistics.median(fid_alone)
    print(f"fid alone:             {f:.1f} s (median of {', '.join(f'{x:.1f}' for x in fid_alone)}): sfid adds "
          f"{t - f:.1f} s to it together, {a - f:.1f} s apart")
    print(f"ratio apart/together: {a / t:.2f}x")
    for metric in ("fid", "sfid"):
        seen = [v[metric] for _, v in values]
        print(f"{metric}: {seen[0]:.6f}, max |Δ| over all runs {max(abs(x - seen[0]) for x in seen):.2e}")


if __name__ == "__main__":
    main()
