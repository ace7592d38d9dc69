"""Watch a run folder while a trainer writes checkpoints into it: judge each new one as it lands, keep the report
current, and raise a stop file when training has gone bad.

The rule is ``train --early-stop``'s (:class:`~ganeval.early_stop.EarlyStopper`: each checkpoint against the best
so far with a paired interval, ``patience`` in a row, confirmed on fresh latents), so a run trained by another
process, on another machine sharing the folder, or by another framework that writes ganeval checkpoints gets the
same answer. Any trainer can honour the stop file by checking that it exists; ``ganeval train --stop-file`` does.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ganeval.atomic import output_file, output_folder, report_folder, write_text
from ganeval.checkpoints import list_checkpoints
from ganeval.distributed import refuse_torchrun
from ganeval.early_stop import EarlyStopper
from ganeval.errors import GanevalError, OptionError, as_path, require_count, require_number
from ganeval.evaluate import score
from ganeval.hint_use import read_hints
from ganeval.interrupts import held_signals
from ganeval.sources.base import InputHints
from ganeval.sources.state_dicts import STATE_EXTS
from ganeval.train.state import STATE_KEY, STATE_NAME

WATCH_NAME = "watch.json"
#: The watch's private folder in OUT (a link to the best checkpoint), removed when the watch ends.
KEEP_NAME = ".ganeval_watch"
REASONS = ("stop rule", "training finished", "until", "idle", "interrupted")


@dataclass
class WatchResult:
    """Why the watch ended, what it judged, what failed, and the stopper (best checkpoint, history)."""

    reason: str
    judged: list[int]
    failed: dict[str, str]
    stopper: EarlyStopper
    stop_file: Path | None = None
    report_errors: list[str] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        """True when the early-stopping rule fired (and the stop file, if any, was written)."""
        return self.reason == "stop rule"


def training_target(run_dir: Path) -> tuple[int, int] | None:
    """``(iteration, iterations)`` from a ganeval trainer's state header, or None (no state, or another trainer's)."""
    from safetensors import safe_open

    path = run_dir / STATE_NAME
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = json.loads((fh.metadata() or {})[STATE_KEY])
        return int(meta["iteration"]), int(meta["iterations"])
    except Exception:  # absent, being replaced, or not ours: the watch then ends on --until or idleness
        return None


def _settled(path: Path, settle_s: float) -> bool:
    """A file counts as written once it has not changed for ``settle_s`` seconds (trainers without atomic writes)."""
    try:
        return time.time() - path.stat().st_mtime >= settle_s
    except OSError:
        return False


class _Watch:
    def __init__(self, run_dir: Path, stopper: EarlyStopper, out: Path, stop_file: Path | None,
                 report: dict[str, Any] | None, emit: Callable[[str], None]) -> None:
        self.run_dir, self.stopper, self.out, self.stop_file, self.report = run_dir, stopper, out, stop_file, report
        self.emit = emit
        self.pattern = "*"
        self.judged: list[int] = []
        self.last_iteration = -1  # judged or failed
        self.failed: dict[str, str] = {}
        self.seen: set[str] = set()  # files judged (or failed): looked at again only when a failed one changes
        self.failed_as: dict[str, tuple[int, int]] = {}  # a file that could not be scored: its (size, mtime) then
        self.retrying: set[str] = set()  # failed files that changed since: judged again, in their iteration's place
        self.report_errors: list[str] = []

    def new_checkpoints(self, settle_s: float) -> list[tuple[Path, int]]:
        """Settled checkpoints newer than the last judged one, in iteration order (older late arrivals are noted)."""
        last = self.last_iteration
        fresh: list[tuple[Path, int]] = []
        for path, iteration in self.listing():
            retry = self.changed_since_failing(path, iteration) or str(path) in self.retrying
            if not retry and (str(path) in self.failed or str(path) in self.seen):
                continue
            if any(iteration == it for _, it in fresh):
                break  # another file of an iteration about to be judged: the next poll takes it if that one fails
            if iteration in self.judged:
                why = f"iteration {iteration} was already judged from another file; each iteration is judged once"
                self.failed[str(path)] = why
                self.retrying.discard(str(path))
                self.emit(f"{path}: {why}")
                continue
            if iteration < last and not retry:
                self.failed[str(path)] = f"appeared after iteration {last} was judged; not judged out of order"
                self.emit(f"{path}: appeared after iteration {last} was judged; not judged out of order")
                continue
            if not _settled(path, settle_s):
                break  # judge in order: wait for this one before any later one
            fresh.append((path, iteration))
        return fresh

    def changed_since_failing(self, path: Path, iteration: int) -> bool:
        """True when ``path`` could not be scored, has changed since (a writer that paused longer than ``--settle``
        has finished it), and no later iteration has been judged: it is then judged again, in order."""
        then = self.failed_as.get(str(path))
        if then is None or _signature(path) in (None, then) or any(it >= iteration for it in self.judged):
            return False
        del self.failed_as[str(path)]  # it stays in ``failed`` until judged: a watch ending first records it unjudged
        self.seen.discard(str(path))
        self.retrying.add(str(path))
        self.emit(f"{path}: changed since it could not be scored; judged again once settled")
        return True

    def listing(self) -> list[tuple[Path, int]]:
        """ganeval checkpoints; with a ``generator`` hint, weight files whose names carry their iteration."""
        if not self.stopper.extra.get("generator"):
            return sorted(((r.path, r.iteration) for r in list_checkpoints(self.run_dir)), key=lambda f: (f[1], f[0].name))
        found = []
        for p in self.run_dir.glob(self.pattern):
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in STATE_EXTS:
                nums = re.findall(r"[0-9]+", p.stem)
                if nums:
                    found.append((p, int(nums[-1])))
                elif str(p) not in self.failed:
                    self.failed[str(p)] = "no iteration number in its name; not judged"
                    self.emit(f"{p}: no iteration number in its name; not judged")
        return sorted(found, key=lambda f: (f[1], f[0].name))  # one iteration's files: the first by name first

    def judge(self, path: Path, iteration: int) -> bool:
        """One checkpoint through the rule; a checkpoint that cannot be scored is recorded and skipped."""
        self.last_iteration = max(self.last_iteration, iteration)
        self.seen.add(str(path))
        self.retrying.discard(str(path))
        signature = _signature(path)  # before scoring: a change while it is scored is a change too
        try:
            stop = self.stopper.observe(path, iteration)
        except GanevalError as exc:
            why = self.own_name(str(exc), path)
            self.failed[str(path)] = why
            if signature is not None:
                self.failed_as[str(path)] = signature
            self.emit(why if why.startswith(str(path)) else f"{path}: {why}")  # the path once
            return False
        self.judged.append(iteration)
        self.failed.pop(str(path), None)  # judged again once its writer finished it
        if stop:
            self.raise_stop_file()  # first, so a trainer waiting on it stops before anything else happens
        self.emit(_line(self.stopper))
        return stop

    def own_name(self, text: str, path: Path) -> str:
        """``text`` naming the checkpoint where it names the watch's private link to it (gone when the watch ends)."""
        keep = self.stopper.keep_dir
        if keep is not None:
            for sub in ("new", "next"):
                text = text.replace(str(keep / sub / path.name), str(path))
        return text

    def write_report(self) -> None:
        if self.report is None:
            return
        # with a generator class, the run's generator files only (the folder may also hold D_*.pt, G_latest.pt...)
        target: Any = [p for p, _ in self.listing() if str(p) not in self.failed]
        if not self.stopper.extra.get("generator") or not target:
            target = self.run_dir
        try:
            score(target, out=self.out / "report", write_report=True, **read_hints([target], {**self._report_extra(), **self.report}))
        except (GanevalError, OSError) as exc:  # a full disk too: the judging and the stop file go on; the next
            # checkpoint rewrites the report
            text = str(exc) if isinstance(exc, GanevalError) else f"{exc.filename or self.out / 'report'}: {exc.strerror or exc}"
            self.report_errors.append(text)
            self.emit(f"report not written: {text}")

    def _report_extra(self) -> dict[str, Any]:
        """The judging's extra keywords for the report, less the inputs its metrics do not read (a feature network
        judged on custom_fd, a report of score's defaults): ``score`` refuses inputs no asked metric reads."""
        from ganeval.options import ScoreOptions, without_unread

        metrics = ScoreOptions(metrics=(self.report or {}).get("metrics") or ScoreOptions().metrics).metrics  # "a,b" too
        return without_unread(self.stopper.extra, metrics)

    def save(self, reason: str | None) -> None:
        summary = self.stopper.summary(reason == "stop rule", self.judged[-1] if self.judged else 0)
        summary.update(run=str(self.run_dir), ended=reason, failed=self.failed,
                       stop_file=str(self.stop_file) if self.stop_file else None)
        write_text(self.out / WATCH_NAME, json.dumps(summary, indent=2) + "\n")

    def clean(self) -> None:
        """Remove the watch's private folder (its link to the best checkpoint), when the watch made it."""
        if self.stopper.keep_dir == self.out / KEEP_NAME:
            shutil.rmtree(self.stopper.keep_dir, ignore_errors=True)

    def raise_stop_file(self) -> None:
        if self.stop_file is None:
            return
        last = self.stopper.history[-1]
        body = {"stop": True, "run": str(self.run_dir), "iteration": last["iteration"], "best": str(self.stopper.best),
                "metric": self.stopper.metric, "best_value": self.stopper.best_value,
                "reason": f"{self.stopper.patience} checkpoint(s) in a row worse than the best by more than "
                          f"{100 * self.stopper.threshold:g}% beyond noise, confirmed on fresh latents"}
        self.stop_file.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.stop_file, json.dumps(body, indent=2) + "\n")


def _signature(path: Path) -> tuple[int, int] | None:
    """A file's (size, mtime in ns), or None when it cannot be read: what tells a finished file from a half-written one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _line(stopper: EarlyStopper) -> str:
    h = stopper.history[-1]
    it, metric = h["iteration"], stopper.metric
    if h["verdict"] == "first":
        return f"iteration {it}: {metric} {h['value']:.4g} (first)"
    text = (f"iteration {it}: {metric} {h['value']:.4g} vs best {h['best_value']:.4g}, difference {h['difference']:+.4g} "
            f"[{h['ci_low']:+.4g}, {h['ci_high']:+.4g}]: {h['verdict']}")
    if h["worse_in_a_row"]:
        text += f" ({h['worse_in_a_row']}/{stopper.patience} in a row)"
    if "confirmed" in h:
        text += "; confirmed on fresh latents" if h["confirmed"] else "; not confirmed on fresh latents"
    return text


def _check_report(report: Any) -> None:
    """Refuse report options ``score`` would refuse (a misspelt keyword, an N whose features outgrow this machine)
    before any checkpoint is judged: each report would fail ("report not written") while the watch went on."""
    from ganeval.options import ScoreOptions

    if not isinstance(report, Mapping):
        raise OptionError(f"report must be a dict of ganeval.score keyword arguments, e.g. {{'metrics': ['mnist_fd']}} "
                          f"(got the {type(report).__name__} {report!r})")
    known = {f.name for f in fields(ScoreOptions)}
    inputs = set(inspect.signature(score).parameters) - {"target", "options", "out", "write_report"}
    if taken := sorted(k for k in report if k in ("target", "out", "write_report")):
        raise OptionError(f"report: {', '.join(taken)} set by the watch itself (the report is OUT/report/ of each "
                          "checkpoint judged so far); leave them out")
    if unknown := sorted(set(report) - known - inputs):
        raise OptionError(f"report: unknown score option(s) {unknown}; known: {sorted(known | inputs)}")
    ScoreOptions.from_kwargs(**{k: v for k, v in report.items() if k in known}).check()
    InputHints.from_dict(dict(report))  # a hint's value (z_dim=1.5): every report would fail


def watch(run_dir: str | os.PathLike[str], stopper: EarlyStopper | None = None, *, interval_s: float = 30.0,
          idle_timeout_s: float | None = 3600.0, until: int | None = None, stop_file: str | os.PathLike[str] | None = None,
          settle_s: float = 5.0, report: dict[str, Any] | None = None, out: str | os.PathLike[str] | None = None,
          emit: Callable[[str], None] = print, pattern: str = "*") -> WatchResult:
    """Judge ``run_dir``'s checkpoints as they appear, until the rule fires, training finishes, or nothing new comes.

    Ends when: the early-stopping rule fires (``stop_file`` is then written); a ganeval trainer's state says the
    run reached its last iteration and that checkpoint is judged; a checkpoint at or past ``until`` is judged; or no
    new checkpoint has appeared for ``idle_timeout_s`` (None waits for ever). Ctrl-C ends it as ``interrupted``.
    ``report`` (keyword arguments of :func:`ganeval.score`) rewrites ``OUT/report/`` after each new checkpoint.
    With ``stopper.extra["generator"]`` the run's weight files (``G_001000.pt``...) are judged with that generator
    class; the last number in each name is its iteration, and ``pattern`` (a glob, e.g. ``G_*.pt``) leaves out the
    other files a trainer writes there (discriminators, optimisers).
    ``OUT/watch.json`` (OUT defaults to ``run_dir``) holds the rule, the history and why the watch ended.
    A watch runs as one process: under torchrun (``WORLD_SIZE`` > 1) it is refused before any work.
    """
    refuse_torchrun("watch")
    run_dir = as_path(run_dir, "run_dir")
    if stopper is not None and not isinstance(stopper, EarlyStopper):
        raise GanevalError(f"stopper must be an EarlyStopper, not {type(stopper).__name__} {stopper!r}")
    if not callable(emit):
        raise GanevalError(f"emit must be a callable taking a line (e.g. print), not {emit!r}")
    if not isinstance(pattern, str) or not pattern or os.path.isabs(pattern):
        raise GanevalError(f"pattern must be a glob relative to the run folder, e.g. 'G_*.pt' (got {pattern!r})")
    if pattern != "*" and "generator" not in (stopper.extra if stopper is not None else {}):
        raise GanevalError("pattern needs a generator (stopper.extra['generator']): it picks the weight files of "
                           "your generator class; ganeval checkpoints are ckpt_*.safetensors")
    if run_dir.exists() and not run_dir.is_dir():
        raise GanevalError(f"{run_dir}: is not a folder (watch a run's checkpoint folder)")
    for name, value in (("--interval", interval_s), ("--settle", settle_s)):
        require_number(value, name, "be a number ≥ 0", lambda v: math.isfinite(v) and v >= 0)
    if idle_timeout_s is not None:
        require_number(idle_timeout_s, "--idle-timeout", "be > 0 seconds", lambda v: v > 0)
    if until is not None:
        require_count(until, 0, "--until (an iteration)")
    stop_path = as_path(stop_file, "--stop-file") if stop_file is not None else None
    if stop_path is not None and stop_path.exists():
        raise GanevalError(f"{stop_path}: stop file already exists (from an earlier stop?); remove it to watch again")
    # where the watch writes, refused now when a file stands in the way: found by the first write, it ended a watch
    # after hours of judging, or when the rule fired, without the stop file the trainer waits for
    out_dir = output_folder(out if out is not None else run_dir, "--out")
    if stop_path is not None:
        output_file(stop_path, "--stop-file")
    if report is not None:
        _check_report(report)
        report_folder(out_dir / "report", out_dir / "report")
    w = _Watch(run_dir, stopper or EarlyStopper(), out_dir, stop_path, report, emit)
    w.pattern = pattern
    if w.stopper.keep_dir is None:  # the best checkpoint's private link: the trainer may delete its file
        w.stopper.keep_dir = w.out / KEEP_NAME
    last_new = time.monotonic()
    reason = None
    try:
        while reason is None:
            fresh = w.new_checkpoints(settle_s) if run_dir.is_dir() else []
            for path, iteration in fresh:
                if w.judge(path, iteration):
                    reason = "stop rule"
                elif until is not None and iteration >= until and iteration in w.judged:  # judged, not failed
                    reason = "until"
                if reason:
                    break
            if fresh:
                last_new = time.monotonic()
                w.out.mkdir(parents=True, exist_ok=True)
                w.save(reason)
                w.write_report()
            if reason is None:
                target = training_target(run_dir) if run_dir.is_dir() else None
                if target and target[0] >= target[1] and w.last_iteration >= target[0]:
                    reason = "training finished"
                elif idle_timeout_s is not None and time.monotonic() - last_new >= idle_timeout_s:
                    reason = "idle"
                else:
                    time.sleep(interval_s)
    except KeyboardInterrupt:
        reason = "interrupted"
    except BaseException:
        with held_signals():
            w.clean()
        raise
    # a second Ctrl-C or SIGTERM waits for the folder's removal and the record (it cut both short, and a SIGTERM
    # then exited 130); one that comes as a watch ends by itself interrupts once its record says why it ended
    with held_signals() as held:
        w.clean()
        if w.judged or w.failed:
            w.out.mkdir(parents=True, exist_ok=True)
            w.save(reason)
        if reason == "interrupted":
            held.clear()  # it is ending for an interrupt already
    return WatchResult(reason, w.judged, w.failed, w.stopper, stop_path, w.report_errors)


__all__ = ["REASONS", "WATCH_NAME", "WatchResult", "training_target", "watch"]
