"""Model registry: a name maps to generator/discriminator builders and their default config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ganeval.errors import CheckpointError


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered GAN: constructors plus the config they take."""

    name: str
    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    uses_ema: bool = False


MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} registered twice")
    MODELS[spec.name] = spec
    return spec


def get_model(name: str) -> ModelSpec:
    """The spec of a registered model, or a clear error naming the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise CheckpointError(f"unknown model {name!r} (known: {', '.join(sorted(MODELS))})") from None


def build_generator(name: str, config: dict[str, Any] | None = None) -> nn.Module:
    """Construct the generator of model ``name`` with ``config`` over the defaults."""
    spec = get_model(name)
    cfg = {**spec.defaults, **(config or {})}
    return spec.generator(**cfg)


def build_discriminator(name: str, config: dict[str, Any] | None = None) -> nn.Module:
    """Construct the discriminator of model ``name``, passing only the config keys it accepts."""
    import inspect

    spec = get_model(name)
    cfg = {**spec.defaults, **(config or {})}
    accepted = inspect.signature(spec.discriminator).parameters
    return spec.discriminator(**{k: v for k, v in cfg.items() if k in accepted})
