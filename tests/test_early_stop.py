"""Early stopping: each new checkpoint against the best so far, paired interval of the difference, patience."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from synthetic import write_bank_checkpoint

from ganeval.early_stop import REPORT_NAME, EarlyStopper, train_with_early_stop
from ganeval.train.loop import train
from ganeval.train.recipes import TrainError

FAST = {"num_samples": 400, "bootstrap": 60, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_stops_after_patience_checkpoints_worse_than_the_best(tmp_path: Path) -> None:
    """Noise falls to 0 at iteration 3000 (the best), then rises: stop once two in a row are clearly worse."""
    noise = {1000: 0.3, 2000: 0.1, 3000: 0.0, 4000: 0.2, 5000: 0.3, 6000: 0.4}
    stopper = EarlyStopper(patience=2, threshold=0.10, **FAST)
    seen = []
    for it, n in noise.items():
        ckpt = write_bank_checkpoint(tmp_path / "run", it, noise=n)
        seen.append(it)
        if stopper.observe(ckpt, it):
            break
    assert seen[-1] == 5000 and stopper.best.name == "ckpt_0003000.safetensors"
    verdicts = [h["verdict"] for h in stopper.history]
    assert verdicts == ["first", "better", "better", "worse", "worse"]
    assert [h["worse_in_a_row"] for h in stopper.history] == [0, 0, 0, 1, 2]
    assert all(h["ci_low"] > 0 for h in stopper.history[3:])
    last = stopper.history[-1]  # the stop held on fresh latents (seed 1), where the best was not chosen
    assert last["confirmed"] and last["confirm_ci_low"] > 0 and "confirmed" not in stopper.history[3]


def test_no_stop_when_later_checkpoints_are_no_worse(tmp_path: Path) -> None:
    stopper = EarlyStopper(patience=1, threshold=0.0, **FAST)
    first = write_bank_checkpoint(tmp_path / "run", 1000)
    assert not stopper.observe(first, 1000)
    for it in (2000, 3000):
        copy = tmp_path / "run" / f"ckpt_{it:07d}.safetensors"
        shutil.copy(first, copy)
        assert not stopper.observe(copy, it)
    assert [h["verdict"] for h in stopper.history] == ["first", "no detectable difference", "no detectable difference"]
    drawn = [h["relabellings"] for h in stopper.history[1:]]  # a count in early_stop.json, not 10.0
    assert all(type(n) is int and n >= 10 for n in drawn), drawn


def test_threshold_ignores_small_significant_worsening(tmp_path: Path) -> None:
    stopper = EarlyStopper(patience=1, threshold=10.0, **FAST)
    stopper.observe(write_bank_checkpoint(tmp_path / "run", 1000), 1000)
    assert not stopper.observe(write_bank_checkpoint(tmp_path / "run", 2000, noise=0.1), 2000)
    h = stopper.history[-1]
    assert h["verdict"] == "worse" and h["relative"] < 10 and h["worse_in_a_row"] == 0


def test_training_pauses_at_every_checkpoint_and_resumes(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "mlp"
    kw = {"model": "mlp", "batch_size": 16, "checkpoint_every": 20, "log_every": 20, "device": "cpu", "progress": False}
    res = train_with_early_stop(out, EarlyStopper(**FAST), iterations=60, **kw)
    assert not res.stopped and res.train.iteration == 60
    report = json.loads((out / REPORT_NAME).read_text())
    assert [h["iteration"] for h in report["history"]] == [20, 40, 60] and report["stopped"] is False
    assert sorted(p.name for p in out.glob("ckpt_*")) == [f"ckpt_{i:07d}.safetensors" for i in (20, 40, 60)]
    again = train_with_early_stop(out, EarlyStopper(**FAST), resume=True, iterations=80, **kw)
    report = json.loads((out / REPORT_NAME).read_text())
    assert again.train.iteration == 80 and [h["iteration"] for h in report["history"]] == [20, 40, 60, 80]


def test_resumed_without_iterations_runs_to_its_own_end_and_stops_there(tmp_path: Path, mnist_dir: Path) -> None:
    """A run planned for 40 iterations, resumed with early stopping and no --iterations: it is judged up to its own
    end and the call returns (it used to aim at the recipe's 30,000 and judge the last checkpoint forever)."""
    out = tmp_path / "mlp"
    kw = {"model": "mlp", "batch_size": 16, "checkpoint_every": 20, "log_every": 20, "device": "cpu", "progress": False}
    train(out, iterations=40, **kw)
    res = train_with_early_stop(out, EarlyStopper(**FAST), resume=True, **{k: v for k, v in kw.items() if k != "model"})
    report = json.loads((out / REPORT_NAME).read_text())
    assert res.train.iteration == 40 and [h["iteration"] for h in report["history"]] == [20, 40]


def test_a_diverged_run_stops_after_patience_diverged_checkpoints(tmp_path: Path, mnist_dir: Path, cli) -> None:
    """A run gone to NaN (--lr 1e30) could not be resumed at its second checkpoint (its own NaN checkpoint was
    "different weights"); with that fixed, it ran to the end "without going bad": inf was never worse than inf. Each
    diverged checkpoint now counts against the run, with no confirmation (NaN weights are no sampling fluke)."""
    out = tmp_path / "nan"
    code, stdout, err = cli("train", "--model", "mlp", "--lr", "1e30", "--iterations", "40", "--checkpoint-every", "4",
                            "--out", out, "--early-stop", "--patience", "2", "--stop-samples", "200", "--device", "cpu",
                            "--no-progress")
    assert code == 0, err
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["stopped"] and report["iteration"] == 8
    assert [(h["verdict"], h["worse_in_a_row"]) for h in report["history"]] == [("diverged", 1), ("diverged", 2)]
    assert "confirmed" not in report["history"][-1] and "stopped at iteration 8" in stdout and "diverged (mnist_fd inf" in stdout


def test_refusals(tmp_path: Path, cli) -> None:
    with pytest.raises(TrainError, match="--stop-metric"):
        EarlyStopper(metric="kid")
    with pytest.raises(TrainError, match="--patience"):
        EarlyStopper(patience=0)
    with pytest.raises(TrainError, match=r"train --stop-samples, watch --num-samples\) must be an integer of at least 2 \(got 0\)"):
        EarlyStopper(num_samples=0)
    code, _, err = cli("train", "--out", tmp_path / "n", "--early-stop", "--stop-samples", "1", "--iterations", "20")
    assert code == 2 and "--stop-samples" in err and not (tmp_path / "n").exists()  # refused before training
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(TrainError, match="not empty"):
        train_with_early_stop(tmp_path / "full", EarlyStopper())
    code, _, err = cli("train", "--out", tmp_path / "s", "--early-stop", "--screen-seeds", "1,2", "--screen-iterations", "10")
    assert code == 2 and "cannot be combined" in err
    # extra overrode the rule itself (seed 5 for the fresh-latent confirmation, bootstrap 0), or failed only at the
    # first judgement (a typo); permutations no test can decide with were refused by compare at the second checkpoint
    for extra in ({"seed": 5}, {"bootstrap": 0, "num_samples": 2}, {"metrics": ("mnist_is",)}, {"zdim": 100}):
        with pytest.raises(TrainError, match=r"^EarlyStopper extra '.*': extra takes input hints, reference and feature_network"):
            EarlyStopper(num_samples=200, bootstrap=2, extra=extra)
    assert EarlyStopper(num_samples=200, bootstrap=2, extra={"reference": "mnist-test", "z_dim": 100}).extra["z_dim"] == 100
    for kwargs, message in (({"permutations": 5}, r"--permutations 5 cannot find any difference .* give at least 19, or 0"),
                            ({"permutations": -1}, "--permutations must be an integer of at least 0"),
                            ({"sequential": -2}, "--sequential must be an integer of at least 0")):
        with pytest.raises(TrainError, match=message):
            EarlyStopper(num_samples=200, bootstrap=2, **kwargs)


def test_api_values_of_the_wrong_type_are_ganeval_errors(tmp_path: Path) -> None:
    """``EarlyStopper(patience="3")``, ``watch(interval_s="1")`` and an unknown score option raised bare TypeErrors
    from deep inside; each is now one ganeval error line naming the option (an unknown option is also a TypeError)."""
    import ganeval
    from ganeval.errors import GanevalError

    with pytest.raises(TrainError, match=r"^--patience must be an integer of at least 1 \(got '3'\)$"):
        EarlyStopper(patience="3")
    with pytest.raises(TrainError, match=r"^--stop-threshold must be a number ≥ 0 \(got the str '0.1'\)$"):
        EarlyStopper(threshold="0.1")
    (tmp_path / "run").mkdir()
    with pytest.raises(GanevalError, match=r"^--interval must be a number ≥ 0 \(got the str '1'\)$"):
        ganeval.watch(tmp_path / "run", interval_s="1")
    with pytest.raises(GanevalError, match=r"^--idle-timeout must be > 0 seconds \(got -1\)$"):
        ganeval.watch(tmp_path / "run", idle_timeout_s=-1)
    with pytest.raises(GanevalError, match=r"^unknown score option\(s\) \['num_sample'\]") as err:
        ganeval.score(tmp_path / "run", num_sample=10)
    assert isinstance(err.value, TypeError)
