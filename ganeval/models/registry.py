"""Model registry: a name maps to generator/discriminator builders and their default config."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganeval.errors import CheckpointError, first_line


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered GAN: constructors plus the config they take."""

    name: str
    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    uses_ema: bool = False


MODELS: dict[str, ModelSpec] = {}

#: What a model constructor raises for a config it cannot build (a negative or overflowing size, a string where a
#: number belongs, a value out of range...): callers turn these into one line naming the file or option.
CONFIG_ERRORS: tuple[type[Exception], ...] = (TypeError, ValueError, RuntimeError, OverflowError, LookupError,
                                              AttributeError)


def register_model(spec: ModelSpec, check: bool = True) -> ModelSpec:
    """Add ``spec`` to the registry (names are unique).

    Both constructors must build with ``spec.defaults`` on torch's meta device (no value read from a tensor while
    constructing, no explicit ``device=``): a checkpoint's untrusted config is checked on that skeleton before any
    real build (:func:`build_meta`). A spec that cannot is refused here, with ``ValueError``, not at its first load.
    ``check=False`` skips that trial build (about 0.5 s for a spectrally normalised D): for the built-in models,
    whose meta builds the test suite checks.
    """
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} registered twice")
    MODELS[spec.name] = spec
    for part in ("generator", "discriminator") if check else ():
        try:
            build_meta(spec.name, None, part)
        except Exception as exc:  # noqa: BLE001 - any failure of user code refuses the spec
            del MODELS[spec.name]
            raise ValueError(f"model {spec.name!r}: its {part} does not build on torch's meta device "
                             f"({first_line(exc)}); "
                             "checkpoints are checked on that skeleton before loading") from exc
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


@contextmanager
def _tensor_budget(file_tensors: int | None) -> Iterator[None]:
    """Stop a build in this thread (``ValueError``) once it registers far more parameters and buffers than a file of
    ``file_tensors`` tensors holds (spectral norm registers some twice, hence the slack)."""
    if file_tensors is None:
        yield
        return
    from torch.nn.modules.module import (
        register_module_buffer_registration_hook,
        register_module_parameter_registration_hook,
    )

    me, count, limit = threading.get_ident(), 0, 2 * file_tensors + 64

    def hook(module: nn.Module, name: str, tensor: object) -> None:
        nonlocal count
        if threading.get_ident() == me:
            count += 1
            if count > limit:
                raise ValueError(f"the model makes over {limit} parameters and buffers; the file holds "
                                 f"{file_tensors} tensor(s)")

    handles = [register_module_parameter_registration_hook(hook), register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def build_meta(name: str, config: dict[str, Any] | None = None, part: str = "generator",
               file_tensors: int | None = None) -> nn.Module:
    """The generator (``part="generator"``) or discriminator of model ``name`` built on torch's meta device: module
    types, state-dict keys and shapes, with no weight allocated and no random number drawn.

    Why: a checkpoint's or state file's config is untrusted; ``hidden: [12000, 12000]`` in a 724-byte file made a
    real build allocate 600 MB before the weights were compared. Compare this skeleton's state dict with the file's
    header first, then build for real. ``file_tensors`` (the number of tensors in the file) also bounds the build:
    a model never fits a file with fewer tensors than its state dict, so past ``2 * file_tensors + 64`` registered
    parameters and buffers the build stops (a config of a million layers costs no more than the file).
    Raises :class:`CheckpointError` for an unknown model and one of :data:`CONFIG_ERRORS` for a config that does
    not build.
    """
    builder = build_generator if part == "generator" else build_discriminator
    with _tensor_budget(file_tensors), torch.device("meta"):
        return builder(name, config)
