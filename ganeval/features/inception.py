"""Inception-v3 features exactly as torch-fidelity computes them (its TF-1.x bilinear resize to 299×299
and its network), run channels_last and batched on the chosen device."""

from __future__ import annotations

import os
from typing import Any

import torch

from ganeval.features.base import register_extractor, resolve_device
from ganeval.features.inception_net import build_tfid_inception
from ganeval.features.inception_weights import InceptionWeights, resolve_inception_weights

RESIZE_MODE = "torch-fidelity interpolate_bilinear_2d_like_tensorflow1x to 299x299"
CHANNELS = "grayscale tiled to 3 channels"


class InceptionExtractor:
    """``pool`` (2048-d) and, with full weights, ``logits`` (1008-d, unbiased as torch-fidelity's IS uses)."""

    name = "inception"
    pool_dim = 2048

    def __init__(
        self,
        weights: InceptionWeights | None = None,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        weights_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.weights = weights or resolve_inception_weights(weights_path)
        self.has_logits = self.weights.has_logits
        self.device = resolve_device(device)
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
        self.precision = precision
        feats = ("2048", "logits_unbiased") if self.has_logits else ("2048",)
        self._keys = ("pool", "logits") if self.has_logits else ("pool",)
        net = build_tfid_inception(self.weights.state_dict, feats)
        self.net = net.to(self.device).to(memory_format=torch.channels_last).eval()

    def provenance(self) -> dict[str, Any]:
        """Extractor identity for sidecars, caches and reports."""
        return {
            "extractor": self.name,
            "weights_sha256": self.weights.sha256,
            "weights_source": self.weights.source,
            "resize": RESIZE_MODE,
            "channels": CHANNELS,
            "precision": self.precision,
        }

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dtype != torch.uint8:
            raise TypeError("InceptionExtractor expects uint8 images")
        x = images.to(self.device, non_blocking=True)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                out = self.net(x)
        else:
            out = self.net(x)
        return {k: v.float() for k, v in zip(self._keys, out, strict=True)}


@register_extractor("inception")
def make_inception(**kwargs: Any) -> InceptionExtractor:
    """Registry factory for the Inception-v3 extractor."""
    return InceptionExtractor(**kwargs)
