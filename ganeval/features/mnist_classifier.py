"""The ``mnist`` extractor: the project's own MNIST classifier (``ganeval train-classifier``), giving 10-d
``logits`` for an MNIST Inception Score (as TF-GAN's ``mnist_score``) and 128-d ``pool`` features for a
Fréchet distance in its space. Weights ship inside the package and are verified by SHA-256 before use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganeval.atomic import sha256_file
from ganeval.errors import WeightsError
from ganeval.features.base import check_precision, forward_precision, register_extractor, resolve_device
from ganeval.features.mnist_net import POOL_DIM, MNISTNet

SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "pretrained" / "mnist_classifier.safetensors"
#: SHA-256 of the shipped weights (``ganeval train-classifier --epochs 12 --seed 0 --device cpu --threads 1``).
WEIGHTS_SHA256 = "0655961c892c438ba44d0100f1f8a6af01e1b17b921dbfe2ca902266299871b4"
SIZE = 28
LUMA = (0.299, 0.587, 0.114)
RESIZE_MODE = "28x28 as is; other sizes: torch interpolate bilinear antialias=True align_corners=False to 28x28"
CHANNELS = "grayscale as is; RGB -> ITU-R 601 luma (0.299, 0.587, 0.114) before resizing; scaled uint8/255"


def load_classifier_weights(path: str | os.PathLike[str], expected_sha256: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` after checking its SHA-256 against ``expected_sha256`` (no unpickling)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: MNIST classifier weights not found (train them with 'ganeval train-classifier')")
    digest = sha256_file(path)
    if digest != expected_sha256:
        raise WeightsError(
            f"{path}: SHA-256 {digest[:16]}… does not match the expected {expected_sha256[:16]}…; "
            "file corrupted or replaced"
        )
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is one clear input error
        raise WeightsError(f"{path}: cannot load MNIST classifier weights ({exc.__class__.__name__}: {exc})") from exc


class MNISTClassifierExtractor:
    """``pool`` (128-d penultimate activations) and ``logits`` (10-d) of the project's MNIST classifier."""

    name = "mnist"
    stats_name = "mnist"
    pool_dim = POOL_DIM
    has_logits = True

    def __init__(
        self,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        weights_path: str | os.PathLike[str] | None = None,
        expected_sha256: str | None = None,
    ) -> None:
        """``weights_path`` defaults to the shipped file; ``expected_sha256`` to the recorded :data:`WEIGHTS_SHA256`."""
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        path = Path(weights_path) if weights_path else SHIPPED_WEIGHTS
        self.weights_sha256 = expected_sha256 or WEIGHTS_SHA256
        self.weights_source = "ganeval (shipped)" if weights_path is None else f"explicit:{weights_path}"
        state = load_classifier_weights(path, self.weights_sha256)
        net = MNISTNet()
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsError(f"{path}: not MNIST classifier weights ({str(exc).splitlines()[0]})") from exc
        # channels_last on a CPU: oneDNN's convolutions run 1.3-1.9x faster in fp32 (1.5-2x in bf16) on the same weights,
        # features within 2e-6 of the default layout's (benchmarks/cpu_layout.py); a GPU keeps the default layout.
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.net = net.to(self.device).to(memory_format=self.memory_format).eval()

    def provenance(self) -> dict[str, Any]:
        """Extractor identity for sidecars, caches and reports."""
        return {
            "extractor": self.name,
            "weights_sha256": self.weights_sha256,
            "weights_source": self.weights_source,
            "resize": RESIZE_MODE,
            "channels": CHANNELS,
            "precision": self.precision,
        }

    @torch.inference_mode()
    def head(self, pool: torch.Tensor) -> torch.Tensor:
        """Logits from ``pool`` features (the classifier's last layer; dropout is off in eval)."""
        return self.net.head(pool.to(self.device, torch.float32)).float().cpu()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, 1|3, H, W)`` → float ``(B, 1, 28, 28)`` in ``[0, 1]`` on the extractor's device."""
        if images.dtype != torch.uint8:
            raise TypeError("MNISTClassifierExtractor expects uint8 images")
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (B, 1|3, H, W), got {tuple(images.shape)}")
        return self.preprocess_float(images.to(self.device, non_blocking=True).float().div_(255.0))

    def preprocess_float(self, x: torch.Tensor) -> torch.Tensor:
        """Float ``(B, 1|3, H, W)`` in ``[0, 1]`` → the network's input (luma, 28×28), as for uint8 images."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (B, 1|3, H, W), got {tuple(x.shape)}")
        x = x.to(self.device, torch.float32)
        if x.shape[1] == 3:
            w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        if x.shape[-2:] != (SIZE, SIZE):
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
        return x

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._features(self.preprocess(images))

    @torch.inference_mode()
    def float_features(self, x: torch.Tensor, fp32: bool = False) -> dict[str, torch.Tensor]:
        """Features of float images in ``[0, 1]`` (unquantised generator output, for path lengths); ``fp32``: at full
        precision whatever ``precision`` says (a path length divides a tiny step's change by ε², which bf16 swamps)."""
        return self._features(self.preprocess_float(x), fp32)

    def _features(self, x: torch.Tensor, fp32: bool = False) -> dict[str, torch.Tensor]:
        with forward_precision(self.precision, self.device, fp32):
            pool, logits = self.net(x.contiguous(memory_format=self.memory_format))
        return {"pool": pool.float(), "logits": logits.float()}


@register_extractor("mnist")
def make_mnist_classifier(**kwargs: Any) -> MNISTClassifierExtractor:
    """Registry factory for the MNIST-classifier extractor."""
    return MNISTClassifierExtractor(**kwargs)
