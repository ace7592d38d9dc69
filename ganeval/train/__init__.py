"""Training routines: the MNIST-domain classifier and the GAN trainers.

``ganeval.train.train(out, model="mlp", ...)`` trains a bundled GAN (see ``docs/training.md``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["train", "TrainResult", "RECIPES"]


def __getattr__(name: str) -> Any:  # lazy, so that ``ganeval.train.classifier`` does not import the GAN trainer
    if name in ("train", "TrainResult"):
        from ganeval.train import loop

        return getattr(loop, name)
    if name == "RECIPES":
        from ganeval.train.recipes import RECIPES

        return RECIPES
    raise AttributeError(f"module 'ganeval.train' has no attribute {name!r}")
