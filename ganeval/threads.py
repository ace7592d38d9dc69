"""torch's intra-op CPU thread count, set for a block and restored after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads (unchanged when ``n`` is None), then restore the count.

    Several ganeval processes on one machine should each use cores/processes threads: torch's default of one
    per core oversubscribes the cores and stalls (docs/performance.md, "Several processes on one machine").
    """
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
