"""Where ganeval keeps its user cache (converted weights, real features, per-checkpoint results)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The user cache folder (``GANEVAL_CACHE_DIR`` or ``~/.cache/ganeval``), joined with ``parts``."""
    root = os.environ.get("GANEVAL_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganeval"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when ``GANEVAL_OFFLINE=1``: never attempt a download."""
    return os.environ.get("GANEVAL_OFFLINE", "") not in ("", "0", "false", "False")
