"""A plain PyTorch GAN trainer that knows nothing of ganeval, evaluated by it from outside.

It saves ``G_<iteration>.pt`` and ``D_<iteration>.pt`` state dicts, as most trainers do, and stops when a stop
file appears. In another terminal, ``ganeval watch`` judges each generator file as it lands and raises the stop
file when training has gone bad (docs/training.md#watching-a-run):

    python examples/own_trainer.py --out runs/own --stop-file runs/own.STOP &
    ganeval watch runs/own --generator examples/own_trainer.py:Generator --pattern 'G_*.pt' --stop-file runs/own.STOP
    ganeval score runs/own/G_*.pt --generator examples/own_trainer.py:Generator     # afterwards: rank them all
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn


class Generator(nn.Module):
    """z (``nz``) → 1×28×28 image in [-1, 1]; ``nz`` is how ganeval learns the latent size."""

    def __init__(self, nz: int = 64, width: int = 256) -> None:
        super().__init__()
        self.nz = nz
        self.net = nn.Sequential(nn.Linear(nz, width), nn.LeakyReLU(0.2), nn.Linear(width, 2 * width), nn.LeakyReLU(0.2),
                                 nn.Linear(2 * width, 784), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def real_digits() -> torch.Tensor:
    """MNIST-train as floats in [-1, 1] (torchvision's ``datasets.MNIST`` would do the same)."""
    from ganeval.data import load_mnist

    images = torch.tensor(load_mnist("train")[0], dtype=torch.float32)
    return (images / 127.5 - 1).unsqueeze(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="a plain MLP GAN on MNIST, saving G_*.pt / D_*.pt")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--stop-file", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    data = real_digits()
    g, d = Generator(), Discriminator()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(args.batch_size, 1), torch.zeros(args.batch_size, 1)
    for it in range(1, args.iterations + 1):
        real = data[torch.randint(0, len(data), (args.batch_size,))]
        fake = g(torch.randn(args.batch_size, g.nz))
        loss_d = bce(d(real), ones) + bce(d(fake.detach()), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(d(fake), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if it % args.save_every == 0:
            for name, net in (("G", g), ("D", d)):
                tmp = args.out / f".{name}_{it:06d}.pt.tmp"
                torch.save(net.state_dict(), tmp)
                tmp.rename(args.out / f"{name}_{it:06d}.pt")  # whole files only: a watcher never reads half of one
            if args.stop_file is not None and args.stop_file.exists():
                print(f"stop file {args.stop_file} found: stopping at iteration {it}")
                return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
