"""Where would ``ganeval train --early-stop`` have stopped an existing run? Feeds the run's checkpoints to the
stopper in training order, exactly as training would (by hand, not a test; numbers in docs/training.md).

    python benchmarks/early_stop_replay.py runs/mlp_seed0_long [--patience 3] [--threshold 0.1] [--samples 2000] [--sequential 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ganeval.checkpoints import list_checkpoints
from ganeval.early_stop import EarlyStopper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--metric", default="mnist_fd")
    ap.add_argument("--sequential", type=int, default=10, help="stop the permutation test at H extreme (0: all drawn)")
    args = ap.parse_args()
    stopper = EarlyStopper(args.metric, args.patience, args.threshold, args.samples, device="cpu", sequential=args.sequential)
    t0 = time.time()
    stopped_at = None
    for ref in list_checkpoints(args.run):
        stop = stopper.observe(ref.path, ref.iteration)
        h = stopper.history[-1]
        ci = f"[{h['ci_low']:+.3g}, {h['ci_high']:+.3g}]" if "ci_low" in h else ""
        print(f"{ref.iteration:>6}  {args.metric} {h['value']:8.4g}  vs best {h.get('best_value', h['value']):8.4g}  "
              f"diff {h.get('difference', 0):+8.3g} {ci:<22} {h['verdict']:<25} worse in a row {h['worse_in_a_row']}"
              + (f"  p {h['p_value']:.3g} ({h['relabellings']:.0f} re-labellings)" if h.get("relabellings", 0) > 0 else ""),
              flush=True)
        if "confirmed" in h:
            print(f"        on fresh latents (seed 1): diff {h['confirm_difference']:+.3g} "
                  f"[{h['confirm_ci_low']:+.3g}, {h['confirm_ci_high']:+.3g}]: {'confirmed' if h['confirmed'] else 'not confirmed'}",
                  flush=True)
        if stop:
            stopped_at = ref.iteration
            break
    print(f"{args.run}: {'stopped at ' + str(stopped_at) if stopped_at else 'no stop'}; best {stopper.best.name} "
          f"({stopper.best_value:.4g}); {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
