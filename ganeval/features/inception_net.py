"""torch-fidelity's Inception-v3 network, built from a state dict we loaded safely.

torch-fidelity's constructor would unpickle its weights file with full pickle (weights_only off) or download it;
we build it with its loader replaced so that only tensors we loaded ourselves reach it.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import torch


def build_tfid_inception(state_dict: dict[str, torch.Tensor] | None, features: tuple[str, ...] = ("2048",)) -> torch.nn.Module:
    """A ``FeatureExtractorInceptionV3`` holding ``state_dict`` (random init when None, for shapes and timing).

    A state dict without ``fc`` gets a NaN logits layer, so logits can never pass for real ones.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    def provide(*_args: object, **_kwargs: object) -> dict[str, torch.Tensor] | None:
        return sd

    sd = None if state_dict is None else dict(state_dict)
    if sd is not None and "fc.weight" not in sd:
        sd["fc.weight"] = torch.full((1008, 2048), float("nan"))
        sd["fc.bias"] = torch.full((1008,), float("nan"))
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(fe, "load_state_dict_from_url", provide))
        if sd is None:
            stack.enter_context(mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, s: None))
        return fe.FeatureExtractorInceptionV3("inception-v3-compat", list(features))
