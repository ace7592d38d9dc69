"""Per-checkpoint features cached by content: (checkpoint SHA-256, extractor provenance, N, seed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.atomic import atomic_path
from ganeval.cache import cache_dir


def feature_key(source_sha: str, provenance: dict[str, Any], n: int, seed: int, z_type: str) -> str:
    """Stable key of one checkpoint's features."""
    blob = json.dumps({"src": source_sha, "prov": provenance, "n": n, "seed": seed, "z": z_type}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _path(key: str) -> Path:
    return cache_dir("features") / f"{key}.npz"


def load_features(key: str) -> tuple[torch.Tensor, torch.Tensor | None, int] | None:
    """``(pool, logits, nonfinite)`` from the cache, or None (a damaged entry counts as a miss)."""
    path = _path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            logits = torch.from_numpy(z["logits"]) if "logits" in z.files else None
            return torch.from_numpy(z["pool"]), logits, int(z["nonfinite"])
    except (ValueError, OSError, KeyError):
        return None


def save_features(key: str, pool: torch.Tensor, logits: torch.Tensor | None, nonfinite: int) -> None:
    """Store one checkpoint's features atomically."""
    arrays = {"pool": pool.cpu().numpy(), "nonfinite": np.array(nonfinite)}
    if logits is not None:
        arrays["logits"] = logits.cpu().numpy()
    with atomic_path(_path(key)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
