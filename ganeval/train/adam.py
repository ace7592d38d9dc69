"""Adam in the epsilon form a recipe asks for: PyTorch's, or Keras' "epsilon hat" (the seed MLP's port).

Keras/TF Adam takes a step ``var -= lr·√(1−β2^t)/(1−β1^t) · m/(√v + ε)``; PyTorch's adds its eps to the
bias-corrected ``√v̂ = √v/√(1−β2^t)``, i.e. ``var -= lr/(1−β1^t) · m/(√v̂ + eps)``. With the same 1e-7 the two
differ wherever ``√v`` is not far above ε: after 3 steps at gradient 1e-5 PyTorch moves 1.23× as far, at 1e-7
12×. They agree exactly when PyTorch's eps is ``ε/√(1−β2^t)`` at step t, so the Keras form is PyTorch's Adam with
each group's eps set to that before each step (:class:`KerasEpsilon`). The fused CUDA kernel reads a group's eps
on every step too, so it takes the same per-step value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ganeval.train.recipes import Recipe


def steps_taken(opt: torch.optim.Optimizer) -> int:
    """How many steps ``opt`` has taken: the ``step`` of the first parameter that has one (0 before the first)."""
    for group in opt.param_groups:
        for p in group["params"]:
            step = opt.state.get(p, {}).get("step")
            if step is not None:
                return int(step)
    return 0


class KerasEpsilon:
    """A step pre-hook that gives an Adam Keras' epsilon ``eps``: each group's eps becomes ``eps/√(1−β2^t)``,
    t being the step about to be taken.

    t is counted here (read from the optimiser's state once, after construction or a ``load_state_dict``), so
    the hook never reads a device tensor in the loop; a resumed optimiser continues its own count, so a resumed
    run takes the same steps as an uninterrupted one.
    """

    def __init__(self, eps: float) -> None:
        self.eps = float(eps)
        self.taken: int | None = None

    def reset(self, opt: torch.optim.Optimizer) -> None:
        """Forget the count (the optimiser's state was replaced); it is read again at the next step."""
        self.taken = None

    def __call__(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.taken is None:
            self.taken = steps_taken(opt)
        self.taken += 1
        for group in opt.param_groups:
            group["eps"] = self.eps / math.sqrt(1.0 - group["betas"][1] ** self.taken)


def make_adam(params: Iterable[torch.nn.Parameter], recipe: Recipe, fused: bool = False) -> torch.optim.Adam:
    """The recipe's Adam (lr, betas, eps) in its epsilon form (``recipe.adam_eps``: ``"keras"`` or ``"torch"``)."""
    opt = torch.optim.Adam(params, lr=recipe.lr, betas=recipe.betas, eps=recipe.eps, fused=fused)
    if recipe.adam_eps == "keras":
        hook = KerasEpsilon(recipe.eps)
        opt.register_step_pre_hook(hook)
        opt.register_load_state_dict_post_hook(hook.reset)
    return opt


__all__ = ["KerasEpsilon", "make_adam", "steps_taken"]
