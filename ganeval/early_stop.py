"""Early stopping: score each new checkpoint as training writes it, and stop when training has gone bad.

The seed tutorial warns that the MLP GAN degrades if it trains too long. After every checkpoint the new one is
compared with the best so far (``ganeval.comparing``: the same latents and resampled indices, so the interval of
the difference is paired). Training stops when ``patience`` checkpoints in a row are worse than the best by more
than ``threshold`` (relative) with an interval of the difference above 0, and the last of them still is on a
fresh latent set. The stop is a pause on the full schedule: ``ganeval train --resume`` continues the same run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ganeval.atomic import write_text
from ganeval.checkpoints import checkpoint_name, list_checkpoints
from ganeval.compare_tests import PERMUTATIONS, SEQUENTIAL, check_test_read, min_permutations
from ganeval.comparing import compare
from ganeval.errors import GanevalError, require_count, require_number
from ganeval.evaluate import score
from ganeval.hint_use import read_hints
from ganeval.memory import check_memory
from ganeval.metrics.interval import check_bootstrap
from ganeval.options import ScoreOptions, python_scalars
from ganeval.sources.base import HINT_KEYS, InputHints
from ganeval.summary import json_value, row_dict
from ganeval.threads import PRECISIONS
from ganeval.train.lock import held_runs
from ganeval.train.loop import TrainResult, train
from ganeval.train.plan import plan_train
from ganeval.train.recipes import TrainError

STOP_METRICS = ("mnist_fd", "fid", "custom_fd")
REPORT_NAME = "early_stop.json"


#: ``EarlyStopper.permutations``' default (fewer than compare's: a judgement per checkpoint).
JUDGING_PERMUTATIONS = 200


@dataclass
class EarlyStopper:
    """Watches checkpoints in training order; ``observe`` says whether to stop."""

    metric: str = "mnist_fd"
    patience: int = 3
    threshold: float = 0.10
    num_samples: int = 2000
    bootstrap: int = 100
    device: str = "auto"
    #: Re-labellings of the permutation test that decides "worse" (``compare``; 0: the bootstrap interval decides).
    permutations: int = JUDGING_PERMUTATIONS
    #: Stop that test at the h-th re-labelling as extreme (Besag–Clifford): "no difference" is known in ~h / p draws.
    sequential: int = SEQUENTIAL
    best: Path | None = None
    best_value: float = math.inf
    worse_in_a_row: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    #: Feature precision of the judgements (``score --precision``): bf16 is faster on AMX CPUs and GPUs but moves
    #: features by about 1 %, so values are comparable only within one precision.
    precision: str = "fp32"
    #: More keyword arguments of ``score``/``compare``: input hints (``generator``, ``z_dim``...), ``reference``,
    #: ``feature_network`` (for ``custom_fd``).
    extra: dict[str, Any] = field(default_factory=dict)
    #: Where a private link to the best checkpoint is kept (``watch`` sets it): a trainer that keeps only its last
    #: few checkpoints deleted the best's file, after which no checkpoint could be compared with it. None: the
    #: files are compared where they are (ganeval's own trainer never deletes them).
    keep_dir: Path | None = None
    _kept: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        python_scalars(self)  # numpy scalars reach early_stop.json
        if self.metric not in STOP_METRICS:
            raise TrainError(f"--stop-metric must be one of {', '.join(STOP_METRICS)} (got {self.metric!r})")
        require_count(self.patience, 1, "--patience", TrainError)
        require_number(self.threshold, "--stop-threshold", "be a number ≥ 0", lambda v: math.isfinite(v) and v >= 0,
                       TrainError)
        if self.precision not in PRECISIONS:
            raise TrainError(f"the judging precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        # the device and precision before any iteration is trained (or checkpoint watched), not at the first judgement
        from ganeval.features.base import check_precision, resolve_device

        try:
            check_precision(self.precision, resolve_device(self.device))
        except GanevalError as exc:
            raise TrainError(str(exc)) from exc
        # checked before any iteration is trained
        require_count(self.num_samples, 2, "samples per checkpoint (train --stop-samples, watch --num-samples)", TrainError)
        require_count(self.bootstrap, 0, "--bootstrap", TrainError)
        # extra takes what score/compare read besides the rule: the rule's own settings there (seed, bootstrap, N,
        # metrics) overrode it silently (a confirmation on the judgement's own latents), a typo failed only at the
        # first judgement
        if not isinstance(self.extra, dict):  # a string was read as a set of its characters
            raise TrainError(f"EarlyStopper extra must be a dict (input hints, reference, feature_network), not "
                             f"{type(self.extra).__name__} {self.extra!r}")
        if unknown := sorted(set(self.extra) - {*HINT_KEYS, "reference", "feature_network", "feature_network_kwargs"}):
            raise TrainError(f"EarlyStopper extra {', '.join(map(repr, unknown))}: extra takes input hints, reference and "
                             "feature_network (the rule's own settings are EarlyStopper's fields)")
        try:  # a hint's value (z_dim=1.5) failed every judgement while the watch went on
            InputHints.from_dict(self.extra)
        except GanevalError as exc:
            raise TrainError(f"EarlyStopper extra: {exc}") from exc
        require_count(self.permutations, 0, "--permutations", TrainError)
        require_count(self.sequential, 0, "--sequential", TrainError)
        if 0 < self.permutations < (least := min_permutations(0.95)):  # compare refused it at the second checkpoint
            raise TrainError(f"--permutations {self.permutations} cannot find any difference at the 95% level (the "
                             f"smallest p-value is 1/(permutations + 1)): give at least {least}, or 0")
        try:  # a test setting no judgement reads: refused now (200, the default here, is compare's default there)
            check_test_read(PERMUTATIONS if self.permutations == JUDGING_PERMUTATIONS else self.permutations,
                            self.sequential, (self.metric,), self.bootstrap, [1, 1])
        except GanevalError as exc:
            raise TrainError(str(exc)) from exc
        check_bootstrap(self.bootstrap, self.num_samples, TrainError)
        check_memory(self.num_samples, self.bootstrap, (self.metric,), ScoreOptions.batch_size, resolve_device(self.device),
                     precision=self.precision, error=TrainError)  # beyond this machine: refused now, not at the first judgement
        if self.bootstrap == 0:  # compare's verdict is then "not measurable": nothing would ever count as worse
            raise TrainError("--bootstrap 0: the stopping rule counts a checkpoint as worse only beyond noise, which "
                             "needs the paired interval (and the permutation test beside it); without one no checkpoint "
                             "could count and only a diverged run would stop: give at least 2 (default 100)")

    def observe(self, ckpt: Path, iteration: int) -> bool:
        """Score ``ckpt`` against the best so far; True when the last ``patience`` checkpoints were all worse."""
        row: dict[str, Any] = {"iteration": iteration, "checkpoint": str(ckpt)}
        held = self._hold(ckpt)
        try:
            return self._observe(ckpt, held, iteration, row)
        finally:
            if held != ckpt and held != self._kept:
                held.unlink(missing_ok=True)  # a candidate that did not become the best

    def _hold(self, ckpt: Path) -> Path:
        """A private hard link (else copy) of ``ckpt`` in ``keep_dir`` to judge and, if it becomes the best, to keep;
        ``ckpt`` itself without a ``keep_dir`` or when neither can be made (the file is judged where it is)."""
        if self.keep_dir is None:
            return ckpt
        held = self.keep_dir / ("new" if self._kept is None or self._kept.parent.name != "new" else "next") / ckpt.name
        try:
            held.parent.mkdir(parents=True, exist_ok=True)
            held.unlink(missing_ok=True)
            try:
                os.link(ckpt, held)
            except OSError:
                shutil.copy2(ckpt, held)
        except OSError:
            with contextlib.suppress(OSError):  # a copy that failed part-way (a full disk) would hold that space
                held.unlink(missing_ok=True)
            return ckpt
        return held

    def _keep(self, held: Path) -> None:
        """``held`` is the new best: keep it (when it is a private link), and let the previous best's link go."""
        old, self._kept = self._kept, (held if self.keep_dir is not None and held.parent.parent == self.keep_dir else None)
        if old is not None and old != held:
            old.unlink(missing_ok=True)

    def _baseline(self) -> Path:
        assert self.best is not None
        return self._kept or self.best

    def _observe(self, ckpt: Path, held: Path, iteration: int, row: dict[str, Any]) -> bool:
        if self.best is None:
            first = score(held, **self._options(held))
            if first["status"].iloc[0] == "error":
                raise TrainError(f"{ckpt}: could not be scored for early stopping: {_reason(held, first['error'].iloc[0])}")
            value = float(first[self.metric].iloc[0])
            row.update(value=value, best=str(ckpt), verdict="first")
            self.best, self.best_value = ckpt, value
            self._keep(held)
            if math.isinf(value):  # diverged from the start: nothing finite to be worse than
                row["verdict"], self.worse_in_a_row = "diverged", 1
        else:
            comp = compare({"best": self._baseline(), "new": held}, **self._test(), **self._options(self._baseline(), held))
            if comp.failed:
                raise TrainError(f"{ckpt}: could not be scored for early stopping: "
                                 f"{_reason(held, comp.members['error'].dropna().iloc[0])}")
            d = comp.differences.set_index("metric").loc[self.metric]
            value = float(d["value"])
            row.update(value=value, best_value=float(d["baseline_value"]), difference=float(d["difference"]),
                       relative=float(d["relative"]), ci_low=float(d["ci_low"]), ci_high=float(d["ci_high"]),
                       verdict=str(d["verdict"]), p_value=float(d["p_value"]),
                       relabellings=None if pd.isna(d["relabellings"]) else int(d["relabellings"]))
            if math.isinf(value):  # samples hold NaN/Inf: a diverged run, whose weights do not come back
                row["verdict"] = "diverged"
                self.worse_in_a_row += 1
            elif value < float(d["baseline_value"]):
                self.best, self.best_value, self.worse_in_a_row = ckpt, value, 0
                self._keep(held)
            elif d["verdict"] == "worse" and float(d["relative"]) > self.threshold:
                self.worse_in_a_row += 1
            else:
                self.worse_in_a_row = 0
            confirm = row["verdict"] != "diverged"  # NaN weights are no sampling fluke: nothing to confirm
            if self.worse_in_a_row >= self.patience and confirm and not self._confirmed(held, row):
                self.worse_in_a_row = 0
            row["best"] = str(self.best)
        row["worse_in_a_row"] = self.worse_in_a_row
        self.history.append(row)
        return self.worse_in_a_row >= self.patience

    def _confirmed(self, ckpt: Path, row: dict[str, Any]) -> bool:
        """Before stopping, the same comparison on fresh latents (seed 1): the best was chosen on seed 0, which
        favours it (the winner's curse), so a stop must hold where it was not chosen."""
        comp = compare({"best": self._baseline(), "new": ckpt}, **self._test(), **self._options(self._baseline(), ckpt, seed=1))
        d = comp.differences.set_index("metric").loc[self.metric]
        ok = not comp.failed and d["verdict"] == "worse" and float(d["relative"]) > self.threshold
        row.update(confirm_difference=float(d["difference"]), confirm_ci_low=float(d["ci_low"]),
                   confirm_ci_high=float(d["ci_high"]), confirmed=bool(ok))
        return bool(ok)

    def _test(self) -> dict[str, int]:
        """compare's permutation test settings where it runs (on MNIST FD or custom_fd, beside bootstrap replicates;
        FID's 2048 dimensions are beyond it), else none: compare refuses settings no test reads."""
        runs = self.metric != "fid" and self.bootstrap > 0
        return {"permutations": self.permutations, "sequential": self.sequential} if runs else {"permutations": 0}

    def _options(self, *targets: Path, seed: int = 0) -> dict[str, Any]:
        """The scoring options of judging ``targets``, with the input hints (``extra``) any of them reads: a watched
        folder's ganeval checkpoint reads no ``--generator``, the weight files beside it do."""
        return read_hints(targets, {"metrics": (self.metric,), "num_samples": self.num_samples, "bootstrap": self.bootstrap,
                                    "device": self.device, "progress": False, "seed": seed, "precision": self.precision,
                                    **self.extra})

    def summary(self, stopped: bool, iteration: int) -> dict[str, Any]:
        """What ``early_stop.json`` holds: the rule, whether and where training stopped, the best checkpoint, the history."""
        return {"metric": self.metric, "patience": self.patience, "threshold": self.threshold,
                "num_samples": self.num_samples, "bootstrap": self.bootstrap, "permutations": self.permutations,
                "sequential": self.sequential, "precision": self.precision, "stopped": stopped, "iteration": iteration,
                "best": str(self.best) if self.best else None,
                "best_value": json_value(self.best_value),
                "history": [row_dict(r) for _, r in pd.DataFrame(self.history).iterrows()]}  # inf as "inf", as summary.json


def _reason(ckpt: Path, error: Any) -> str:
    """A scoring error without the scored path in front (the checkpoint, or the watch's private link to it, which is
    gone once the watch ends): the message names the checkpoint once."""
    text = str(error)
    return text[len(f"{ckpt}: "):] if text.startswith(f"{ckpt}: ") else text


@dataclass
class EarlyStopResult:
    """The training result, whether the rule stopped it, and the stopper (best checkpoint, history)."""

    train: TrainResult
    stopped: bool
    stopper: EarlyStopper


def train_with_early_stop(out: str | os.PathLike[str], stopper: EarlyStopper, *, resume: bool = False,
                          checkpoint_every: int | None = None, **train_kwargs: Any) -> EarlyStopResult:
    """Train like :func:`ganeval.train.train`, pausing at every checkpoint to let ``stopper`` judge it.

    ``OUT/early_stop.json`` is rewritten after every checkpoint. With ``resume`` the run's existing checkpoints are
    judged first (a stopped run resumed with the same rule stops again at once; change the rule to continue).
    Everything :func:`ganeval.train.train` refuses is refused here first, with nothing judged or written.
    """
    out = Path(out)
    if "stop_at" in train_kwargs:
        raise TrainError("early stopping sets stop_at itself")
    checks = {k: v for k, v in train_kwargs.items() if k not in ("data_dir", "progress")}
    # the trainer's own checks, before any checkpoint is judged: the folder, the state, the flags against the run
    plan = plan_train(out, resume=resume, checkpoint_every=checkpoint_every, **checks)
    with held_runs(out):  # between segments too: another trainer could take the folder while a checkpoint is judged
        return _train_and_judge(out, stopper, plan.target, plan.checkpoint_every, train_kwargs)


def _train_and_judge(out: Path, stopper: EarlyStopper, target: int, checkpoint_every: int,
                     train_kwargs: dict[str, Any]) -> EarlyStopResult:
    stopped, iteration = False, 0
    for ref in list_checkpoints(out) if out.is_dir() else []:
        iteration = ref.iteration
        stopped = stopper.observe(ref.path, ref.iteration)
        if stopped:
            break
    result = None
    while not stopped and iteration < target:
        stop_at = min(target, (iteration // checkpoint_every + 1) * checkpoint_every)
        result = train(out, resume=True, stop_at=stop_at, checkpoint_every=checkpoint_every, **train_kwargs)
        if result.iteration <= iteration:  # the run is at its own end (or paused): judging it again changes nothing
            break
        iteration = result.iteration
        stopped = stopper.observe(out / checkpoint_name(iteration), iteration)
        write_text(out / REPORT_NAME, json.dumps(stopper.summary(stopped, iteration), indent=2) + "\n")
    if result is None:  # nothing was trained: report the run as it is
        result = TrainResult(out, iteration, [r.path for r in list_checkpoints(out)] if out.is_dir() else [], 0.0, iteration)
    write_text(out / REPORT_NAME, json.dumps(stopper.summary(stopped, iteration), indent=2) + "\n")
    return EarlyStopResult(result, stopped, stopper)
