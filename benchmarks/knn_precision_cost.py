"""What exact k-NN balls cost: precision/recall and density/coverage of this checkout against older commits'
``ganeval/metrics/prc.py`` (default: 3698b33, float32 matrix-product distances; bb1a729, float64 ones with an exact
boundary recheck), on the same Gaussian features, one process, each version run in turn. Prints each time and the
values (which must be equal on such features).

    python benchmarks/knn_precision_cost.py [--old-commits 3698b33 bb1a729] [--sizes 10000x128 5000x2048 10000x2048]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganeval.metrics import prc as new  # noqa: E402


def _old_module(commit: str) -> object:
    """``prc.py`` as it was at ``commit``, imported under its own name."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:ganeval/metrics/prc.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "prc_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"prc_{commit}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-commits", nargs="+", default=["3698b33", "bb1a729"])
    parser.add_argument("--sizes", nargs="+", default=["10000x128", "5000x2048", "10000x2048"])
    args = parser.parse_args()
    versions = [(commit, _old_module(commit)) for commit in args.old_commits] + [("this checkout", new)]
    torch.manual_seed(0)
    for size in args.sizes:
        n, d = (int(v) for v in size.split("x"))
        gen, real = torch.randn(n, d), torch.randn(n, d) + 0.1
        for label, module in versions:
            for fn in ("precision_recall", "density_coverage"):
                t0 = time.perf_counter()
                values = getattr(module, fn)(gen, real)
                print(f"N={n} d={d} {label} {fn}: {time.perf_counter() - t0:.1f} s  {tuple(round(v, 5) for v in values)}",
                      flush=True)


if __name__ == "__main__":
    main()
