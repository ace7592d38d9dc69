"""torch's process-wide settings that scoring depends on, set for a block and restored after it: the intra-op CPU
thread count, and whether CUDA's float32 convolutions and matrix products may run in TF32."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ganeval.errors import GanevalError, require_count
from ganeval.names import PRECISIONS  # noqa: F401  (re-exported: defined torch-free for the command's parser)

#: Most intra-op CPU threads ``--threads`` takes: torch overflows past 2**31 - 1 and a matrix product segfaults at
#: 100,000 threads (a traceback or a crash instead of an error); no machine has cores for more than this.
MAX_THREADS = 1024


def check_threads(n: object, what: str = "--threads") -> None:
    """Refuse a thread count outside 1..``MAX_THREADS`` in one line naming ``what`` (``GanevalError``, exit 2)."""
    require_count(n, 1, what)
    if n > MAX_THREADS:  # type: ignore[operator]  # an integer: require_count checked it
        raise GanevalError(f"{what} must be at most {MAX_THREADS} (got {n!r}): more threads than any machine has cores")


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


@contextmanager
def float32_mode(precision: str) -> Iterator[None]:
    """Run the block with CUDA's TF32 on only for ``precision == "tf32"``, then restore both switches.

    cuDNN's default lets float32 convolutions run in TF32, which moved "fp32" GPU features ~1e-3 from the CPU's
    (docs/performance.md): fp32 means float32 here. A no-op on machines without CUDA, where nothing reads them.
    """
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    on = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul
