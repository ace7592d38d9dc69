"""``train()``: the bundled GAN trainer (seed MLP or DCGAN) with crash-safe checkpoints and exact resume.

Order of writes at a checkpoint iteration ``t`` (each write atomic):
log rows up to ``t`` (appended, fsynced) → ``train_state.safetensors`` at ``t`` → ``ckpt_t`` → ``samples_t``.
So a checkpoint never exists beyond the state's iteration; on resume the state's own weights re-create a
missing ``ckpt_t``/``samples_t``, log rows after ``t`` are dropped, stale ``.tmp`` files are removed, and
an existing checkpoint is never overwritten with different weights.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeval.checkpoints import checkpoint_name, list_checkpoints, save_checkpoint
from ganeval.data.mnist import load_mnist, mnist_checksum
from ganeval.errors import CheckpointError, as_path, first_line, short
from ganeval.models import CONFIG_ERRORS, build_discriminator, build_generator
from ganeval.models.mlp import set_batchnorm_variance
from ganeval.train.adam import make_adam
from ganeval.train.grid import GRID_COLS, GRID_ROWS, sample_grid
from ganeval.train.lock import held_runs
from ganeval.train.losses import EMA, STEPS
from ganeval.train.plan import RunSettings, TrainPlan, plan_train
from ganeval.train.recipes import TrainError, derive_seed
from ganeval.train.state import (
    LOG_NAME,
    STATE_NAME,
    append_log,
    flatten_optimizer,
    prefixed,
    remove_stale_tmp,
    restore_optimizer,
    samples_name,
    save_state,
    subdict,
    truncate_log,
)
from ganeval.version import __version__


@dataclass(frozen=True)
class TrainResult:
    """What a call to :func:`train` produced."""

    out_dir: Path
    iteration: int
    checkpoints: list[Path]
    seconds: float
    resumed_from: int | None = None
    target: int = 0  # the run's planned last iteration: below it, the run paused (stop file, screening)


class _Trainer:
    """Models, optimisers, random streams and the run folder of one training run."""

    def __init__(self, out: Path, run: RunSettings, dev: torch.device, images: np.ndarray,
                 saved: tuple[dict[str, torch.Tensor], dict[str, Any]] | None, target: int) -> None:
        self.out, self.run, self.dev = out, run, dev
        r = run.recipe
        torch.manual_seed(run.seed)
        try:
            self.g = build_generator(run.model, run.config).to(dev).train()
            set_batchnorm_variance(self.g, r.bn_variance)  # the recipe's running-variance update (models/mlp.py)
            self.d = build_discriminator(run.model, run.config).to(dev).train()
        except CONFIG_ERRORS as exc:  # plan_train checked the config on the meta device; this is the last guard
            where = f"{out / STATE_NAME}: " if saved is not None else ""
            raise TrainError(f"{where}config {short(run.config)} does not fit model {run.model!r} ({first_line(exc)})") from exc
        bf16 = r.precision == "bf16"
        if bf16:  # tensor cores / AMX like NHWC; weights stay fp32, so checkpoints do not change form
            self.g.to(memory_format=torch.channels_last)
            self.d.to(memory_format=torch.channels_last)
        self.amp = functools.partial(torch.autocast, dev.type, dtype=torch.bfloat16, enabled=bf16)
        self.ema = EMA(self.g, r.ema_decay, r.ema_warmup) if r.ema_decay else None
        fused = dev.type == "cuda"
        self.opt_g = make_adam(self.g.parameters(), r, fused=fused)  # in the recipe's epsilon form (train/adam.py)
        self.opt_d = make_adam(self.d.parameters(), r, fused=fused)
        self.gen_data = torch.Generator(device=dev).manual_seed(derive_seed(run.seed, "data"))
        self.gen_z = torch.Generator(device=dev).manual_seed(derive_seed(run.seed, "latent"))
        self.latent_dim = int(self.g.latent_dim)
        cpu = torch.Generator().manual_seed(derive_seed(run.seed, "samples"))
        self.sample_z = torch.randn(GRID_ROWS * GRID_COLS, self.latent_dim, generator=cpu)
        self.data = torch.from_numpy(np.array(images, dtype=np.uint8)).to(dev)  # uint8 on the device, ~47 MB
        self.step = STEPS[r.loss]
        self.iteration, self.elapsed = 0, 0.0
        self.every: dict[str, int] = {}  # the run's checkpoint and log cadence, stored in its state
        self.target = target  # the run's planned last iteration (the lr schedule and checkpoint metadata use it)
        if saved is not None:
            self._restore(*saved)

    # ------------------------------------------------------------------------------------- state
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        t = {**prefixed("g", self.g.state_dict()), **prefixed("d", self.d.state_dict())}
        if self.ema is not None:
            t.update(prefixed("g_ema", self.ema.model.state_dict()))
        t["rng.data"], t["rng.latent"] = self.gen_data.get_state(), self.gen_z.get_state()
        t["rng.torch_cpu"] = torch.get_rng_state()
        if self.dev.type == "cuda":
            t["rng.torch_cuda"] = torch.cuda.get_rng_state(self.dev)
        t["sample_z"] = self.sample_z
        return t

    def _save_state(self, iterations: int) -> None:
        tg, sg = flatten_optimizer("opt_g", self.opt_g)
        td, sd = flatten_optimizer("opt_d", self.opt_d)
        meta = {"iteration": self.iteration, "elapsed": round(self.elapsed, 3), "iterations": iterations,
                **self.every, "run": self.run.as_dict(), "opt_g": sg, "opt_d": sd, "device_type": self.dev.type,
                "package_version": __version__, "data_sha256": mnist_checksum("train")}
        save_state(self.out / STATE_NAME, {**self._state_tensors(), **tg, **td}, meta)

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        path = self.out / STATE_NAME
        try:
            self.g.load_state_dict(subdict(tensors, "g"))
            self.d.load_state_dict(subdict(tensors, "d"))
            if self.ema is not None:
                self.ema.model.load_state_dict(subdict(tensors, "g_ema"))
            restore_optimizer(self.opt_g, tensors, meta["opt_g"])
            restore_optimizer(self.opt_d, tensors, meta["opt_d"])
            z = tensors["sample_z"]
            if z.shape != self.sample_z.shape or z.dtype != self.sample_z.dtype:
                raise ValueError(f"sample_z is {z.dtype} {tuple(z.shape)}, expected {self.sample_z.dtype} "
                                 f"{tuple(self.sample_z.shape)}")
            self.sample_z = z
            if meta.get("device_type") == self.dev.type:
                self.gen_data.set_state(tensors["rng.data"])
                self.gen_z.set_state(tensors["rng.latent"])
                torch.set_rng_state(tensors["rng.torch_cpu"])
                if self.dev.type == "cuda" and "rng.torch_cuda" in tensors:
                    torch.cuda.set_rng_state(tensors["rng.torch_cuda"], self.dev)
            else:  # a generator state of one device type cannot drive another: start fresh, reproducible streams
                it = meta["iteration"]
                self.gen_data.manual_seed(derive_seed(self.run.seed, f"data@{it}"))
                self.gen_z.manual_seed(derive_seed(self.run.seed, f"latent@{it}"))
                print(f"ganeval: note: resuming a {meta.get('device_type')} run on {self.dev.type}; "
                      "random streams are re-seeded, so the run is not bit-identical to an uninterrupted one", file=sys.stderr)
        except KeyError as exc:
            raise CheckpointError(f"{path}: training state lacks {exc} for model {self.run.model!r}") from exc
        except (RuntimeError, ValueError, TypeError) as exc:
            # torch's first line of a load_state_dict error only names the class; the next ones name keys and shapes
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            detail = (lines[1] if len(lines) > 1 and lines[0].startswith("Error(s)") else lines[0]) if lines \
                else exc.__class__.__name__
            raise CheckpointError(f"{path}: training state does not fit model {self.run.model!r} ({detail[:200]})") from exc
        self.iteration, self.elapsed = int(meta["iteration"]), float(meta["elapsed"])

    # ------------------------------------------------------------------------------------- outputs
    def _ckpt_meta(self) -> dict[str, Any]:
        return {"model": self.run.model, "config": self.run.config, "latent_dim": self.latent_dim,
                "iteration": self.iteration, "target_iterations": self.target, "seed": self.run.seed, "dataset": "mnist-train",
                "data_sha256": mnist_checksum("train"), "ema": self.ema is not None, "recipe": self.run.recipe.as_dict()}

    def _check_existing(self, path: Path) -> bool:
        """True when ``path`` already holds exactly the current weights; raises when it holds others."""
        if not path.exists():
            return False
        from safetensors.torch import load_file

        want = prefixed("g", self.g.state_dict())
        if self.ema is not None:
            want.update(prefixed("g_ema", self.ema.model.state_dict()))
        try:
            have = load_file(str(path))
        except Exception as exc:  # any unreadable file is refused, never replaced
            reason = exc.__class__.__name__
            raise CheckpointError(f"{path}: exists but cannot be read; refusing to overwrite it ({reason})") from exc
        same = have.keys() == want.keys() and all(same_bits(have[k], v.detach().cpu()) for k, v in want.items())
        if not same:
            raise CheckpointError(f"{path}: exists with different weights; refusing to overwrite it (move it away to resume)")
        return True

    def checkpoint(self, iterations: int) -> None:
        """State, then checkpoint, then sample grid, for the current iteration."""
        ckpt = self.out / checkpoint_name(self.iteration)
        exists = self._check_existing(ckpt)
        self._save_state(iterations)
        self.ensure_outputs(exists)

    def ensure_outputs(self, ckpt_exists: bool | None = None) -> None:
        """Write the current iteration's checkpoint and grid when missing (they follow from the state)."""
        ckpt = self.out / checkpoint_name(self.iteration)
        if not (self._check_existing(ckpt) if ckpt_exists is None else ckpt_exists):
            save_checkpoint(ckpt, self.g, self._ckpt_meta(), ema=self.ema.model if self.ema is not None else None)
        png = self.out / samples_name(self.iteration)
        if not png.exists():
            sample_grid(self.ema.model if self.ema is not None else self.g, self.sample_z, png)

    # ------------------------------------------------------------------------------------- loop
    def _real(self) -> torch.Tensor:
        bs = self.run.recipe.batch_size
        idx = torch.randint(0, self.data.shape[0], (bs,), device=self.dev, generator=self.gen_data)
        return self.data.index_select(0, idx).unsqueeze(1).float().div_(127.5).sub_(1.0)

    def _noise(self) -> torch.Tensor:
        return torch.randn(self.run.recipe.batch_size, self.latent_dim, device=self.dev, generator=self.gen_z)

    def fit(self, iterations: int, checkpoint_every: int, log_every: int, progress: bool, stop_at: int | None = None,
            stop_file: Path | None = None) -> None:
        """Train from the current iteration toward ``iterations`` (the schedule's end), pausing after ``stop_at``
        or at the first checkpoint after ``stop_file`` appears."""
        from tqdm import tqdm

        log = self.out / LOG_NAME
        acc = torch.zeros(4, device=self.dev)
        n_acc = 0
        t0, base = time.perf_counter(), self.elapsed
        tty = sys.stderr.isatty()
        end = min(iterations, stop_at) if stop_at else iterations
        bar = tqdm(total=end, initial=self.iteration, desc=f"train {self.run.model}", unit="it", disable=not progress,
                   mininterval=0.5 if tty else 30.0, dynamic_ncols=True)
        try:
            while self.iteration < end:
                it = self.iteration + 1
                if self.run.recipe.lr_decay_start is not None:
                    lr = self.run.recipe.lr_at(it, iterations)
                    for opt in (self.opt_g, self.opt_d):
                        for group in opt.param_groups:
                            group["lr"] = lr
                acc += self.step(self.g, self.d, self.opt_g, self.opt_d, self._real, self._noise, self.run.recipe.n_critic,
                                 self.amp)
                if self.ema is not None:
                    self.ema.update(self.g, it)
                n_acc += 1
                self.iteration = it
                is_ckpt = it % checkpoint_every == 0 or it == end
                if is_ckpt or it % log_every == 0:
                    d_loss, d_acc, g_loss, g_acc = (acc / n_acc).tolist()  # the only device sync
                    acc.zero_()
                    n_acc = 0
                    self.elapsed = base + time.perf_counter() - t0
                    append_log(log, [(it, d_loss, d_acc, g_loss, g_acc, self.elapsed)])
                    bar.set_postfix_str(f"D loss {d_loss:.4f}, acc {100 * d_acc:.1f}% | G loss {g_loss:.4f}, "
                                        f"acc {100 * g_acc:.1f}%", refresh=False)
                bar.update(1)
                if is_ckpt:
                    self.checkpoint(iterations)
                    if stop_file is not None and stop_file.exists():
                        break
        finally:
            bar.close()


def train(out: str | os.PathLike[str], model: str | None = None, *, iterations: int | None = None,
          batch_size: int | None = None, lr: float | None = None, n_critic: int | None = None,
          lr_decay_start: int | None = None, precision: str | None = None, seed: int | None = None,
          device: str | torch.device = "auto", checkpoint_every: int | None = None, log_every: int | None = None,
          resume: bool = False,
          data_dir: str | os.PathLike[str] | None = None, config: dict[str, Any] | None = None,
          progress: bool = True, stop_at: int | None = None,
          stop_file: str | os.PathLike[str] | None = None) -> TrainResult:
    """Train ``model`` (``mlp`` or ``dcgan``; default ``mlp``) on MNIST-train, writing checkpoints to ``out``.

    ``lr_decay_start`` (default: none) makes the learning rate fall linearly from there toward 0 at the last
    iteration, the usual finish that sharpens GAN samples. ``precision="bf16"`` runs the forward passes under bf16
    autocast with channels_last (about 2.8× faster on a CPU with AMX; weights, optimiser and checkpoints stay fp32);
    it is part of the recipe, so a run keeps it on resume. A constant-rate run may be given ``lr_decay_start`` on
    resume when it starts at or after the run's current iteration, since that leaves the past unchanged.
    ``None`` hyper-parameters take the model's recipe
    (see :data:`ganeval.train.recipes.RECIPES`), or, with ``resume``, the values stored in the run's state file
    (explicit values that differ are an error).
    ``stop_at`` pauses the run after that iteration (with a checkpoint), on the schedule of the full run: resuming it
    later gives the same run as one without the pause (seed screening uses this). ``stop_file`` pauses the run the
    same way at the first checkpoint after that file appears (``ganeval watch --stop-file`` raises it when training
    has gone bad); it must not exist when training starts.
    ``config`` overrides the model's constructor config (Python API only). Raises :class:`GanevalError`
    subclasses (``ganeval.errors.GanevalError``) for bad input, before anything in ``out`` is touched.
    """
    settings = dict(iterations=iterations, batch_size=batch_size, lr=lr, n_critic=n_critic, lr_decay_start=lr_decay_start,
                    precision=precision, seed=seed, device=device, checkpoint_every=checkpoint_every, log_every=log_every,
                    resume=resume, config=config, stop_at=stop_at, stop_file=stop_file)
    plan = plan_train(out, model, **settings)  # bad input refused before anything in out is touched
    images = load_mnist("train", None if data_dir is None else as_path(data_dir, "--data-dir", TrainError))[0]
    with held_runs(plan.out):
        # again, held: another trainer may have written the folder meanwhile. The stop file was checked above: one
        # raised since (a watch seeing the folder appear) is a pause at the first checkpoint, not a refusal
        plan = plan_train(out, model, **{**settings, "stop_file": None})
        return _train(plan, images, progress, stop_at, stop_file)


def _train(plan: TrainPlan, images: Any, progress: bool, stop_at: int | None,
           stop_file: str | os.PathLike[str] | None) -> TrainResult:
    out, saved, dev = plan.out, plan.saved, plan.device
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    fork_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):  # the caller's global RNG state is left as it was
        trainer = _Trainer(out, plan.run, dev, images, saved, plan.target)
        trainer.every = {"checkpoint_every": plan.checkpoint_every, "log_every": plan.log_every}  # kept for a resume
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(out)
        if (out / LOG_NAME).exists():  # a fresh run's log is created with its first row
            truncate_log(out / LOG_NAME, trainer.iteration)
        start = trainer.iteration
        if start > 0:
            trainer.ensure_outputs()
        if saved is not None and int(saved[1].get("iterations", plan.target)) != plan.target and start < plan.target:
            trainer._save_state(plan.target)  # a watch reads the run's planned end here: not "finished" while extended
        trainer.fit(plan.target, plan.checkpoint_every, plan.log_every, progress, stop_at,
                    Path(stop_file) if stop_file is not None else None)
    return TrainResult(out, trainer.iteration, [r.path for r in list_checkpoints(out)], trainer.elapsed,
                       start if saved else None, plan.target)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors hold the very same values, bit for bit: NaN weights (a diverged run) equal themselves,
    as ``torch.equal`` would not say, so a run that went to NaN still resumes from its own checkpoints."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.reshape(-1).contiguous().view(torch.uint8), b.reshape(-1).contiguous().view(torch.uint8))


__all__ = ["TrainResult", "RunSettings", "train"]
