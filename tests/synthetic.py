"""Synthetic generators for scoring tests: a registered test-only model that draws real MNIST digits
from a bank (optionally one digit only, blurred by noise, or emitting NaN), saved as real checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganeval.checkpoints import checkpoint_name, save_checkpoint
from ganeval.data import load_mnist
from ganeval.models import MODELS, ModelSpec, register_model


class BankGenerator(nn.Module):
    """z → one of ``bank_size`` stored digits (picked by z[:, 0]) plus ``noise`` × a z-dependent pattern."""

    def __init__(self, latent_dim: int = 16, bank_size: int = 500, noise: float = 0.0, emit_nan: bool = False) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.noise = noise
        self.emit_nan = emit_nan
        self.register_buffer("bank", torch.zeros(bank_size, 1, 28, 28))
        self.register_buffer("proj", torch.randn(latent_dim, 784, generator=torch.Generator().manual_seed(0)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = self.bank.shape[0]
        idx = (torch.special.ndtr(z[:, 0]) * k).long().clamp(0, k - 1)
        img = self.bank[idx] + self.noise * torch.tanh(z @ self.proj).view(-1, 1, 28, 28)
        if self.emit_nan:
            img = img * float("nan")
        return img.clamp(-1, 1) if not self.emit_nan else img


class _D(nn.Module):
    def __init__(self, **_: object) -> None:
        super().__init__()


if "test-bank" not in MODELS:
    register_model(ModelSpec("test-bank", BankGenerator, _D, {"latent_dim": 16}))


def bank_images(digits: tuple[int, ...] | None = None, n: int = 500, split: str = "test") -> torch.Tensor:
    """``n`` real digits (only ``digits`` if given) scaled to [-1, 1]."""
    images, labels = load_mnist(split)
    keep = np.isin(labels, digits) if digits else np.ones(len(labels), bool)
    chosen = images[keep][:n]
    return torch.from_numpy(chosen.astype(np.float32) / 127.5 - 1).unsqueeze(1)


def write_bank_checkpoint(folder: Path, iteration: int, noise: float = 0.0, digits: tuple[int, ...] | None = None,
                          emit_nan: bool = False, bank_size: int = 500, latent_dim: int = 16) -> Path:
    """Save a ``test-bank`` checkpoint for ``iteration`` into ``folder``."""
    cfg = {"latent_dim": latent_dim, "bank_size": bank_size, "noise": noise, "emit_nan": emit_nan}
    gen = BankGenerator(**cfg)
    gen.bank.copy_(bank_images(digits, bank_size))
    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(folder / checkpoint_name(iteration), gen,
                           {"model": "test-bank", "config": cfg, "latent_dim": latent_dim, "iteration": iteration})
