"""What ``score`` and ``gate`` accept, resolved into an ordered series of sources to sample from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganeval.checkpoints import CKPT_RE, list_checkpoints, load_generator
from ganeval.errors import GanevalError


@dataclass
class Source:
    """One generator in a series: where it is, its iteration, and how to load it."""

    name: str
    path: Path | None
    iteration: int | None
    kind: str = "checkpoint"
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self, device: torch.device) -> tuple[nn.Module, int, str, dict[str, Any]]:
        """``(generator, latent_dim, z_type, metadata)``; metadata includes the file's SHA-256 under ``sha256``."""
        assert self.path is not None
        gen, meta = load_generator(self.path, device=device)
        return gen, int(meta.get("latent_dim") or gen.latent_dim), "normal", meta


@dataclass
class Series:
    """The sources to score, in iteration order, and notes for the user (e.g. ignored files)."""

    sources: list[Source]
    notes: list[str]
    root: Path


def resolve_target(target: str | os.PathLike[str]) -> Series:
    """A checkpoint file or a folder of ``ckpt_*.safetensors`` → a ``Series``; nothing to score → exit-2 error."""
    path = Path(target)
    if not path.exists():
        raise GanevalError(f"{path}: no such file or directory")
    if path.is_file():
        m = CKPT_RE.match(path.name)
        return Series([Source(path.name, path, int(m.group(1)) if m else None)], [], path.parent)
    refs = list_checkpoints(path)
    others = sorted(
        p.name for p in path.iterdir()
        if p.is_file() and not CKPT_RE.match(p.name) and not p.name.startswith(".")
    )
    notes = []
    if others:
        shown = ", ".join(others[:5]) + (" …" if len(others) > 5 else "")
        notes.append(f"ignored {len(others)} non-checkpoint file(s) in {path}: {shown}")
    if not refs:
        raise GanevalError(f"{path}: no checkpoints (ckpt_*.safetensors) to score")
    return Series([Source(r.path.name, r.path, r.iteration) for r in refs], notes, path)
