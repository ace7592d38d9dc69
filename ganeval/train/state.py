"""The resumable training state (``train_state.safetensors``) and the run folder's small files.

The state file is safetensors: every tensor (G, EMA G, D, optimiser moments, RNG states, fixed sample
latents) under a prefixed name, and one JSON object in the header (key ``ganeval_train``) with the iteration,
run settings and the optimisers' non-tensor structure. Nothing is pickled; writes are atomic.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from ganeval.atomic import atomic_path
from ganeval.errors import CheckpointError

STATE_NAME = "train_state.safetensors"
LOG_NAME = "train_log.csv"
LOG_HEADER = "iteration,d_loss,d_acc,g_loss,g_acc,seconds"
STATE_KEY = "ganeval_train"
STATE_FORMAT = 1
_TMP_RE = re.compile(r"^\.(ckpt_\d+\.safetensors|samples_\d+\.png|train_state\.safetensors|train_log\.csv)\..*\.tmp$")
_DEVICE_FLAGS = ("foreach", "fused", "capturable", "differentiable")


def samples_name(iteration: int) -> str:
    """``samples_{iteration:07d}.png``."""
    return f"samples_{iteration:07d}.png"


# ---------------------------------------------------------------------------------------------- optimisers


def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser state dict as ``{prefix.<param>.<key>: tensor}`` plus a JSON-ready structure."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        state[str(pid)] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                name = f"{prefix}.{pid}.{key}"
                tensors[name] = value.detach().cpu().contiguous()
                state[str(pid)][key] = {"tensor": name}
            else:
                state[str(pid)][key] = {"value": value}
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> None:
    """Inverse of :func:`flatten_optimizer`; device-specific flags (fused, foreach...) stay those of ``opt``."""
    state = {}
    for pid, entry in structure["state"].items():
        state[int(pid)] = {k: (tensors[v["tensor"]] if "tensor" in v else v["value"]) for k, v in entry.items()}
    groups = []
    for saved, current in zip(structure["param_groups"], opt.param_groups, strict=True):
        group = dict(saved)
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        group.update({k: current[k] for k in _DEVICE_FLAGS if k in current})
        groups.append(group)
    opt.load_state_dict({"state": state, "param_groups": groups})


# ---------------------------------------------------------------------------------------------- state file


def save_state(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write the state atomically (``meta`` gets ``format`` and ``time``)."""
    from safetensors.torch import save_file

    full = {"format": STATE_FORMAT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta}
    path = Path(path)
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata={STATE_KEY: json.dumps(full, sort_keys=True)})
    return path


def load_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and sanity-check a state file; any problem is a one-line :class:`CheckpointError`."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CheckpointError(f"{path}: corrupt or truncated training state file ({first})") from exc
    try:
        meta = json.loads(header[STATE_KEY])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a ganeval training state file (no valid '{STATE_KEY}' metadata)") from exc
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else "?"
        raise CheckpointError(f"{path}: unsupported training state format {fmt}")
    required = ("iteration", "run", "opt_g", "opt_d", "elapsed")
    missing = [k for k in required if k not in meta]
    if missing or not isinstance(meta["iteration"], int) or meta["iteration"] < 0:
        raise CheckpointError(f"{path}: training state metadata is incomplete (missing {', '.join(missing) or 'iteration'})")
    for prefix in ("g.", "d."):
        if not any(k.startswith(prefix) for k in tensors):
            raise CheckpointError(f"{path}: training state file lacks the {prefix.rstrip('.')} weights")
    return tensors, meta


def subdict(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix.`` with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with every key under ``prefix.``."""
    return {f"{prefix}.{k}": v for k, v in state.items()}


# ---------------------------------------------------------------------------------------------- run folder


def append_log(path: str | os.PathLike[str], rows: list[tuple[int, float, float, float, float, float]]) -> None:
    """Append rows to the CSV log (header first when new), flushed to disk."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8") as fh:
        if new:
            fh.write(LOG_HEADER + "\n")
        for it, *vals in rows:
            fh.write(f"{it}," + ",".join(f"{v:.6g}" for v in vals[:4]) + f",{vals[4]:.3f}\n")
        fh.flush()
        os.fsync(fh.fileno())


def truncate_log(path: str | os.PathLike[str], iteration: int) -> int:
    """Keep the header and the complete, increasing rows up to ``iteration`` (rewritten atomically); returns kept rows."""
    path = Path(path)
    kept: list[str] = []
    if path.exists():
        last = -1
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        for line in lines[1:-1]:  # the last element follows the final newline (or is a partial row)
            fields = line.split(",")
            try:
                it = int(fields[0])
                for f in fields[1:]:
                    float(f)
            except ValueError:
                continue
            if len(fields) == 6 and last < it <= iteration:
                kept.append(line)
                last = it
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join([LOG_HEADER, *kept]) + "\n", encoding="utf-8")
    return len(kept)


def remove_stale_tmp(out: Path) -> list[Path]:
    """Delete the temporary files an interrupted atomic write of this trainer left in ``out``."""
    removed = []
    for entry in out.iterdir() if out.is_dir() else []:
        if _TMP_RE.match(entry.name) and entry.is_file():
            entry.unlink()
            removed.append(entry)
    return removed
