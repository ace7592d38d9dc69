"""The seed's MLP GAN (Keras tutorial), ported faithfully to PyTorch.

Keras ``BatchNormalization(momentum=0.8)`` keeps 0.8 of the old running statistic, which is
PyTorch ``momentum=0.2``; Keras ``epsilon`` defaults to 1e-3. Keras 2 moves its running variance towards the batch
variance times n/(n − 1 − ε), PyTorch towards n/(n − 1): :class:`KerasBatchNorm1d` takes Keras' factor. Dense
layers use Keras' default glorot-uniform weights and zero biases.
"""

# No ``from __future__ import annotations``: TorchScript reads KerasBatchNorm1d's signatures (a generator exported
# with torch.jit.script), and string annotations on its @torch.jit.unused method do not resolve.
import torch
import torch.nn.functional as F
from torch import nn


def _dense(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class KerasBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` whose running variance follows Keras 2's ``BatchNormalization``.

    In training, Keras 2 (``keras/layers/normalization.py``) updates the moving variance with the batch variance
    times n/(n − 1 − ε) where PyTorch uses the unbiased n/(n − 1); the seed's generator makes D's fake batch in
    inference mode, so those running statistics shape every training step. Output and state dict are PyTorch's.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self._keras_training(x)
        # inference: the running statistics, as BatchNorm1d (kept scriptable: TorchScript export of a generator)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    @torch.jit.unused
    def _keras_training(self, x: torch.Tensor) -> torch.Tensor:
        """Batch statistics for the output (biased variance, as both libraries) and Keras' running-variance update."""
        if not self.track_running_stats or self.running_mean is None or self.running_var is None:
            return super().forward(x)
        out = F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)  # raises on one value
        dims = [0] + list(range(2, x.dim()))
        n = x.numel() // x.shape[1]
        with torch.no_grad():
            xf = x.detach().to(torch.promote_types(x.dtype, torch.float32))
            var, mean = torch.var_mean(xf, dim=dims, correction=0)
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)  # cumulative
            self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
            moved = var * (n / (n - 1.0 - self.eps))
            self.running_var.mul_(1 - m).add_(moved.to(self.running_var.dtype), alpha=m)
        return out


#: How BatchNorm1d moves its running variance in training: Keras 2's n/(n − 1 − ε) or PyTorch's n/(n − 1).
BN_VARIANCE_FORMS = ("keras", "torch")


def set_batchnorm_variance(module: nn.Module, form: str) -> nn.Module:
    """Switch every ``BatchNorm1d`` of ``module`` to ``form``'s running-variance update (in place; same state dict)."""
    if form not in BN_VARIANCE_FORMS:
        raise ValueError(f"unknown BatchNorm variance form {form!r} (expected one of {', '.join(BN_VARIANCE_FORMS)})")
    cls = KerasBatchNorm1d if form == "keras" else nn.BatchNorm1d
    for m in module.modules():
        if type(m) in (nn.BatchNorm1d, KerasBatchNorm1d):
            m.__class__ = cls
    return module


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
            layers += [_dense(n_in, width), nn.LeakyReLU(0.2), KerasBatchNorm1d(width, momentum=0.2, eps=1e-3)]
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
