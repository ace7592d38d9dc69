"""Seed screening: the paused runs are the full runs' prefixes, the best seed by the metric is finished, and the
finished run equals a straight run of that seed; re-running resumes; bad flags are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

from ganeval.checkpoints import checkpoint_name
from ganeval.evaluate import score
from ganeval.screening import screen_seeds
from ganeval.train import train

KW: dict[str, Any] = {"model": "mlp", "iterations": 24, "checkpoint_every": 8, "log_every": 4, "lr_decay_start": 16}


def _max_diff(a: Path, b: Path) -> float:
    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys()
    return max(float((ta[k].float() - tb[k].float()).abs().max()) for k in ta)


def test_screen_finishes_the_best_seed_as_a_straight_run(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "screen"
    res = screen_seeds(out, [4, 1, 7], 8, num_samples=200, bootstrap=10, device="cpu", progress=False, **KW)
    summary = json.loads((out / "screen.json").read_text())
    assert [r["seed"] for r in summary["rows"]] == [4, 1, 7] and summary["chosen_seed"] == res.chosen
    fds = {r["seed"]: r["mnist_fd"] for r in summary["rows"]}
    assert res.chosen == min(fds, key=fds.get)
    # the recorded number is what scoring that checkpoint gives
    again = score(out / f"seed_{res.chosen}" / checkpoint_name(8), num_samples=200, metrics=("mnist_fd",), bootstrap=0,
                  device="cpu", progress=False)
    assert again.iloc[0]["mnist_fd"] == pytest.approx(fds[res.chosen], rel=1e-9)
    for seed in (4, 1, 7):
        last = max(int(p.stem.split("_")[1]) for p in (out / f"seed_{seed}").glob("ckpt_*.safetensors"))
        assert last == (24 if seed == res.chosen else 8)
        assert all(r["train_seconds"] > 0 for r in summary["rows"])
    # paused at 8 on the 24-iteration schedule and resumed: the uninterrupted run of that seed. Usually bit for bit;
    # MKL's sgemm may round differently with memory alignment (seen once in five runs of this MLP), hence 1e-5. A
    # pause that changed the schedule or the random streams moves weights by ~lr = 2e-4 per step, far above that.
    straight = train(tmp_path / "straight", seed=res.chosen, device="cpu", progress=False, **KW)
    assert straight.iteration == 24 and res.final is not None and res.final.iteration == 24
    for it in (8, 16, 24):
        assert _max_diff(straight.out_dir / checkpoint_name(it), res.chosen_dir / checkpoint_name(it)) <= 1e-5, it
    other = next(s for s in (4, 1, 7) if s != res.chosen)
    assert _max_diff(straight.out_dir / checkpoint_name(8), out / f"seed_{other}" / checkpoint_name(8)) > 1e-3
    # re-running the same screen trains nothing and chooses the same seed
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("ckpt_*.safetensors")}
    assert screen_seeds(out, [4, 1, 7], 8, num_samples=200, bootstrap=10, device="cpu", progress=False, **KW).chosen == res.chosen
    assert {p: p.stat().st_mtime_ns for p in out.rglob("ckpt_*.safetensors")} == mtimes


def test_screen_cli_and_its_errors(tmp_path: Path, mnist_dir: Path, cli: Any) -> None:
    out = tmp_path / "s"
    code, stdout, err = cli("train", "--model", "mlp", "--iterations", "12", "--checkpoint-every", "6", "--out", str(out),
                            "--screen-seeds", "0,2", "--screen-iterations", "6", "--screen-samples", "100", "--screen-only",
                            "--screen-metric", "mnist_is", "--device", "cpu", "--no-progress")
    assert code == 0, err
    summary = json.loads((out / "screen.json").read_text())
    iss = {r["seed"]: r["mnist_is"] for r in summary["rows"]}
    assert summary["chosen_seed"] == max(iss, key=iss.get) and f"chosen: seed {summary['chosen_seed']}" in stdout
    assert not (out / f"seed_{summary['chosen_seed']}" / checkpoint_name(12)).exists()  # --screen-only
    for argv, problem in [
        (["--screen-seeds", "1,1", "--screen-iterations", "6"], "distinct seeds"),
        (["--screen-seeds", "1,x", "--screen-iterations", "6"], "integers"),
        (["--screen-seeds", "1,2"], "both --screen-seeds and --screen-iterations"),
        (["--screen-seeds", "1,2", "--screen-iterations", "6", "--seed", "3"], "drop --seed"),
        (["--screen-seeds", "1,2", "--screen-iterations", "0"], "--screen-iterations must be positive"),
        (["--screen-seeds", "1,2", "--screen-iterations", "12"], "must be below the run's --iterations 12"),
    ]:
        code, _, err = cli("train", "--model", "mlp", "--iterations", "12", "--out", str(tmp_path / "bad"), *argv,
                           "--device", "cpu", "--no-progress")
        assert code == 2 and problem in err and err.count("\n") == 1, (argv, err)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    code, _, err = cli("train", "--model", "mlp", "--iterations", "12", "--out", str(tmp_path / "busy"), "--screen-seeds", "1,2",
                       "--screen-iterations", "6", "--device", "cpu", "--no-progress")
    assert code == 2 and "notes.txt" in err


def test_screening_never_finishes_a_diverged_seed() -> None:
    """inf (samples holding NaN/Inf values) never wins, as NaN does not; when every seed diverged the screen is
    refused in one line naming them, where it picked the first seed and finished it."""
    import math

    import pandas as pd

    from ganeval.screening import SCREEN_COLUMNS, _choose
    from ganeval.train.recipes import TrainError

    def table(fds: list[float], iss: list[float]) -> pd.DataFrame:
        rows = [{"seed": s, "iteration": 8, "mnist_fd": fd, "mnist_is": i} for s, fd, i in zip((4, 1, 7), fds, iss, strict=True)]
        return pd.DataFrame(rows, columns=list(SCREEN_COLUMNS))

    inf, nan = math.inf, math.nan
    with pytest.raises(TrainError, match=r"^seed screening: no seed has a finite mnist_fd at iteration 8: seed\(s\) 4, 7 "
                                         r"diverged .*; not scored: seed\(s\) 1; none is finished$") as err:
        _choose(table([inf, nan, inf], [nan] * 3), "mnist_fd")
    assert "\n" not in str(err.value)
    with pytest.raises(TrainError, match="no seed could be scored on mnist_is"):
        _choose(table([inf] * 3, [nan] * 3), "mnist_is")
    assert _choose(table([inf, 30.0, inf], [nan, 2.0, nan]), "mnist_fd") == 1
    assert _choose(table([inf, 30.0, 20.0], [inf, 2.0, 3.0]), "mnist_is") == 7  # higher is better: +inf does not win
