"""Which input hints (``--z-dim``, ``--z-type``, ``--output-range``, ``--generator``, …, ``cache_key=``) the sources of
a run read, so that one none of them reads is refused (one line, exit 2, before any work) as an option no asked metric
reads is (``options.unread_inputs``), instead of being kept in the options and ignored.

A series may mix sources (a folder of ganeval checkpoints and weight files of your class, a gate's checkpoint and the
baseline model re-scored beside it): a hint is refused only where no source of the whole run reads it, and each
scoring within the run is given only the hints its own sources read (``read_hints``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from ganeval.errors import GanevalError
from ganeval.inputs import Series, Source, resolve_target
from ganeval.sources.base import HINT_KEYS
from ganeval.sources.samples import integer_pixels

_LATENT = ("z_dim", "z_type", "output_range")
#: The hints each kind of source reads. A ganeval checkpoint says its latent size and is sampled as it was trained
#: (normal latents, output in [-1, 1]); stored images are pixels already; a stored or in-memory array reads
#: ``output_range`` where it holds floats (``_reads``); a TorchScript or ONNX file is cached by its own SHA-256.
READS: dict[str, tuple[str, ...]] = {
    "checkpoint": (), "images": ("recursive",), "failed": (), "npz": ("output_range",), "array": ("output_range",),
    "torchscript": _LATENT, "onnx": _LATENT, "callable": (*_LATENT, "cache_key"),
    "state_dict": tuple(k for k in HINT_KEYS if k != "recursive"),
}
#: Each hint's flag (``cache_key`` is Python's alone) and what reads it, for the refusal.
FLAGS = {"z_dim": "--z-dim", "z_type": "--z-type", "output_range": "--output-range", "cache_key": "cache_key",
         "generator": "--generator", "generator_kwargs": "--generator-kwargs", "state_key": "--state-key",
         "recursive": "--recursive"}
_GENERATORS = "generators (TorchScript, ONNX, weight files with --generator, Python callables)"
READERS = {"z_dim": _GENERATORS, "z_type": _GENERATORS,
           "output_range": f"{_GENERATORS} and float sample arrays (.npz, .npy, an array)",
           "cache_key": "Python callables and weight files with --generator",
           "generator": "weight files (.pt, .pth, .ckpt, .bin, .safetensors) that are no ganeval checkpoint",
           "generator_kwargs": "--generator's weight files", "state_key": "--generator's weight files",
           "recursive": "folders of sample images (read with their whole tree)"}
#: How the inputs of a run that reads a hint nowhere are named.
KINDS = {"checkpoint": "ganeval checkpoints (their files say how to sample them)", "images": "stored images",
         "npz": "float sample arrays", "array": "float sample arrays", "failed": "entries that cannot be scored",
         "torchscript": "TorchScript generators", "onnx": "ONNX generators", "callable": "Python callables",
         "state_dict": "weight files"}


def _reads(src: Source) -> tuple[str, ...]:
    """The hints ``src`` reads: its kind's, less ``output_range`` for a sample set of integer pixels."""
    keys = READS.get(src.kind, HINT_KEYS)  # a kind not listed: counted as reading every hint (never refused)
    if "output_range" in keys and src.kind in ("npz", "array") and _integer(src):
        keys = tuple(k for k in keys if k != "output_range")
    return keys


def _integer(src: Source) -> bool:
    """Whether a stored or in-memory sample array holds integer pixels (its header or dtype; unknown: False)."""
    if src.kind == "npz":
        return bool(src.path is not None and integer_pixels(src.path))
    arr = src.extra.get("array")
    if isinstance(arr, torch.Tensor):
        return not (arr.is_floating_point() or arr.is_complex() or arr.dtype == torch.bool)
    return isinstance(arr, np.ndarray) and arr.dtype.kind in "iu"


def _kind(src: Source) -> str:
    """What ``src`` is, in the refusal's words."""
    if src.kind in ("npz", "array") and _integer(src):
        return "integer-pixel sample arrays"
    return KINDS.get(src.kind, src.kind)


def given_hints(options: dict[str, Any]) -> dict[str, Any]:
    """The hints in score keyword ``options``: top-level (``z_dim=``) and in ``extra``, the top-level ones winning,
    ``None`` meaning not given."""
    extra = options.get("extra") if isinstance(options.get("extra"), dict) else {}
    merged = {**{k: v for k, v in extra.items() if k in HINT_KEYS}, **{k: v for k, v in options.items() if k in HINT_KEYS}}
    return {k: v for k, v in merged.items() if v is not None}


def unread_hints(runs: Iterable[Series], hints: dict[str, Any]) -> list[str]:
    """The keys of ``hints`` (not None) that no source of ``runs`` reads, in ``HINT_KEYS`` order."""
    read = {k for series in runs for src in series.sources for k in _reads(src)}
    return [k for k in HINT_KEYS if hints.get(k) is not None and k not in read]


def check_hints_read(runs: Iterable[Series], hints: dict[str, Any]) -> None:
    """Refuse the first hint no source of ``runs`` reads: one line naming the flag, what reads it and what the run's
    inputs are (a ``--z-dim`` given with a ganeval checkpoint or a sample set was recorded in the options and ignored,
    a contradicting one too)."""
    runs = list(runs)
    unread = unread_hints(runs, hints)
    if unread:
        key = unread[0]
        kinds = list(dict.fromkeys(_kind(s) for series in runs for s in series.sources))
        inputs = ", ".join(kinds[:-1]) + f" and {kinds[-1]}" if len(kinds) > 1 else kinds[0] if kinds else "nothing"
        raise GanevalError(f"{FLAGS[key]} is read only by {READERS[key]}; the inputs here are {inputs}: leave the flag out")


def read_hints(targets: Iterable[Any], options: dict[str, Any]) -> dict[str, Any]:
    """Score keyword ``options`` less the hints (top-level and in ``extra``) that no source of ``targets`` reads: for
    scoring part of a run whose other inputs read them (a gate's checkpoint beside its baseline model, one checkpoint
    of a watched folder), or a report's stored options. Where a target cannot be resolved the options stay as they
    are: its scoring names the problem."""
    hints = given_hints(options)
    if not hints:
        return options
    try:
        runs = [resolve_target(t, **hints) for t in targets]
    except GanevalError:
        return options
    unread = set(unread_hints(runs, hints))
    if not unread:
        return options
    out = {k: v for k, v in options.items() if k not in unread}
    if isinstance(options.get("extra"), dict):
        out["extra"] = {k: v for k, v in options["extra"].items() if k not in unread}
    return out
