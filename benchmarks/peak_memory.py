"""Peak resident memory of ``ganeval.score`` against N, one fresh process per N (docs/scoring.md, "Measured on MNIST").

Each process scores a fixed random-linear generator once at N = 200 (libraries, weights and reference statistics
loaded), resets the kernel's peak-RSS mark, scores it at N, and reports how far the peak grew over that run. The
slope between the Ns is the memory each further sample costs, to set against what ``ganeval.memory`` counts
(``per_sample_bytes``). Linux only (``/proc/self/clear_refs``, ``VmHWM``).

    python benchmarks/peak_memory.py --metric mnist_fd 16000 64000 128000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

Z = 16

CHILD = """
import json, sys, time
import torch
import ganeval

n, metric, threads, z = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
w = torch.randn(z, 28 * 28, generator=torch.Generator().manual_seed(5))


def gen(latent):
    return torch.tanh(latent @ w).view(-1, 1, 28, 28)


def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":"))


opts = dict(z_dim=z, metrics=[metric], bootstrap=0, device="cpu", batch_size=100, use_cache=False, threads=threads,
            progress=False)
ganeval.score(gen, num_samples=200, **opts)  # warm-up: everything loaded before the measured run
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # the peak mark (VmHWM) back to the present RSS
before, t = status("VmRSS"), time.time()
df = ganeval.score(gen, num_samples=n, **opts)
print(json.dumps({"n": n, "growth_kb": status("VmHWM") - before, "seconds": round(time.time() - t, 1),
                  "values": {k: float(v) for k, v in df.filter(like="fd").iloc[0].items()}}))
"""


def measure(n: int, metric: str, threads: int) -> dict:
    """One fresh process's peak-RSS growth (KiB) while scoring N samples."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), metric, str(threads), str(Z)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ns", nargs="+", type=int, help="sample counts, one process each")
    p.add_argument("--metric", default="mnist_fd")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    rows = [measure(n, args.metric, args.threads) for n in sorted(args.ns)]
    for r in rows:
        print(f"N={r['n']:>8,}  peak grew {r['growth_kb'] / 1024:8.1f} MiB  ({r['seconds']} s)  {r['values']}")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"slope {a['n']:,} → {b['n']:,}: {(b['growth_kb'] - a['growth_kb']) * 1.024 / (b['n'] - a['n']):.2f} KB per sample")


if __name__ == "__main__":
    main()
