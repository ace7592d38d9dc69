"""One training iteration per loss, plus the generator EMA.

Each step returns a detached 4-vector ``[d_loss, d_acc, g_loss, g_acc]`` on the training device, so the loop
never synchronises with the device except at its log intervals. Accuracy is that of D at threshold 0 on the
logits: real classified real, fake classified fake (``d_acc``); fakes that fool D during the G step (``g_acc``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch import nn

Batch = Callable[[], torch.Tensor]
Autocast = Callable[[], AbstractContextManager[object]]


def _fp32() -> AbstractContextManager[object]:
    return contextlib.nullcontext()


def _acc_real(logits: torch.Tensor) -> torch.Tensor:
    return (logits > 0).float().mean()


def bce_seed_step(g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                  real: Batch, noise: Batch, n_critic: int = 1, amp: Autocast = _fp32) -> torch.Tensor:
    """The seed's Keras iteration, with BCE on logits.

    D: the fake batch comes from ``generator.predict`` (BatchNorm in inference mode, no gradient), then two
    separate optimiser updates, ``train_on_batch(real, 1)`` and ``train_on_batch(fake, 0)``; the reported D loss
    and accuracy are their means. G: one update through the frozen D with label 1 (BatchNorm in training mode).
    ``amp`` wraps the forward passes (mixed precision); backward passes run outside it.
    """
    d_stats = torch.zeros(2, device=next(d.parameters()).device)
    for _ in range(n_critic):
        x = real()
        z = noise()
        with torch.no_grad(), amp():
            g.eval()
            fake = g(z)
            g.train()
        opt_d.zero_grad(set_to_none=True)
        with amp():
            lr_ = d(x).float()
            loss_r = F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_))
        loss_r.backward()
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
        with amp():
            lf = d(fake).float()
            loss_f = F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
        loss_f.backward()
        opt_d.step()
        d_stats += torch.stack([0.5 * (loss_r.detach() + loss_f.detach()), 0.5 * (_acc_real(lr_) + 1 - _acc_real(lf))])
    d.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    with amp():
        lg = d(g(noise())).float()
        loss_g = F.binary_cross_entropy_with_logits(lg, torch.ones_like(lg))
    loss_g.backward()
    opt_g.step()
    d.requires_grad_(True)
    return torch.cat([d_stats / n_critic, torch.stack([loss_g.detach(), _acc_real(lg.detach())])])


def _d_forward(d: nn.Module, x: torch.Tensor, with_code: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """D's logits (fp32) and, for InfoGAN discriminators, its code logits."""
    if not with_code:
        return d(x).float(), None
    logits, q = d.forward_with_code(x)
    return logits.float(), q.float()


def hinge_step(g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               real: Batch, noise: Batch, n_critic: int = 1, amp: Autocast = _fp32,
               info_weight: float = 0.0) -> torch.Tensor:
    """Hinge loss: D minimises ``relu(1 - D(x)) + relu(1 + D(G(z)))`` (real and fake in one forward pass),
    G minimises ``-D(G(z))``; the last critic step's fake batch is reused for the G step (as in PyTorch's DCGAN).
    ``amp`` wraps the forward passes (mixed precision); backward passes run outside it.

    ``info_weight > 0`` adds InfoGAN's code loss (``dcgan_info``: ``g.code``, ``d.forward_with_code``): the
    cross-entropy of D's code head on the fakes' codes joins D's loss (it trains the head) and G's (G makes its
    code recoverable)."""
    with_code = info_weight > 0
    d_stats = torch.zeros(2, device=next(d.parameters()).device)
    fake = code = None
    for k in range(n_critic):
        x = real()
        z = noise()
        code = g.code(z) if with_code else None
        with amp():
            if k < n_critic - 1:
                with torch.no_grad():
                    fake = g(z)
            else:
                fake = g(z)
        opt_d.zero_grad(set_to_none=True)
        with amp():
            logits, q = _d_forward(d, torch.cat([x, fake.detach().to(x.dtype)]), with_code)
            lr_, lf = logits[: x.shape[0]], logits[x.shape[0]:]
            loss_d = F.relu(1.0 - lr_).mean() + F.relu(1.0 + lf).mean()
            if q is not None:
                loss_d = loss_d + info_weight * F.cross_entropy(q[x.shape[0]:], code)
        loss_d.backward()
        opt_d.step()
        d_stats += torch.stack([loss_d.detach(), 0.5 * (_acc_real(lr_.detach()) + 1 - _acc_real(lf.detach()))])
    assert fake is not None
    d.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    with amp():
        lg, q = _d_forward(d, fake, with_code)
        loss_g = -lg.mean()
        if q is not None:
            loss_g = loss_g + info_weight * F.cross_entropy(q, code)
    loss_g.backward()
    opt_g.step()
    d.requires_grad_(True)
    return torch.cat([d_stats / n_critic, torch.stack([loss_g.detach(), _acc_real(lg.detach())])])


STEPS: dict[str, Callable[..., torch.Tensor]] = {"bce_seed": bce_seed_step, "hinge": hinge_step,
                                                 "info_hinge": functools.partial(hinge_step, info_weight=1.0)}


class EMA:
    """Exponential moving average of a model's parameters and floating-point buffers (BatchNorm statistics),
    with the warm-up ``decay_t = min(decay, (1 + t) / (warmup + t))``; integer buffers are copied."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: int = 10) -> None:
        self.decay = decay
        self.warmup = warmup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay used at (1-based) iteration ``step``."""
        return min(self.decay, (1.0 + step) / (self.warmup + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average toward ``model`` after iteration ``step``."""
        weight = 1.0 - self.decay_at(step)
        ema_p = [p for p in self.model.parameters()]
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, weight)
        float_pairs = [(e, s) for e, s in zip(self.model.buffers(), model.buffers(), strict=True)]
        floats = [(e, s) for e, s in float_pairs if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [s for _, s in floats], weight)
        for e, s in float_pairs:
            if not e.is_floating_point():
                e.copy_(s)
