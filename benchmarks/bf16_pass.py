"""The Inception pass in fp32 and in bf16 on this CPU: images/s of each (median of ``--repeats`` after a warm-up
that pre-packs the weights), the speed-up, and how far the bf16 features are from the fp32 ones.

    python benchmarks/bf16_pass.py [--images 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ganeval.data import load_mnist  # noqa: E402
from ganeval.features import get_extractor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="MNIST test digits per pass (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per precision (default 3)")
    args = parser.parse_args()
    images = torch.from_numpy(load_mnist("test")[0][: args.images].copy()).unsqueeze(1).contiguous()
    rate, feats = {}, {}
    for precision in ("fp32", "bf16"):
        ex = get_extractor("inception", device="cpu", precision=precision)
        ex(images[:8])
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            feats[precision] = ex(images)["pool"].float()
            times.append(time.perf_counter() - t0)
        rate[precision] = len(images) / statistics.median(times)
    diff = (feats["bf16"] - feats["fp32"]).abs()
    print(json.dumps({"images_per_s": rate, "speed_up": rate["bf16"] / rate["fp32"], "max_abs_diff": float(diff.max()),
                      "mean_abs_diff": float(diff.mean()), "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
