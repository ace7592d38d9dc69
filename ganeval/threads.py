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


#: torch's float32 precision switches (torch >= 2.9), parents before children: restoring them restores the state.
_PRECISION_SWITCHES = ("", "cuda.matmul", "cudnn", "cudnn.conv", "cudnn.rnn", "mkldnn", "mkldnn.matmul", "mkldnn.conv",
                       "mkldnn.rnn")


def _switch(path: str) -> object:
    node: object = torch.backends
    for part in filter(None, path.split(".")):
        node = getattr(node, part)
    return node


def _precision_state() -> dict[str, str] | None:
    """Every float32 precision switch's value, or None on a torch without them (before 2.9)."""
    try:
        return {path: _switch(path).fp32_precision for path in _PRECISION_SWITCHES}  # type: ignore[attr-defined]
    except AttributeError:
        return None


def _legacy_state() -> tuple[str, bool] | None:
    """The legacy switches' values (matmul precision, cuDNN's TF32), or None where torch cannot say: the caller mixed
    the legacy and new switches, and torch raises when asked."""
    try:
        return torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    except RuntimeError:
        return None


@contextmanager
def float32_mode(precision: str) -> Iterator[None]:
    """Run the block with float32 products and convolutions in IEEE float32, or in TF32 on CUDA for
    ``precision == "tf32"``; then restore the caller's switches exactly.

    cuDNN's default lets float32 convolutions run in TF32, which moved "fp32" GPU features ~1e-3 from the CPU's
    (docs/performance.md), and a caller's ``torch.set_float32_matmul_precision("medium")`` lets oneDNN run CPU
    float32 products in bf16: fp32 means float32 here. torch keeps the legacy switches (which inductor and torch's
    own checks read, raising once they disagree with the new ones) beside the new per-backend ones: the block sets
    both consistently, and both are put back as they were (restoring through the legacy switches alone wrote new
    values the caller never set, after which torch refused to say its matmul precision).
    """
    state, legacy = _precision_state(), _legacy_state()
    on = precision == "tf32"
    if legacy is not None:
        torch.set_float32_matmul_precision("high" if on else "highest")
        torch.backends.cudnn.allow_tf32 = on
    else:  # the caller's switches are already mixed: set the new ones alone, as they do
        for path in ("cuda.matmul", "cudnn.conv", "mkldnn.matmul", "mkldnn.conv"):
            _switch(path).fp32_precision = "tf32" if on and not path.startswith("mkldnn") else "ieee"  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if legacy is not None:
            torch.set_float32_matmul_precision(legacy[0])
            torch.backends.cudnn.allow_tf32 = legacy[1]
        for path, value in (state or {}).items():  # the new switches last: their values are exactly the caller's
            _switch(path).fp32_precision = value  # type: ignore[attr-defined]
