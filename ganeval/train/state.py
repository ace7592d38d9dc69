"""The resumable training state (``train_state.safetensors``) and the run folder's small files.

The state file is safetensors: every tensor (G, EMA G, D, optimiser moments, RNG states, fixed sample
latents) under a prefixed name, and one JSON object in the header (key ``ganeval_train``) with the iteration,
run settings and the optimisers' non-tensor structure. Nothing is pickled; writes are atomic.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ganeval.atomic import atomic_path
from ganeval.checkpoints import layout_problem
from ganeval.errors import CheckpointError, first_line, short
from ganeval.models import CONFIG_ERRORS, build_meta
from ganeval.models.mlp import BN_VARIANCE_FORMS
from ganeval.train.recipes import ADAM_EPS_FORMS, PRECISIONS, RECIPES, seed_problem

STATE_NAME = "train_state.safetensors"
LOG_NAME = "train_log.csv"
LOG_HEADER = "iteration,d_loss,d_acc,g_loss,g_acc,seconds"
STATE_KEY = "ganeval_train"
STATE_FORMAT = 1
_TMP_RE = re.compile(r"^\.(ckpt_[0-9]+\.safetensors|samples_[0-9]+\.png|train_state\.safetensors|train_log\.csv)\..*\.tmp$")
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
    """Inverse of :func:`flatten_optimizer`; device-specific flags (fused, foreach...) stay those of ``opt``.

    Moments that do not match their parameter's shape are a ``ValueError`` (torch would take them and fail later)."""
    params = [p for group in opt.param_groups for p in group["params"]]
    state = {}
    for pid, entry in structure["state"].items():
        index = int(pid)
        if not 0 <= index < len(params):
            raise ValueError(f"optimiser state for parameter {pid}, of {len(params)}")
        state[index] = {k: (tensors[v["tensor"]] if "tensor" in v else v["value"]) for k, v in entry.items()}
        for key, value in state[index].items():
            if key.startswith(("exp_avg", "max_exp_avg")) and (not isinstance(value, torch.Tensor)
                                                                or value.shape != params[index].shape):
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"optimiser {key} of parameter {pid} is {shape}, expected {tuple(params[index].shape)}")
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
    if missing:
        raise CheckpointError(f"{path}: training state metadata is incomplete (missing {', '.join(missing)})")
    problem = check_meta(meta, tensors)
    if problem:
        raise CheckpointError(f"{path}: damaged training state: {problem}")
    for prefix in ("g.", "d."):
        if not any(k.startswith(prefix) for k in tensors):
            raise CheckpointError(f"{path}: training state file lacks the {prefix.rstrip('.')} weights")
    return tensors, meta


def _integer(low: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low), f"an integer of at least {low}"


def _number(low: float, high: float = math.inf, open_low: bool = False) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and (v > low if open_low else v >= low) and v < high)
    what = f"a number {'>' if open_low else '≥'} {low:g}" + (f" and < {high:g}" if high < math.inf else "")
    return ok, what


def _optional(check: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v is None or check[0](v)), f"null or {check[1]}"


def _betas(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_number(0.0, 1.0)[0](b) for b in v)


_RECIPE_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "loss": (lambda v: isinstance(v, str), "a loss name"), "lr": _number(0.0, open_low=True),
    "betas": (_betas, "two numbers in [0, 1)"), "eps": _number(0.0), "batch_size": _integer(1),
    "iterations": _integer(1), "n_critic": _integer(1), "ema_decay": _optional(_number(0.0, 1.0)),
    "ema_warmup": _integer(0), "lr_decay_start": _optional(_integer(0)),
    "precision": (lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
    "adam_eps": (lambda v: v in ADAM_EPS_FORMS, f"one of {', '.join(ADAM_EPS_FORMS)}"),
    "bn_variance": (lambda v: v in BN_VARIANCE_FORMS, f"one of {', '.join(BN_VARIANCE_FORMS)}"),
}
# Absent from states written before the field: the trainer then takes the dataclass default ("torch" for both forms).
_OPTIONAL_RECIPE = ("n_critic", "ema_decay", "ema_warmup", "lr_decay_start", "precision", "adam_eps", "bn_variance")


def check_meta(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> str | None:
    """What is wrong with a state's metadata (types and ranges of every field the trainer reads), or None."""

    def bad(field: str, value: Any, what: str) -> str:
        shown = repr(value)
        return f"{field} is {shown[:60] + '…' if len(shown) > 60 else shown}, expected {what}"

    top = {"iteration": _integer(0), "elapsed": _number(0.0), "iterations": _optional(_integer(1)),
           "checkpoint_every": _optional(_integer(1)), "log_every": _optional(_integer(1))}
    for field, (ok, what) in top.items():
        if not ok(meta.get(field)):
            return bad(field, meta.get(field), what)
    run = meta["run"]
    if not isinstance(run, dict):
        return bad("run", run, "an object")
    if not isinstance(run.get("model"), str) or run["model"] not in RECIPES:
        return bad("run.model", run.get("model"), f"one of {', '.join(RECIPES)}")
    if not isinstance(run.get("config"), dict):
        return bad("run.config", run.get("config"), "an object")
    if not isinstance(run.get("seed"), int) or seed_problem(run["seed"], legacy=True):
        return bad("run.seed", run.get("seed"), "an integer with -2**63 <= seed < 2**64 (torch's range)")
    recipe = run.get("recipe")
    if not isinstance(recipe, dict):
        return bad("run.recipe", recipe, "an object")
    unknown = sorted(recipe.keys() - _RECIPE_FIELDS.keys())
    if unknown:
        return f"run.recipe has an unknown field {unknown[0]!r}"
    for field, (ok, what) in _RECIPE_FIELDS.items():
        if (field in recipe or field not in _OPTIONAL_RECIPE) and not ok(recipe.get(field)):
            return bad(f"run.recipe.{field}", recipe.get(field), what)
    if recipe["loss"] != RECIPES[run["model"]].loss:
        return bad("run.recipe.loss", recipe["loss"], f"{RECIPES[run['model']].loss!r} (model {run['model']!r})")
    for name in ("opt_g", "opt_d"):
        opt = meta[name]
        if not (isinstance(opt, dict) and isinstance(opt.get("state"), dict) and isinstance(opt.get("param_groups"), list)
                and all(isinstance(g, dict) for g in opt["param_groups"])):
            return bad(name, opt, "an object with 'state' and 'param_groups'")
        for pid, entry in opt["state"].items():
            if not pid.isdigit() or not isinstance(entry, dict):
                return bad(f"{name}.state.{pid}", entry, "an object under a parameter number")
            for key, ref in entry.items():
                if not isinstance(ref, dict) or not ("value" in ref or ref.get("tensor") in tensors):
                    return bad(f"{name}.state.{pid}.{key}", ref, "a value or the name of a tensor in the file")
    if not isinstance(meta.get("device_type", ""), str):
        return bad("device_type", meta.get("device_type"), "a device type")
    for key in ("sample_z", "rng.data", "rng.latent", "rng.torch_cpu"):
        if key not in tensors:
            return f"tensor {key!r} is missing"
    if tensors["sample_z"].ndim != 2 or not tensors["sample_z"].is_floating_point():
        return f"tensor 'sample_z' is {tensors['sample_z'].dtype} {tuple(tensors['sample_z'].shape)}, expected float rows"
    return _models_problem(run["model"], run["config"], bool(recipe.get("ema_decay")), tensors)


def _models_problem(model: str, config: dict[str, Any], ema: bool, tensors: dict[str, torch.Tensor]) -> str | None:
    """Whether ``run.config`` builds the model, and the state's weights fit it: checked on meta-device skeletons
    (:func:`ganeval.models.build_meta`), so a state's config never allocates more than the file's own tensors."""
    nets = {}
    for part in ("generator", "discriminator"):
        try:
            nets[part] = build_meta(model, config, part, file_tensors=len(tensors))
        except CONFIG_ERRORS as exc:
            return f"run.config {short(config)} does not fit model {model!r} ({first_line(exc)})"
    for prefix, part in (("g", "generator"), ("d", "discriminator"), *((("g_ema", "generator"),) if ema else ())):
        problem = layout_problem(nets[part], {k: v.shape for k, v in subdict(tensors, prefix).items()})
        if problem is not None:
            return f"the {prefix}.* weights do not fit model {model!r} with its run.config ({problem[:200]})"
    return None


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
