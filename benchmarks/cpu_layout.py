"""Images/s on the CPU of the two convolution nets every MNIST score runs, channels_last (as shipped) against the
default contiguous layout, in one run on the same inputs: the ``mnist`` extractor (the MNIST classifier behind every
``mnist_*`` metric; fp32 and bf16) on MNIST test digits, and the shipped DCGAN's sampling (fp32, as ``ganeval score``
samples a checkpoint); with the largest difference the layout makes to features, to samples, and to the uint8
pixels scored (bf16: each layout's relative distance from the fp32 default-layout features).

    python benchmarks/cpu_layout.py --n 4096 --batch-sizes 64 100 256 500 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganeval.checkpoints import load_generator
from ganeval.features.mnist_classifier import MNISTClassifierExtractor
from ganeval.sources.base import convert_output
from ganeval.stats import dataset_images

CKPT = Path(__file__).resolve().parents[1] / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def _extractor(layout: torch.memory_format, precision: str) -> MNISTClassifierExtractor:
    ex = MNISTClassifierExtractor(device="cpu", precision=precision)
    ex.memory_format, ex.net = layout, ex.net.to(memory_format=layout)
    return ex


def _timed(fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, batch_size: int) -> tuple[float, torch.Tensor]:
    """Seconds of one pass of ``fn`` over ``inputs`` in batches, and its outputs."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = torch.cat([fn(b) for b in inputs.split(batch_size)])
    return time.perf_counter() - t0, out


def _compare(fns: dict[str, Callable[[torch.Tensor], torch.Tensor]], inputs: torch.Tensor, batch_size: int,
             rounds: int) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Best seconds of each of ``fns`` over ``rounds`` alternating passes, and each one's outputs."""
    best, outs = dict.fromkeys(fns, float("inf")), {}
    for fn in fns.values():
        _timed(fn, inputs[:batch_size], batch_size)  # warm-up
    for _ in range(rounds):
        for name, fn in fns.items():
            seconds, outs[name] = _timed(fn, inputs, batch_size)
            best[name] = min(best[name], seconds)
    return best, outs


def _row(best: dict[str, float], outs: dict[str, torch.Tensor], n: int) -> dict[str, float]:
    return {**{f"{name}_img_s": round(n / s) for name, s in best.items()},
            "ratio": round(best["contiguous"] / best["channels_last"], 2),
            "max_abs_diff": float((outs["contiguous"] - outs["channels_last"]).abs().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="images per pass (default 4096)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 100, 256, 500])
    parser.add_argument("--rounds", type=int, default=3, help="passes of each, alternating; the best counts (default 3)")
    args = parser.parse_args()

    images = torch.from_numpy(np.array(dataset_images("mnist-test")[: args.n]))[:, None]
    reference = _timed(lambda b: _extractor(torch.contiguous_format, "fp32")(b)["pool"], images, 256)[1]
    out: dict[str, object] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                              "threads": torch.get_num_threads(), "n": len(images)}
    for precision in ("fp32", "bf16"):
        try:
            extractors = {name: _extractor(layout, precision) for name, layout in LAYOUTS.items()}
        except Exception as exc:  # noqa: BLE001 - bf16 needs a CPU that has it: say so and go on
            out[f"mnist extractor {precision}"] = f"unavailable: {exc}"
            continue
        fns = {name: (lambda b, ex=ex: ex(b)["pool"]) for name, ex in extractors.items()}
        for bs in args.batch_sizes:
            best, pools = _compare(fns, images, bs, args.rounds)
            row = _row(best, pools, len(images))
            if precision == "bf16":
                row.update({f"{name}_rel_dev_vs_fp32": float((p - reference).norm() / reference.norm())
                            for name, p in pools.items()})
            out[f"mnist extractor {precision}, batch {bs}"] = row

    gens = {name: load_generator(CKPT)[0].to(memory_format=layout) for name, layout in LAYOUTS.items()}
    z = torch.randn(args.n, gens["contiguous"].latent_dim, generator=torch.Generator().manual_seed(0))
    for bs in args.batch_sizes:
        best, samples = _compare(gens, z, bs, args.rounds)
        pixels = {name: convert_output(s, "-1,1", "samples")[0] for name, s in samples.items()}  # as scored
        out[f"dcgan_info sampling fp32, batch {bs}"] = {
            **_row(best, samples, len(z)),
            "uint8_pixels_differing": int((pixels["contiguous"] != pixels["channels_last"]).sum()),
            "uint8_pixels": int(pixels["contiguous"].numel())}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
