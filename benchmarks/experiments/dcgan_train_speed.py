"""DCGAN training iterations/s on this machine (hinge step of the trainer), fp32 or bf16 autocast.

Usage: python benchmarks/experiments/dcgan_train_speed.py BATCH fp32|bf16 [channels_last]
"""

from __future__ import annotations

import sys
import time

import torch

from ganeval.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganeval.train.losses import hinge_step


def main() -> None:
    bs, amp, cl = int(sys.argv[1]), sys.argv[2] == "bf16", len(sys.argv) > 3
    g, d = DCGANGenerator(), DCGANDiscriminator()
    if cl:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    x = torch.randn(bs, 1, 28, 28).clamp(-1, 1)
    t = time.time()
    for i in range(13):
        if i == 3:  # 3 warm-up iterations
            t = time.time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            hinge_step(g, d, og, od, lambda: x, lambda: torch.randn(bs, 128))
    dt = (time.time() - t) / 10
    print(f"batch {bs} {sys.argv[2:]}: {1 / dt:.2f} it/s, {bs / dt:.0f} img/s")


if __name__ == "__main__":
    main()
