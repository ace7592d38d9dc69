"""What torchrun told this process, read before any process group is joined and without importing torch (the
command's start-up and its error lines use it)."""

from __future__ import annotations

import os


def launched_rank() -> int:
    """This process's rank as torchrun set it (``RANK``; 0 without torchrun), known before any group is joined."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0
