"""A feature network for ``--feature-network``: ganeval's own MNIST classifier behind the custom contract
(float images in [0, 1] in; ``(features, logits)`` out). Use it as a template for your own network, e.g.

    ganeval stats --dataset mnist-train --extractor custom --feature-network examples/mnist_feature_network.py:MnistAsCustom \\
                  --out my_ref/mnist-train_custom.npz

It gives exactly ganeval's MNIST FD and MNIST IS as custom_fd and custom_is (tests/test_custom_features.py,
benchmarks/custom_network_parity.py).
"""

from __future__ import annotations

import torch
from torch import nn


class MnistAsCustom(nn.Module):
    """ganeval's MNIST classifier: 128-d penultimate features and 10 logits of 1×28×28 digits."""

    def __init__(self) -> None:
        super().__init__()
        from ganeval.features.mnist_classifier import MNISTClassifierExtractor

        self.net = MNISTClassifierExtractor(device="cpu").net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x)
