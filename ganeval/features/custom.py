"""The ``custom`` extractor: your own feature network (``--feature-network MODULE:NAME``), for Fréchet distance,
KID, precision/recall, density/coverage and an Inception-Score analogue in a feature space that suits your domain
(Inception's ImageNet features are a poor fit for digits, medical scans or spectrograms).

The contract: the module gets float32 images in [0, 1], ``(B, C, H, W)`` exactly as the samples are (no resize, no
channel change: do what your network needs inside it), on the scoring device, in eval mode under
``torch.inference_mode``; it returns features ``(B, D)``, or ``(features, logits)``, or ``{"pool": ..., "logits":
...}``. Logits enable ``custom_is``. Its identity is the factory's name, its kwargs, its module's source SHA-256
and the SHA-256 of the built network's weights, so statistics and cached features of another network, other
weights or edited code are never mixed with these (``ganeval.stats.MATCH_KEYS``); a network whose source cannot be
read (defined in ``python -c`` or a notebook cell) has source ``unavailable`` and its features are never cached.
Non-finite features are refused, naming the network (``ganeval.features.base.refuse_nonfinite``).
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import nn

from ganeval.errors import GanevalError
from ganeval.features.base import check_precision, forward_precision, register_extractor, resolve_device
from ganeval.user_code import UserFactory, resolve_factory

INPUT = "float32 in [0, 1], (B, C, H, W) as the samples are: no resize, no channel change"


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of a module's state (names, dtypes, shapes and bytes of every tensor, in name order)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class CustomExtractor:
    """``pool`` (and ``logits`` when the network returns them) of your own feature network."""

    name = "custom"
    stats_name = "custom"

    def __init__(self, network: Any = None, network_kwargs: Any = None, device: str | torch.device = "auto",
                 precision: str = "fp32") -> None:
        if network is None:
            raise GanevalError("the custom_* metrics and --extractor custom need your feature network: "
                               "--feature-network MODULE:NAME (docs/reference_stats.md#your-own-feature-network)")
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        self.spec: UserFactory = resolve_factory(network, network_kwargs, "--feature-network")
        net = self.spec.build()
        self.weights_sha256 = weights_digest(net)
        #: Features are cached only when the network's source can be read (``ganeval.features.base.cacheable``).
        self.cacheable = self.spec.source_sha256 is not None
        self.net = net.to(self.device).eval()
        #: Known after the first batch (the network's output says).
        self.pool_dim: int | None = None
        self.has_logits = False

    def provenance(self) -> dict[str, Any]:
        """Extractor identity for sidecars, caches and reports."""
        return {
            "extractor": self.name,
            "network": self.spec.name,
            "network_kwargs": self.spec.kwargs_json(),
            "network_source_sha256": self.spec.source_label,
            "weights_sha256": self.weights_sha256,
            "weights_source": f"built by {self.spec.name}",
            "resize": INPUT,
            "channels": "as the samples are",
            "precision": self.precision,
        }

    def _parse(self, out: Any, batch: int) -> dict[str, torch.Tensor]:
        if isinstance(out, dict):
            pool, logits = out.get("pool"), out.get("logits")
        elif isinstance(out, (tuple, list)) and len(out) == 2:
            pool, logits = out
        else:
            pool, logits = out, None
        found = {"pool": pool} if logits is None else {"pool": pool, "logits": logits}
        for key, t in found.items():
            if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[0] != batch:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise GanevalError(f"--feature-network {self.spec.name}: its {key} output must be a ({batch}, D) tensor "
                                   f"for a batch of {batch}, got {shape} (flatten or pool inside the network)")
            if t.shape[1] == 0:
                raise GanevalError(f"--feature-network {self.spec.name}: its {key} output has no features "
                                   f"({tuple(t.shape)}): D must be at least 1")
        if self.pool_dim is None:
            self.pool_dim, self.has_logits = int(found["pool"].shape[1]), "logits" in found
        elif found["pool"].shape[1] != self.pool_dim or ("logits" in found) != self.has_logits:
            raise GanevalError(f"--feature-network {self.spec.name}: its output changed shape between batches")
        return {k: v.float() for k, v in found.items()}

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images (B, C, H, W), got {images.dtype} {tuple(images.shape)}")
        return self.float_features(images.to(self.device, non_blocking=True).float().div_(255.0))

    @torch.inference_mode()
    def float_features(self, x: torch.Tensor, fp32: bool = False) -> dict[str, torch.Tensor]:
        """Features of float images in ``[0, 1]`` (unquantised generator output, for path lengths); ``fp32``: at full
        precision whatever ``precision`` says (a path length divides a tiny step's change by ε², which bf16 swamps)."""
        x = x.to(self.device, torch.float32)
        with forward_precision(self.precision, self.device, fp32):
            out = self.net(x)
        return self._parse(out, len(x))


@register_extractor("custom")
def make_custom(**kwargs: Any) -> CustomExtractor:
    """Registry factory for your own feature network."""
    return CustomExtractor(**kwargs)


__all__ = ["INPUT", "CustomExtractor", "make_custom", "weights_digest"]
