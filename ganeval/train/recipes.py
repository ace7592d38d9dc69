"""Per-model training recipes (loss, optimiser, batch size, EMA) and the trainer's input error."""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import asdict, dataclass
from typing import Any

from ganeval.errors import GanevalError


class TrainError(GanevalError):
    """Bad trainer input (unknown model, non-empty output folder, conflicting resume options)."""


@dataclass(frozen=True)
class Recipe:
    """How one registered model is trained; every field is recorded in the state file."""

    loss: str  # "bce_seed" (the seed's Keras loop), "hinge", or "info_hinge" (hinge + InfoGAN code loss)
    lr: float
    betas: tuple[float, float]
    eps: float
    batch_size: int
    iterations: int
    n_critic: int = 1
    ema_decay: float | None = None
    ema_warmup: int = 10  # decay_t = min(ema_decay, (1 + t) / (ema_warmup + t))
    lr_decay_start: int | None = None  # after this iteration, lr falls linearly toward 0 at the run's last iteration
    precision: str = "fp32"  # "bf16": forward passes under bf16 autocast, channels_last; weights and Adam stay fp32
    # Where Adam adds eps: "keras" (Keras' epsilon hat, lr·√(1−β2^t)/(1−β1^t)·m/(√v+ε): the mlp port) or "torch"
    # (PyTorch's, to the bias-corrected √v̂). States written before the field existed trained with "torch".
    adam_eps: str = "torch"
    # How BatchNorm1d moves its running variance: "keras" (batch variance · n/(n − 1 − ε), Keras 2: the mlp port) or
    # "torch" (n/(n − 1)). States written before the field existed trained with "torch".
    bn_variance: str = "torch"

    def lr_at(self, iteration: int, total: int) -> float:
        """Learning rate used by (1-based) ``iteration`` of a ``total``-iteration run."""
        start = self.lr_decay_start
        if start is None or iteration <= start or total <= start:
            return self.lr
        return self.lr * max(total - iteration + 1, 1) / (total - start)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples become lists)."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


RECIPES: dict[str, Recipe] = {
    # The seed: Adam(2e-4, beta_1=0.5) with Keras' epsilon 1e-7 in Keras' form, batch 32, 30,000 iterations, BCE.
    "mlp": Recipe(loss="bce_seed", lr=2e-4, betas=(0.5, 0.999), eps=1e-7, batch_size=32, iterations=30_000,
                  adam_eps="keras", bn_variance="keras"),
    # Spectral-norm D, hinge loss, EMA generator.
    "dcgan": Recipe(loss="hinge", lr=2e-4, betas=(0.5, 0.999), eps=1e-8, batch_size=64, iterations=30_000, ema_decay=0.999),
    # The same with a discrete latent code and InfoGAN's code loss (ganeval.models.dcgan_info).
    "dcgan_info": Recipe(loss="info_hinge", lr=2e-4, betas=(0.5, 0.999), eps=1e-8, batch_size=64, iterations=30_000,
                         ema_decay=0.999),
}


PRECISIONS = ("fp32", "bf16")
ADAM_EPS_FORMS = ("keras", "torch")


def get_recipe(model: str) -> Recipe:
    """The recipe of a trainable model, or a one-line error naming the known ones."""
    from ganeval.models import MODELS

    if model not in RECIPES or model not in MODELS:
        known = ", ".join(sorted(set(RECIPES) & set(MODELS)))
        raise TrainError(f"unknown model {model!r} (trainable models: {known})")
    return RECIPES[model]


#: The seeds ``torch.manual_seed`` takes distinctly: 0 <= seed < 2**64. It takes -2**63 too, but a negative seed
#: is seed + 2**64's state: -1 and 2**64 - 1 trained the same classifier under two seeds in its provenance.
SEED_RANGE = (0, 2**64)
#: What a run's state file may hold: runs started before negative seeds were refused resume as they began.
LEGACY_SEED_RANGE = (-(2**63), 2**64)


def seed_problem(seed: object, legacy: bool = False) -> str | None:
    """What is wrong with ``seed`` as a torch seed (an integer in :data:`SEED_RANGE`, or in
    :data:`LEGACY_SEED_RANGE` where ``legacy``: a stored run's), or None."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        return f"{seed!r} is not an integer"
    lo, hi = LEGACY_SEED_RANGE if legacy else SEED_RANGE
    if not lo <= int(seed) < hi:
        return f"{seed} is out of range (0 <= seed < 2**64: torch's seeds, a negative one being seed + 2**64's)" \
            if not legacy else f"{seed} is out of range (torch takes -2**63 <= seed < 2**64)"
    return None


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one random stream of a run (``data``, ``latent``, ``samples``...)."""
    digest = hashlib.sha256(f"ganeval:{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
