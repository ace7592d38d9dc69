"""The feature-extractor interface and registry shared by the evaluator, ``stats`` and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch

from ganeval.devices import resolve_device  # noqa: F401  (re-exported: ganeval.features.resolve_device)
from ganeval.errors import GanevalError
from ganeval.threads import PRECISIONS, float32_mode


class FeatureExtractor(Protocol):
    """Maps uint8 images ``(B, 1|3, H, W)`` to named feature tensors (``pool`` always, ``logits`` when available)."""

    name: str
    #: The name its statistics files carry (``*_<stats_name>.npz``): ``name``, or a variant such as ``inception-clean``.
    stats_name: str
    pool_dim: int
    has_logits: bool
    device: torch.device

    def provenance(self) -> dict[str, Any]:
        """What identifies these features: extractor, weights SHA-256, resize mode, channel handling, precision."""
        ...

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of one batch, float32 on ``self.device``."""
        ...


EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {}


def register_extractor(name: str) -> Callable[[Callable[..., FeatureExtractor]], Callable[..., FeatureExtractor]]:
    """Decorator: make a factory available under ``name``."""

    def deco(factory: Callable[..., FeatureExtractor]) -> Callable[..., FeatureExtractor]:
        EXTRACTORS[name] = factory
        return factory

    return deco


def get_extractor(name: str, **kwargs: Any) -> FeatureExtractor:
    """Build the registered extractor ``name``."""
    if name not in EXTRACTORS:
        raise GanevalError(f"unknown extractor {name!r} (known: {', '.join(sorted(EXTRACTORS))})")
    return EXTRACTORS[name](**kwargs)


def _serves(host: FeatureExtractor, other: FeatureExtractor) -> bool:
    return host is not other and bool(getattr(host, "serves", lambda _o: False)(other))


def shared_passes(extractors: list[FeatureExtractor]) -> list[tuple[FeatureExtractor, list[FeatureExtractor]]]:
    """The network passes ``extractors`` need: each extractor that runs its own, with the others whose features
    that pass also gives (its optional ``serves(other)`` and ``joint(images, riders)``), so a batch goes
    through a shared network once (``fid`` and ``sfid``: one Inception pass, not 1.7)."""
    hosts: list[tuple[FeatureExtractor, list[FeatureExtractor]]] = [
        (h, []) for h in extractors if not any(_serves(o, h) for o in extractors)]
    for ex in extractors:
        if any(ex is h for h, _ in hosts):
            continue
        riders = next((rs for h, rs in hosts if _serves(h, ex)), None)
        if riders is None:  # served only by another rider: a pass of its own
            hosts.append((ex, []))
        else:
            riders.append(ex)
    return hosts


def run_pass(host: FeatureExtractor, riders: list[FeatureExtractor], images: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Features of one batch from ``host``'s pass, by extractor name: its own and its ``riders``'."""
    return host.joint(images, riders) if riders else {host.name: host(images)}  # type: ignore[attr-defined]


def cacheable(extractor: FeatureExtractor) -> bool:
    """Whether features of ``extractor`` may be cached: not those of a feature network whose source cannot be read
    (its provenance cannot tell one definition from the next)."""
    return bool(getattr(extractor, "cacheable", True))


def refuse_nonfinite(extractor: FeatureExtractor, feats: torch.Tensor, what: str, per_image: bool = True) -> None:
    """Refuse NaN/Inf features (on the host; ``per_image``: one row per image, else a sum over them) in one line
    naming the network: the images are finite uint8, so they come from the network, and would make every
    statistic and metric NaN or infinite."""
    finite = torch.isfinite(feats)
    if bool(finite.all()):
        return
    rows = (~finite).reshape(len(feats), -1).any(dim=1) if per_image and feats.ndim else None
    which = f"{int(rows.sum())} of {len(rows)} images" if rows is not None else "some images"
    network = extractor.provenance().get("network")
    who = f"--feature-network {network}" if network else f"the {extractor.name} extractor"
    raise GanevalError(f"{who}: returned NaN/Inf features for {which} of {what}; a feature network must return finite "
                       "features")


def check_precision(precision: str, device: torch.device) -> str:
    """``precision`` if it is one of :data:`PRECISIONS` and runs on ``device`` (tf32 is a CUDA mode)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "tf32" and device.type != "cuda":
        raise GanevalError(f"--precision tf32 needs a CUDA device (TensorFloat-32 is a GPU mode), not {device.type}; "
                           "use fp32 or bf16 here")
    return precision


@contextmanager
def forward_precision(precision: str, device: torch.device, fp32: bool = False) -> Iterator[None]:
    """A feature network's forward pass at ``precision`` (``fp32=True``: at float32 whatever it says): bf16 autocast,
    and CUDA's TF32 switched on for tf32 only."""
    mode = "fp32" if fp32 else precision
    with float32_mode(mode):
        if mode == "bf16":
            with torch.autocast(device.type, dtype=torch.bfloat16):
                yield
        else:
            yield


def iter_batches(images: np.ndarray | torch.Tensor, batch_size: int,
                 which: Iterable[int] | None = None) -> Iterator[torch.Tensor]:
    """uint8 ``(N, 28, 28)`` or ``(N, C, H, W)`` array or tensor → uint8 NCHW tensor batches (all, or the batch
    indices in ``which``)."""
    starts = range(0, len(images), batch_size) if which is None else (b * batch_size for b in which)
    for start in starts:
        part = images[start : start + batch_size]
        chunk = part.clone() if isinstance(part, torch.Tensor) else torch.from_numpy(np.array(part, copy=True))
        yield chunk.unsqueeze(1) if chunk.ndim == 3 else chunk
