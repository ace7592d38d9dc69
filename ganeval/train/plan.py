"""Every check a training run makes before it touches its folder: flags, the folder, the resumed state, the device.

:func:`plan_train` is what :func:`ganeval.train.train` runs first; early stopping and seed screening run it before
judging or training anything, so their refusals are the trainer's, one line each, with nothing written.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganeval.checkpoints import list_checkpoints
from ganeval.errors import CheckpointError, as_path, first_line, require_bool, short
from ganeval.features.base import resolve_device
from ganeval.models import CONFIG_ERRORS, build_meta, get_model
from ganeval.train.lock import LOCK_NAME
from ganeval.train.recipes import PRECISIONS, Recipe, TrainError, get_recipe, seed_problem
from ganeval.train.state import STATE_NAME, load_state


@dataclass(frozen=True)
class RunSettings:
    """Everything that fixes the trajectory of a run (stored in the state file, checked on resume)."""

    model: str
    config: dict[str, Any]
    seed: int
    recipe: Recipe

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "config": self.config, "seed": self.seed, "recipe": self.recipe.as_dict()}


@dataclass(frozen=True)
class TrainPlan:
    """A checked run: its settings, the saved state to resume (if any), its planned last iteration, the device."""

    out: Path
    run: RunSettings
    saved: tuple[dict[str, torch.Tensor], dict[str, Any]] | None
    target: int
    device: torch.device
    checkpoint_every: int = 1000  # given, else the run's own (a resume keeps its cadence), else 1000
    log_every: int = 100

    @property
    def start(self) -> int:
        """The iteration the run continues from (0 for a fresh run)."""
        return int(self.saved[1]["iteration"]) if self.saved else 0


#: Largest batch: the MNIST training set (batches are drawn from it with replacement; more only fills memory).
MAX_BATCH = 60_000


def _positive(name: str, value: float | None, integer: bool = True) -> None:
    if value is None:
        return
    # a count must be an integer (the API's iterations=10.5 was cut to 10, batch_size=4.0 raised inside torch), and
    # a number a number ("10" raised a TypeError); both refused before anything in --out is touched
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        raise TrainError(f"{name} must be {'a positive integer' if integer else 'a positive number'} (got {value!r})")
    # a real number must also be finite: --lr inf trained NaN weights, exited 0, and then its own state was refused;
    # and finite in float32, the optimiser's type: --lr 1e39 overflowed in Adam's first step with a traceback
    integer = isinstance(value, numbers.Integral)
    if not value > 0 or not (integer or math.isfinite(value)):
        raise TrainError(f"{name} must be positive{'' if integer else ' and finite'} (got {value})")
    if not integer and value > torch.finfo(torch.float32).max:
        raise TrainError(f"{name} must be at most {torch.finfo(torch.float32).max:.3g}, float32's largest (got {value})")


def _python(value: Any) -> Any:
    """``value`` with numpy scalars made Python's, inside dicts, lists and tuples."""
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_python(v) for v in value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | int):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool | int | float):
        return float(value)
    return value


def _written_by_the_run(stop: Path, out: Path) -> bool:
    """Whether the trainer itself creates ``stop``: ``out`` or a folder above it, or a checkpoint, sample grid or state
    file in it."""
    stop, out = stop.resolve(), out.resolve()
    return out.is_relative_to(stop) or (stop.parent == out and stop.name.startswith(("ckpt_", "train_", "samples_")))


def _resolve(saved: dict[str, Any] | None, model: str | None, config: dict[str, Any] | None, seed: int | None,
             batch_size: int | None, lr: float | None, n_critic: int | None, lr_decay_start: int | None = None,
             precision: str | None = None, at: int = 0, where: Path | str = STATE_NAME) -> RunSettings:
    if saved is None:
        name = model or "mlp"
        recipe = get_recipe(name)
        overrides = {k: v for k, v in (("batch_size", batch_size), ("lr", lr), ("n_critic", n_critic),
                                       ("lr_decay_start", lr_decay_start), ("precision", precision)) if v is not None}
        recipe = dataclasses.replace(recipe, **overrides)
        full = {**get_model(name).defaults, **(config or {})}
        return RunSettings(name, full, 0 if seed is None else int(seed), recipe)
    try:
        fields = dict(saved["recipe"])
        fields["betas"] = tuple(fields["betas"])
        run = RunSettings(str(saved["model"]), dict(saved["config"]), int(saved["seed"]), Recipe(**fields))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: run settings are malformed ({exc.__class__.__name__}: {exc})") from exc
    get_recipe(run.model)
    if run.recipe.lr_decay_start is None and lr_decay_start is not None and lr_decay_start >= at:
        # A decay added to a constant-rate run from its current iteration on leaves the past as it was: the run stays
        # identical to a fresh one started with this --lr-decay-start.
        run = dataclasses.replace(run, recipe=dataclasses.replace(run.recipe, lr_decay_start=lr_decay_start))
    asked = {"--model": (model, run.model), "--seed": (seed, run.seed), "--batch-size": (batch_size, run.recipe.batch_size),
             "--lr": (lr, run.recipe.lr), "--n-critic": (n_critic, run.recipe.n_critic),
             "--lr-decay-start": (lr_decay_start, run.recipe.lr_decay_start),
             "--precision": (precision, run.recipe.precision)}
    if config is not None and {**run.config, **config} != run.config:
        raise TrainError(f"resume: config {config} differs from the run's {run.config}")
    for flag, (value, stored) in asked.items():
        if value is not None and value != stored:
            hint = (f" (a constant-rate run takes a decay that starts at or after its iteration {at})"
                    if flag == "--lr-decay-start" and stored is None else "")
            raise TrainError(f"resume: {flag} {value} differs from the run's {flag} {stored}; omit it or use the same "
                             f"value{hint}")
    return run


def _device(device: str | torch.device) -> torch.device:
    """``auto`` → CUDA when present, else CPU; unknown or unavailable devices refused as a ``TrainError``."""
    return resolve_device(device, TrainError)


def min_batch_size(model: str, config: dict[str, Any]) -> int:
    """The smallest batch the model trains with: 2 when it has ``BatchNorm1d`` (one value per channel at batch 1
    is refused by BatchNorm in training mode), else 1 (``BatchNorm2d`` normalises over the pixels too).

    The models are built on the meta device: no weight is allocated and no random number drawn."""
    try:
        nets = (build_meta(model, config, "generator"), build_meta(model, config, "discriminator"))
    except CONFIG_ERRORS as exc:
        raise TrainError(f"config {short(config)} does not fit model {model!r} ({first_line(exc)})") from exc
    return 2 if any(isinstance(m, torch.nn.BatchNorm1d) for net in nets for m in net.modules()) else 1


def plan_train(out: str | os.PathLike[str], model: str | None = None, *, iterations: int | None = None,
               batch_size: int | None = None, lr: float | None = None, n_critic: int | None = None,
               lr_decay_start: int | None = None, precision: str | None = None, seed: int | None = None,
               device: str | torch.device = "auto", checkpoint_every: int | None = None, log_every: int | None = None,
               resume: bool = False, config: dict[str, Any] | None = None, stop_at: int | None = None,
               stop_file: str | os.PathLike[str] | None = None) -> TrainPlan:
    """Check a run as :func:`ganeval.train.train` takes it (same arguments) and return its plan; reads ``out`` only.

    Raises :class:`ganeval.errors.GanevalError` subclasses with one line naming the flag or file.
    """
    out = as_path(out, "--out", TrainError)
    require_bool(resume, "resume", TrainError)  # resume="no" resumed
    if model is not None and (not isinstance(model, str) or not model):  # "" trained mlp
        raise TrainError(f"model must be a name such as 'mlp' or 'dcgan', not {short(model)}")
    if config is not None and not isinstance(config, dict):
        raise TrainError(f"config must be a dict of the model's constructor arguments, not {short(config)}")
    if config is not None and not (isinstance(shape := config.get("img_shape", (1, 28, 28)), list | tuple)
                                   and tuple(shape) == (1, 28, 28)):
        raise TrainError(f"config img_shape {config['img_shape']} is not MNIST's (1, 28, 28), the images trained on")
    for name, value in (("--iterations", iterations), ("--batch-size", batch_size), ("--lr", lr),
                        ("--n-critic", n_critic), ("--checkpoint-every", checkpoint_every), ("--log-every", log_every),
                        ("--screen-iterations", stop_at)):
        _positive(name, value, integer=name != "--lr")
    if batch_size is not None and batch_size > MAX_BATCH:
        raise TrainError(f"--batch-size must be at most {MAX_BATCH:,}, the MNIST training images (got {batch_size})")
    # a run begun with a negative seed (before they were refused) resumes with it given, as screening gives it
    if seed is not None and (problem := seed_problem(seed, legacy=resume is True and (out / STATE_NAME).is_file())):
        raise TrainError(f"--seed {problem}")
    # numpy scalars (np.int64(8)) as Python's: they reach the state file's JSON, which failed at the first checkpoint
    batch_size, n_critic = (None if v is None else int(v) for v in (batch_size, n_critic))  # checked above
    lr, config = None if lr is None else float(lr), _python(config)
    if out.exists() and not out.is_dir():
        raise TrainError(f"{out}: exists and is not a folder")
    state = out / STATE_NAME
    saved = None
    if resume:
        if state.exists():
            saved = load_state(state)
        elif list_checkpoints(out):
            raise CheckpointError(f"{state}: missing, so the checkpoints in {out} cannot be resumed")
    elif out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):  # a lock file a killed run left: empty
        raise TrainError(f"{out}: output folder is not empty; pass --resume to continue the run in it, or choose another --out")
    if stop_file is not None and as_path(stop_file, "--stop-file", TrainError).exists():
        raise TrainError(f"{stop_file}: stop file already exists; remove it to train (it pauses the run at a checkpoint)")
    if stop_file is not None and _written_by_the_run(Path(stop_file), out):
        raise TrainError(f"--stop-file {stop_file}: the run writes that path itself (--out {out}), so it would pause at "
                         "its first checkpoint; choose another path, e.g. beside the run folder")
    if precision is not None and precision not in PRECISIONS:
        raise TrainError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if lr_decay_start is not None and (isinstance(lr_decay_start, bool) or not isinstance(lr_decay_start, numbers.Integral)
                                       or lr_decay_start < 0):
        raise TrainError(f"--lr-decay-start must be an integer of 0 or more (got {lr_decay_start!r})")
    lr_decay_start = None if lr_decay_start is None else int(lr_decay_start)
    at = saved[1]["iteration"] if saved else 0
    run = _resolve(saved[1]["run"] if saved else None, model, config, seed, batch_size, lr, n_critic, lr_decay_start,
                   precision, at, state)
    target = int(iterations or (saved[1].get("iterations") if saved else None) or run.recipe.iterations)
    if saved and iterations and iterations < at:
        raise TrainError(f"{out}: --iterations {iterations} is below the run's iteration {at}; "
                         "nothing would be trained (checkpoints are never rewound)")
    if run.recipe.lr_decay_start is not None and run.recipe.lr_decay_start >= target:
        raise TrainError(f"--lr-decay-start {run.recipe.lr_decay_start} must be below --iterations {target}")
    try:
        low = min_batch_size(run.model, run.config)
    except TrainError as exc:
        if saved:
            raise TrainError(f"{state}: {exc}") from exc
        raise
    if run.recipe.batch_size < low:
        where = f"{state}: the run's " if saved and batch_size is None else ""
        raise TrainError(f"{where}--batch-size {run.recipe.batch_size} is too small for model {run.model!r} "
                         f"(BatchNorm in training needs at least {low})")
    every = {k: int(v if v is not None else (saved[1].get(k) if saved else None) or default)
             for k, v, default in (("checkpoint_every", checkpoint_every, 1000), ("log_every", log_every, 100))}
    return TrainPlan(out, run, saved, target, _device(device), **every)


__all__ = ["RunSettings", "TrainPlan", "min_batch_size", "plan_train"]
