"""Weights saved from your own generator class (``torch.save(G.state_dict(), "G_010000.pt")``), scored with that class.

The class (or any function returning an ``nn.Module``) is named by ``--generator MODULE:NAME`` or
``path/to/file.py:NAME`` and built with ``--generator-kwargs`` (JSON). Files are read without unpickling arbitrary
objects: safetensors, or ``torch.load(weights_only=True)``. The generator's weights are found inside the file by
matching the model's own parameter names (``module.`` / ``_orig_mod.`` prefixes of DDP and ``torch.compile``
removed), so training bundles such as ``{"G": ..., "D": ..., "opt_G": ...}`` work as saved; when two entries fit
(``G`` and ``g_ema``), ``--state-key`` picks one.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganeval.checkpoints import dtype_problem, is_torchscript_archive, utf8_path
from ganeval.errors import CheckpointError, refused_global, unpickler_reason
from ganeval.user_code import UserFactory, resolve_factory

STATE_EXTS = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")
_PREFIXES = ("module.", "_orig_mod.")


def resolve_spec(generator: Any, kwargs: Any = None) -> UserFactory:
    """``generator`` as ``"MODULE:NAME"``, ``"file.py:NAME"`` or a callable; ``kwargs`` a dict or a JSON object string."""
    return resolve_factory(generator, kwargs, "--generator")


def read_weights(path: Path) -> Any:
    """The file's content with nothing unpickled beyond tensors and plain containers."""
    if path.suffix.lower() != ".safetensors" and is_torchscript_archive(path):  # torch.load would point at weights_only
        raise CheckpointError(f"{path}: is a TorchScript generator (torch.jit.save), not a weight file: score it "
                              "without --generator (generator=), its class is inside")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            with utf8_path(path) as name:  # safetensors refuses a name that is not UTF-8
                return load_file(name, device="cpu")
        with warnings.catch_warnings():  # "Detected pickle protocol 4": a second line; the refusal says it all
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = refused_global(exc)
        if not found and not zipfile.is_zipfile(path):  # a plain pickle, or torch.save's legacy format: say what it is
            detail = unpickler_reason(exc)
            raise CheckpointError(f"{path}: cannot read weights: not safetensors, nor a torch.save file of tensors "
                                  f"(a plain pickle?{'; ' + detail if detail else ''}); save G.state_dict() with "
                                  "torch.save or safetensors") from exc
        what = f" such as {found}" if found else ""
        raise CheckpointError(f"{path}: holds objects other than tensors and plain containers{what}, which are not "
                              "unpickled (torch.load with weights_only=True refused it); save G.state_dict() alone") from exc
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: cannot read weights: not a safetensors or torch.save file, or damaged "
                              f"({exc.__class__.__name__}{': ' + first[:160] if first else ''})") from exc


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key.replace("._orig_mod.", ".")


def _as_saved_and_stripped(sd: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """``sd``, then with one more wrapper prefix stripped at a time, then with every wrapper stripped."""
    out, cur = [sd], sd
    while True:
        nxt = {next((k[len(p):] for p in _PREFIXES if k.startswith(p)), k): v for k, v in cur.items()}
        if set(nxt) == set(cur):
            break
        out.append(cur := nxt)
    full = {_strip(k): v for k, v in sd.items()}
    return out if any(set(full) == set(o) for o in out) else [*out, full]


def _tensor_dicts(obj: Any, path: str = "", depth: int = 0) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """Every dict of tensors inside ``obj`` (up to four levels), with its dotted key path."""
    if not isinstance(obj, dict) or depth > 4:
        return []
    found = []
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors:
        found.append((path, tensors))
    for k, v in obj.items():
        if isinstance(v, dict):
            found += _tensor_dicts(v, f"{path}.{k}" if path else str(k), depth + 1)
    return found


def find_state_dict(obj: Any, model: nn.Module, path: Path, state_key: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The entry of ``obj`` whose names are exactly the model's (or the one at ``state_key``); its key path."""
    want = set(model.state_dict())
    entries = _tensor_dicts(obj)
    if state_key is not None:
        chosen = [(k, sd) for k, sd in entries if k == state_key]
        if not chosen:
            keys = ", ".join(repr(k or "(top level)") for k, _ in entries) or "none"
            raise CheckpointError(f"{path}: no tensors under --state-key {state_key!r} (entries with tensors: {keys})")
        entries = chosen
    # Names as saved, else with wrapper prefixes (module., _orig_mod.) stripped: a generator may name a submodule
    # "module" itself, so the saved names are tried first.
    entries = [(k, v) for k, sd in entries for v in _as_saved_and_stripped(sd)]
    fits = [(k, sd) for k, sd in entries if set(sd) == want]
    if len(fits) == 1:
        return fits[0][1], fits[0][0]
    if len(fits) > 1:
        keys = ", ".join(repr(k or "(top level)") for k, _ in fits)
        raise CheckpointError(f"{path}: several entries fit the generator ({keys}); pick one with --state-key "
                              "(the EMA copy, if there is one, usually scores best)")
    if not entries:
        raise CheckpointError(f"{path}: no tensors found (expected a state dict of the generator)")
    key, sd = max(entries, key=lambda e: len(set(e[1]) & want))
    missing, extra = sorted(want - set(sd)), sorted(set(sd) - want)
    where = f"entry {key!r}" if key else "the top-level state dict"
    raise CheckpointError(f"{path}: the closest match, {where}, does not fit the generator: {len(missing)} missing "
                          f"(e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]}); check --generator, "
                          "--generator-kwargs and --state-key")


def load_state_dict_generator(path: Path, spec: UserFactory, state_key: str | None,
                              device: torch.device) -> tuple[nn.Module, str]:
    """The generator with the file's weights, in eval mode on ``device``; the key path they came from."""
    model = spec.build()
    sd, key = find_state_dict(read_weights(path), model, path, state_key)
    if (problem := dtype_problem(sd, model, exact=False)) is not None:
        raise CheckpointError(f"{path}: weights of the wrong type ({problem}): not the generator's weights as saved")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:  # names fit but shapes do not: another --generator-kwargs
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first[1:] if line.strip()), first[0] if first else "")
        raise CheckpointError(f"{path}: weights do not fit the generator built with {spec.kwargs} ({detail[:200]})") from exc
    return model.to(device).eval(), key


__all__ = ["STATE_EXTS", "find_state_dict", "load_state_dict_generator", "read_weights",
           "resolve_spec"]
