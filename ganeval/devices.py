"""Which torch device a command runs on: ``--device`` (and the API's ``device=``) resolved and checked in one place."""

from __future__ import annotations

import torch

from ganeval.errors import GanevalError


def resolve_device(device: str | torch.device = "auto", error: type[GanevalError] = GanevalError) -> torch.device:
    """``auto`` → CUDA when present, else CPU. Every command resolves ``--device`` here, so an unknown name, a type
    ganeval does not run on (mps, xpu…) or a CUDA device that is absent is one line (``error``), not torch's traceback."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise error(f"--device {device!r} is not a device (use auto, cpu or cuda)") from exc
    if dev.type not in ("cpu", "cuda"):
        raise error(f"--device {device!r} is not supported by ganeval (use auto, cpu or cuda)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise error("--device cuda asked for, but no CUDA device is available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise error(f"--device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0")
    return dev


__all__ = ["resolve_device"]
