"""The small MNIST CNN behind the ``mnist`` extractor (≈157k parameters, 128-d penultimate features).

Input: float images ``(B, 1, 28, 28)`` in ``[0, 1]`` (uint8 / 255); the MNIST mean/std normalisation is
part of the network, so callers only ever scale by 1/255.
"""

from __future__ import annotations

import torch
from torch import nn

#: MNIST train-set pixel mean and standard deviation of ``uint8 / 255``.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
POOL_DIM = 128
NUM_CLASSES = 10


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class MNISTNet(nn.Module):
    """Five 3×3 conv+BN+ReLU layers (28→14→7), global average pool, FC-128 (``pool``), dropout, FC-10 (``logits``)."""

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_block(1, 32),
            *_block(32, 32),
            nn.MaxPool2d(2),
            *_block(32, 64),
            *_block(64, 64),
            nn.MaxPool2d(2),
            *_block(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(128, POOL_DIM, bias=False), nn.BatchNorm1d(POOL_DIM), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(POOL_DIM, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` in ``[0, 1]`` → (``pool`` (B, 128), ``logits`` (B, 10))."""
        pool = self.fc(self.features((x - MNIST_MEAN) / MNIST_STD))
        return pool, self.head(self.dropout(pool))
