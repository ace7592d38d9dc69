"""Which torch device a command runs on: ``--device`` (and the API's ``device=``) resolved and checked in one place;
what the CPU can do natively (bf16), and how many processes share the machine."""

from __future__ import annotations

import os

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


def local_processes() -> int:
    """How many processes share this host's memory: torchrun's ``LOCAL_WORLD_SIZE`` (1 when unset or not a count).
    Every rank holds its own copy of what is counted (each gathers every sample's features)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16, AMX or AVX-NE-CONVERT, what oneDNN's bf16 path needs);
    elsewhere torch emulates bf16, slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def emulated_bf16_note(precision: str | None, device: torch.device | str, flag: str = "--precision") -> str | None:
    """The note for bf16 (asked for by ``flag``) on a CPU without native bf16 (None: nothing to say): it runs,
    emulated, many times slower than fp32, with bf16's shift of the numbers all the same."""
    if precision != "bf16" or torch.device(device).type != "cpu" or cpu_has_native_bf16():
        return None
    return (f"{flag} bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX), so torch emulates it, many times "
            "slower than fp32 (on a 2-core AVX2 CPU: the Inception pass 6.8x, DCGAN training 24x), and the numbers "
            "still move as bf16's do; fp32 is the faster choice on this machine")


__all__ = ["cpu_has_native_bf16", "emulated_bf16_note", "local_processes", "resolve_device"]
