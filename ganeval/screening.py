"""Seed screening: train several seeds a short way, score them with the MNIST metrics, finish the best one.

GAN runs of one recipe differ a lot by seed (docs/results.md: the shipped DCGAN is the best of three screened
seeds). Each seed's run is paused at ``screen_iterations`` on the schedule of the full run, so the chosen seed's
continuation is exactly the run it would have been without the pause, and the others can be finished later with
``ganeval train --resume --out OUT/seed_S``. Re-running the same screen resumes it: finished parts are not redone.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganeval.atomic import write_set
from ganeval.checkpoints import checkpoint_name
from ganeval.errors import require_count
from ganeval.evaluate import score
from ganeval.train.lock import LOCK_NAME, held_runs
from ganeval.train.loop import TrainResult, train
from ganeval.train.plan import plan_train
from ganeval.train.recipes import TrainError, get_recipe
from ganeval.train.state import LOG_NAME

#: Screening metrics and whether lower is better.
SCREEN_METRICS = {"mnist_fd": True, "class_kl": True, "mnist_is": False}
SCREEN_COLUMNS = ("seed", "iteration", "mnist_fd", "mnist_fd_ci_low", "mnist_fd_ci_high", "mnist_is", "modes_covered",
                  "class_kl", "train_seconds", "checkpoint")


@dataclass
class ScreenResult:
    """One row per seed (``table``), the chosen seed, and the chosen run's training result when it was finished."""

    out_dir: Path
    table: pd.DataFrame
    chosen: int
    metric: str
    final: TrainResult | None

    @property
    def chosen_dir(self) -> Path:
        return seed_dir(self.out_dir, self.chosen)


def seed_dir(out: Path, seed: int) -> Path:
    """The run folder of one screened seed."""
    return out / f"seed_{seed}"


def _seconds_at(run: Path, iteration: int) -> float | None:
    """Training seconds the run had spent when it reached ``iteration`` (from its train_log.csv)."""
    try:
        log = pd.read_csv(run / LOG_NAME)
    except (OSError, ValueError):
        return None
    hit = log.loc[log["iteration"] == iteration]
    return float(hit.iloc[0, -1]) if len(hit) else None


def _choose(table: pd.DataFrame, metric: str) -> int:
    """The seed with the best finite value of ``metric`` (NaN and ±inf never win: an infinite MNIST FD marks samples
    holding NaN/Inf values, a diverged seed; ties go to the first seed listed). Refused when no seed has one."""
    values = table[metric].astype(float)
    if values.isna().all():
        raise TrainError(f"seed screening: no seed could be scored on {metric}")
    finite = np.isfinite(values)
    if not finite.any():
        def seeds(mask: pd.Series) -> str:
            return ", ".join(str(int(s)) for s in table.loc[mask, "seed"])

        unscored = f"; not scored: seed(s) {seeds(values.isna())}" if values.isna().any() else ""
        raise TrainError(f"seed screening: no seed has a finite {metric} at iteration {int(table['iteration'].iloc[0])}: "
                         f"seed(s) {seeds(np.isinf(values))} diverged ({metric} = inf, samples holding NaN/Inf values)"
                         f"{unscored}; none is finished")
    key = (values if SCREEN_METRICS[metric] else -values).where(finite, math.inf)
    return int(table.loc[key.idxmin(), "seed"])


def screen_seeds(out: str | os.PathLike[str], seeds: list[int], screen_iterations: int, *, metric: str = "mnist_fd",
                 num_samples: int = 2000, bootstrap: int = 100, finish: bool = True, device: str = "auto",
                 progress: bool = True, **train_kwargs: Any) -> ScreenResult:
    """Train each of ``seeds`` to ``screen_iterations`` in ``OUT/seed_S``, score that checkpoint with the MNIST metrics
    (``num_samples``, the shared latent set), write ``OUT/screen.json`` and ``screen.csv``, and with ``finish``
    continue the best seed by ``metric`` to the run's full length. ``train_kwargs`` go to :func:`ganeval.train.train`
    (model, iterations, batch_size, lr_decay_start, …) for every seed."""
    out = Path(out)
    require_count(num_samples, 2, "--screen-samples", TrainError)  # before any seed is trained, not at its scoring
    require_count(bootstrap, 0, "bootstrap", TrainError)
    if not seeds or len(set(seeds)) != len(seeds):
        raise TrainError(f"--screen-seeds needs distinct seeds (got {seeds})")
    if metric not in SCREEN_METRICS:
        raise TrainError(f"--screen-metric must be one of {', '.join(SCREEN_METRICS)} (got {metric!r})")
    for key in ("seed", "resume", "stop_at", "out"):
        if key in train_kwargs:
            raise TrainError(f"seed screening sets {key} itself")
    target = train_kwargs.get("iterations") or get_recipe(train_kwargs.get("model") or "mlp").iterations
    if screen_iterations >= target:
        raise TrainError(f"--screen-iterations {screen_iterations} must be below the run's --iterations {target}")
    if out.exists() and not out.is_dir():
        raise TrainError(f"{out}: exists and is not a folder")
    strays = sorted(p.name for p in out.iterdir() if not p.name.startswith(("seed_", "screen.", LOCK_NAME))) \
        if out.is_dir() else []
    if strays:
        raise TrainError(f"{out}: holds {strays[0]!r}, which is not part of a seed screen; choose another --out")
    checks = {k: v for k, v in train_kwargs.items() if k not in ("data_dir",)}
    for seed in seeds:  # every seed's run is checked before any is trained
        run = seed_dir(out, seed)
        plan = plan_train(run, seed=seed, resume=True, stop_at=screen_iterations, device=device, **checks)
        if screen_iterations >= plan.target:
            raise TrainError(f"{run}: --screen-iterations {screen_iterations} must be below the run's --iterations "
                             f"{plan.target}")
        if plan.start > screen_iterations and not (run / checkpoint_name(screen_iterations)).is_file():
            raise TrainError(f"{run}: --screen-iterations {screen_iterations} is below this seed's iteration "
                             f"{plan.start}, and it has no checkpoint at {screen_iterations} to score; screen at a "
                             "later iteration or in another --out")
    with held_runs(out, *(seed_dir(out, seed) for seed in seeds)):  # between the screen, its scoring and the finish too
        return _screen(out, seeds, screen_iterations, num_samples, bootstrap, metric, finish, device, progress, train_kwargs)


def _screen(out: Path, seeds: list[int], screen_iterations: int, num_samples: int, bootstrap: int, metric: str,
            finish: bool, device: str, progress: bool, train_kwargs: dict[str, Any]) -> ScreenResult:
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        train(seed_dir(out, seed), seed=seed, resume=True, stop_at=screen_iterations, device=device, progress=progress,
              **train_kwargs)
        ckpt = seed_dir(out, seed) / checkpoint_name(screen_iterations)
        if not ckpt.is_file():
            raise TrainError(f"{ckpt}: missing after screening")  # the checks above rule this out
        df = score(ckpt, num_samples=num_samples, metrics=("mnist_is", "mnist_fd", "modes"), bootstrap=bootstrap,
                   device=device, progress=False)
        row = df.iloc[0]
        rows.append({"seed": seed, "iteration": screen_iterations, **{c: row.get(c) for c in SCREEN_COLUMNS[2:8]},
                     "train_seconds": _seconds_at(seed_dir(out, seed), screen_iterations),
                     "checkpoint": str(ckpt)})
    table = pd.DataFrame(rows, columns=list(SCREEN_COLUMNS))
    chosen = _choose(table, metric)
    summary = {"metric": metric, "lower_is_better": SCREEN_METRICS[metric], "chosen_seed": chosen,
               "chosen_run": str(seed_dir(out, chosen)), "screen_iterations": screen_iterations, "num_samples": num_samples,
               "bootstrap": bootstrap, "train": {k: v for k, v in train_kwargs.items() if k != "data_dir"},
               "rows": json.loads(table.to_json(orient="records"))}
    # One set, screen.json (what the CLI points to) renamed last: an interrupt or a failed write leaves both as before
    write_set({out / "screen.csv": table.to_csv(index=False).encode("utf-8"),
               out / "screen.json": (json.dumps(summary, indent=2, default=str) + "\n").encode("utf-8")})
    final = None
    if finish:
        final = train(seed_dir(out, chosen), seed=chosen, resume=True, device=device, progress=progress, **train_kwargs)
    return ScreenResult(out, table, chosen, metric, final)
