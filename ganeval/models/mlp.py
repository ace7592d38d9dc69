"""The seed's MLP GAN (Keras tutorial), ported faithfully to PyTorch.

Keras ``BatchNormalization(momentum=0.8)`` keeps 0.8 of the old running statistic, which is
PyTorch ``momentum=0.2``; Keras ``epsilon`` defaults to 1e-3. Dense layers use Keras' default
glorot-uniform weights and zero biases.
"""

from __future__ import annotations

import torch
from torch import nn


def _dense(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MLPGenerator(nn.Module):
    """latent 100 → 256 → 512 → 1024 → 784 (tanh), LeakyReLU(0.2) then BatchNorm after each hidden layer."""

    def __init__(
        self, latent_dim: int = 100, hidden: tuple[int, ...] = (256, 512, 1024), img_shape: tuple[int, ...] = (1, 28, 28)
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.img_shape = tuple(img_shape)
        layers: list[nn.Module] = []
        n_in = latent_dim
        for width in hidden:
            layers += [_dense(n_in, width), nn.LeakyReLU(0.2), nn.BatchNorm1d(width, momentum=0.2, eps=1e-3)]
            n_in = width
        n_out = 1
        for s in self.img_shape:
            n_out *= s
        layers += [_dense(n_in, n_out), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.img_shape)


class MLPDiscriminator(nn.Module):
    """784 → 512 → 256 → 1; returns logits (the sigmoid lives in the loss, for numerical stability)."""

    def __init__(self, hidden: tuple[int, ...] = (512, 256), img_shape: tuple[int, ...] = (1, 28, 28)) -> None:
        super().__init__()
        n_in = 1
        for s in img_shape:
            n_in *= s
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [_dense(n_in, width), nn.LeakyReLU(0.2)]
            n_in = width
        layers.append(_dense(n_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
