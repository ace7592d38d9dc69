"""What the trainer refuses up front (one line, exit 2, nothing written), also under early stopping and seed
screening: batch sizes a model cannot train with, damaged state files, resume options that contradict the run."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ganeval.early_stop import REPORT_NAME, EarlyStopper, train_with_early_stop
from ganeval.errors import CheckpointError
from ganeval.screening import screen_seeds
from ganeval.train import train
from ganeval.train.recipes import TrainError
from ganeval.train.state import LOG_NAME, STATE_KEY, STATE_NAME

FAST = {"num_samples": 200, "bootstrap": 0, "device": "cpu"}
JUDGE = {**FAST, "bootstrap": 2}  # the stopping rule needs an interval
KW: dict[str, Any] = {"model": "mlp", "checkpoint_every": 4, "log_every": 4, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def run4(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-iteration mlp run with its state at iteration 4."""
    out = tmp_path_factory.mktemp("run4") / "run"
    train(out, iterations=4, **KW)
    return out


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _one_line(code: int, err: str) -> None:
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


# --------------------------------------------------------------------------------------------- batch size


def test_batch_size_one_is_refused_for_batchnorm1d_models(tmp_path: Path, mnist_dir: Path, cli) -> None:
    code, _, err = cli("train", "--model", "mlp", "--batch-size", "1", "--iterations", "5", "--out", tmp_path / "bs1",
                       "--no-progress", "--device", "cpu")
    _one_line(code, err)
    assert "--batch-size 1 is too small for model 'mlp'" in err and not (tmp_path / "bs1").exists()
    code, _, err = cli("train", "--model", "mlp", "--batch-size", "2", "--iterations", "1", "--out", tmp_path / "bs1",
                       "--no-progress", "--device", "cpu")
    assert code == 0, err
    for model in ("dcgan", "dcgan_info"):  # BatchNorm2d normalises over the pixels too: batch 1 trains, not refused
        res = train(tmp_path / model, model, iterations=1, batch_size=1, checkpoint_every=1, device="cpu", progress=False)
        assert res.iteration == 1


def test_a_first_iteration_that_fails_leaves_no_log(tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that dies before its first log row leaves an empty folder, so the same command can start it again."""
    from ganeval.train import losses

    def boom(*args: Any, **kwargs: Any) -> torch.Tensor:
        raise RuntimeError("boom")

    monkeypatch.setitem(losses.STEPS, "bce_seed", boom)
    with pytest.raises(RuntimeError, match="boom"):
        train(tmp_path / "r", iterations=2, **KW)
    assert not (tmp_path / "r" / LOG_NAME).exists()
    monkeypatch.undo()
    assert train(tmp_path / "r", iterations=2, **KW).iteration == 2


# --------------------------------------------------------------------------------------------- damaged state


def _damage(state: Path, change: Callable[[dict[str, Any], dict[str, torch.Tensor]], None]) -> None:
    with safe_open(str(state), "pt") as fh:
        meta = json.loads(fh.metadata()[STATE_KEY])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    change(meta, tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(state), metadata={STATE_KEY: json.dumps(meta)})


def _recipe(field: str, value: Any) -> Callable[[dict[str, Any], dict[str, torch.Tensor]], None]:
    return lambda m, t: m["run"]["recipe"].__setitem__(field, value)


DAMAGES: dict[str, tuple[Callable[[dict[str, Any], dict[str, torch.Tensor]], None], str]] = {
    "elapsed": (lambda m, t: m.__setitem__("elapsed", "n/a"), "elapsed is 'n/a'"),
    "iterations": (lambda m, t: m.__setitem__("iterations", "abc"), "iterations is 'abc'"),
    "iteration": (lambda m, t: m.__setitem__("iteration", 2.5), "iteration is 2.5"),
    "loss": (_recipe("loss", "xyz"), "run.recipe.loss is 'xyz'"),
    "lr": (_recipe("lr", "abc"), "run.recipe.lr is 'abc'"),
    "batch_size": (_recipe("batch_size", -3), "run.recipe.batch_size is -3"),
    "batch_one": (_recipe("batch_size", 1), "--batch-size 1 is too small"),
    "adam_eps": (_recipe("adam_eps", "adam"), "run.recipe.adam_eps is 'adam', expected one of keras, torch"),
    "bn_variance": (_recipe("bn_variance", 1), "run.recipe.bn_variance is 1, expected one of keras, torch"),
    "unknown_field": (_recipe("momentum", 0.9), "unknown field 'momentum'"),
    "config": (lambda m, t: m["run"].__setitem__("config", [1]), "run.config is [1]"),
    "seed": (lambda m, t: m["run"].__setitem__("seed", 2**64), "run.seed is 18446744073709551616, expected an integer"),
    "config_negative": (lambda m, t: m["run"].__setitem__("config", {"latent_dim": -1}),  # RuntimeError: was a traceback
                        "run.config {'latent_dim': -1} does not fit model 'mlp' (Trying to create tensor with negative"),
    "config_unfit": (lambda m, t: m["run"].__setitem__("config", {"latent_dim": 100, "hidden": [3000, 3000]}),
                     "the g.* weights do not fit model 'mlp' with its run.config (Unexpected key(s)"),
    "opt_structure": (lambda m, t: m.__setitem__("opt_g", {"state": 3}), "opt_g is"),
    "sample_z": (lambda m, t: t.__setitem__("sample_z", t["sample_z"][:5]), "sample_z is torch.float32 (5, 100)"),
    "rng": (lambda m, t: t.pop("rng.data"), "'rng.data' is missing"),
    "weights": (lambda m, t: t.__setitem__("g.net.0.weight", t["g.net.0.weight"][:, :50]),
                "size mismatch for net.0.weight"),
    "moments": (lambda m, t: t.__setitem__("opt_g.0.exp_avg", t["opt_g.0.exp_avg"][:3]), "exp_avg of parameter 0"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_state_is_one_line_naming_the_file_and_field(run4: Path, tmp_path: Path, cli, damage: str) -> None:
    out = tmp_path / "run"
    shutil.copytree(run4, out)
    change, expected = DAMAGES[damage]
    _damage(out / STATE_NAME, change)
    before = _snapshot(out)
    code, _, err = cli("train", "--resume", "--out", out, "--iterations", "8", "--no-progress", "--device", "cpu")
    _one_line(code, err)
    assert f"{out / STATE_NAME}:" in err and expected in err, err
    assert _snapshot(out) == before


def test_a_state_config_is_checked_on_the_meta_device(run4: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """load_state compares run.config's models with the state's weights without building them: a 1-tensor-per-layer
    file cannot make the trainer allocate what its config says (hidden [12000, 12000]: 1.2 GB for G and D)."""
    import ganeval.models.registry
    from ganeval.train.state import load_state

    out = tmp_path / "run"
    shutil.copytree(run4, out)
    _damage(out / STATE_NAME, lambda m, t: m["run"].__setitem__("config", {"latent_dim": 100, "hidden": [12000, 12000]}))
    real = ganeval.models.registry.build_generator

    def meta_only(*args: Any, **kwargs: Any) -> torch.nn.Module:
        model = real(*args, **kwargs)
        assert all(p.device.type == "meta" for p in model.parameters()), "built for real"
        return model

    monkeypatch.setattr(ganeval.models.registry, "build_generator", meta_only)
    with pytest.raises(CheckpointError, match=r"damaged training state: the g\.\* weights do not fit model 'mlp'"):
        load_state(out / STATE_NAME)


def test_an_api_config_that_does_not_build_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match=r"config \{'latent_dim': -1\} does not fit model 'mlp' \(Trying to create"):
        train(tmp_path / "r", config={"latent_dim": -1}, iterations=2, **{k: v for k, v in KW.items() if k != "model"})
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------------------------- early stopping


def test_early_stop_out_is_a_file(tmp_path: Path, cli) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = cli("train", "--early-stop", "--out", tmp_path / "file", "--iterations", "100", "--no-progress",
                       "--device", "cpu")
    _one_line(code, err)
    assert "exists and is not a folder" in err and (tmp_path / "file").read_text() == "x"


def test_early_stop_resume_on_a_new_or_empty_folder_starts_a_run(tmp_path: Path, mnist_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "new", tmp_path / "empty"):
        res = train_with_early_stop(out, EarlyStopper(**JUDGE), resume=True, iterations=4, **KW)
        assert res.train.iteration == 4 and (out / REPORT_NAME).is_file()


def test_early_stop_refuses_what_train_refuses_before_judging(run4: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    shutil.copytree(run4, out)
    before = _snapshot(out)
    for args, problem in ((["--iterations", "2"], "--iterations 2 is below the run's iteration 4"),
                          (["--lr", "0.1"], "--lr 0.1 differs from the run's")):
        code, _, err = cli("train", "--early-stop", "--resume", "--out", out, *args, "--no-progress", "--device", "cpu")
        _one_line(code, err)
        assert problem in err, err
    assert _snapshot(out) == before  # nothing judged, no early_stop.json
    shutil.copytree(run4, tmp_path / "ckpts", ignore=shutil.ignore_patterns(STATE_NAME))
    with pytest.raises(CheckpointError, match="missing, so the checkpoints"):
        train_with_early_stop(tmp_path / "ckpts", EarlyStopper(**JUDGE), resume=True, **KW)


# --------------------------------------------------------------------------------------------- seed screening


def test_screen_below_where_the_seeds_already_are(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "screen"
    kw = {**KW, "iterations": 12, "checkpoint_every": 12}
    screen_seeds(out, [1, 2], 6, finish=False, num_samples=100, bootstrap=0, **kw)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(TrainError, match=r"seed_1: --screen-iterations 3 is below this seed's iteration 6, and it has "
                                         r"no checkpoint at 3"):
        screen_seeds(out, [1, 2], 3, finish=False, num_samples=100, bootstrap=0, **kw)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("seeds", ["1,,2", "1,2,", ",1"])
def test_screen_seeds_with_an_empty_item(tmp_path: Path, cli, seeds: str) -> None:
    code, _, err = cli("train", "--out", tmp_path / "s", "--screen-seeds", seeds, "--screen-iterations", "5",
                       "--iterations", "10", "--device", "cpu")
    _one_line(code, err)
    assert "--screen-seeds must be integers separated by commas" in err and not (tmp_path / "s").exists()


def test_a_run_gone_to_nan_resumes_from_its_own_checkpoints(tmp_path: Path, mnist_dir: Path) -> None:
    """NaN weights never equal themselves under torch.equal: a diverged run's own checkpoint was "different weights",
    so --resume, --early-stop and a screen re-run all failed. Checkpoints are compared bit for bit."""
    out = tmp_path / "nan"
    train(out, iterations=4, lr=1e30, **KW)
    with safe_open(str(out / "ckpt_0000004.safetensors"), "pt") as f:
        assert any(torch.isnan(f.get_tensor(k)).any() for k in f.keys())  # the run did go to NaN
    assert train(out, iterations=8, lr=1e30, resume=True, **KW).iteration == 8
    from ganeval.train.loop import same_bits

    nan = torch.tensor([float("nan"), 0.0])
    assert same_bits(nan, nan.clone()) and not same_bits(nan, torch.tensor([float("nan"), -0.0]))
    assert not same_bits(torch.zeros(2), torch.zeros(2, dtype=torch.float64)) and not same_bits(torch.zeros(2), torch.zeros(1, 2))


@pytest.mark.parametrize(("flag", "value", "problem"), [
    ("--lr", "1e39", "--lr must be at most 3.4e+38, float32's largest (got 1e+39)"),
    ("--batch-size", "100000000000", "--batch-size must be at most 60,000, the MNIST training images (got 100000000000)")])
def test_numbers_torch_cannot_hold_are_refused_before_anything_is_written(tmp_path: Path, mnist_dir: Path, cli: Any,
                                                                          flag: str, value: str, problem: str) -> None:
    """--lr 1e39 is finite in float64 but overflows float32 in Adam's first step; a huge batch fails to allocate:
    both were a traceback (exit 1) and an empty --out."""
    code, _, err = cli("train", "--out", tmp_path / "r", flag, value, "--iterations", "2", "--device", "cpu", "--no-progress")
    _one_line(code, err)
    assert problem in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("n", [1, 0, -5])
def test_screen_samples_are_checked_before_any_seed_is_trained(tmp_path: Path, mnist_dir: Path, cli: Any, n: int) -> None:
    """--screen-samples 1 trained seed 0 first and then failed naming --num-samples, a flag train does not have."""
    code, _, err = cli("train", "--model", "mlp", "--iterations", "12", "--checkpoint-every", "6", "--out", tmp_path / "s",
                       "--screen-seeds", "0,1", "--screen-iterations", "6", "--screen-samples", str(n), "--device", "cpu",
                       "--no-progress")
    _one_line(code, err)
    assert f"--screen-samples must be an integer of at least 2 (got {n})" in err and not (tmp_path / "s").exists()
    with pytest.raises(TrainError, match="bootstrap must be an integer of at least 0"):
        screen_seeds(tmp_path / "s", [0, 1], 6, iterations=12, num_samples=200, bootstrap=-1, device="cpu")


def _train_touching(cli: Any, out: Path, stop: Path, iterations: int) -> str:
    """``ganeval train`` with a stop file that appears as soon as the run's folder does (before its first checkpoint)."""
    def touch() -> None:
        while not out.exists():
            time.sleep(0.005)
        stop.touch()

    watcher = threading.Thread(target=touch)
    watcher.start()
    code, stdout, err = cli("train", "--model", "mlp", "--iterations", iterations, "--checkpoint-every", 100, "--log-every",
                            50, "--out", out, "--stop-file", stop, "--device", "cpu", "--no-progress")
    watcher.join()
    assert code == 0, err
    stop.unlink()
    return stdout


def test_a_stop_file_at_the_last_checkpoint_is_not_a_pause(tmp_path: Path, mnist_dir: Path, cli: Any) -> None:
    """A run that reached its last iteration said "paused by the stop file ... --resume to continue" whenever the stop
    file was there at its end; it is a pause only when the run stopped short of it."""
    done = _train_touching(cli, tmp_path / "done", tmp_path / "STOP", 100)
    assert "iteration 100," in done and "paused" not in done, done
    short = _train_touching(cli, tmp_path / "short", tmp_path / "STOP", 200)
    assert "iteration 100," in short and "paused by the stop file" in short, short


def test_early_stop_and_screening_flags_are_refused_without_their_switch(tmp_path: Path, cli) -> None:
    """``train --patience 2`` without ``--early-stop`` trained to the end with no early stopping, silently (and the
    screening flags without ``--screen-seeds`` alike): each is refused, naming what it goes with, before training."""
    for flags, problem in ((["--patience", "2"], "--patience goes with --early-stop: nothing reads it without it"),
                           (["--stop-threshold", "0.05", "--stop-precision", "bf16"],
                            "--stop-threshold, --stop-precision go with --early-stop"),
                           (["--stop-metric", "fid"], "--stop-metric goes with --early-stop"),
                           (["--stop-samples", "100"], "--stop-samples goes with --early-stop"),
                           (["--screen-only"], "--screen-only goes with --screen-seeds"),
                           (["--screen-metric", "class_kl", "--screen-samples", "100"],
                            "--screen-metric, --screen-samples go with --screen-seeds"),
                           (["--screen-seeds", "1,2", "--screen-iterations", "4", "--patience", "2"],
                            "--patience goes with --early-stop")):
        code, _, err = cli("train", "--out", tmp_path / "run", "--iterations", "8", "--no-progress", *flags)
        assert code == 2 and problem in err and err.count("\n") == 1, (flags, err)
        assert not (tmp_path / "run").exists()


def test_a_stop_file_the_run_writes_itself_is_refused(tmp_path: Path, cli) -> None:
    """``--stop-file`` equal to ``--out`` (or a checkpoint name in it) passed the "must not exist" check, then the
    run created it and paused at its first checkpoint, telling the user to remove it. A STOP file in the run folder
    is fine."""
    out = tmp_path / "runs" / "run"
    for stop in (out, out / "ckpt_0000004.safetensors", out / LOG_NAME, out / "samples_0000004.png",  # its own grid too
                 tmp_path / "runs"):  # the last: made as out's parent
        with pytest.raises(TrainError, match=r"the run writes that path itself"):
            train(out, iterations=8, stop_file=stop, **KW)
        assert not out.exists()
    code, _, err = cli("train", "--out", out, "--iterations", "8", "--stop-file", out, "--no-progress")
    assert code == 2 and f"--stop-file {out}: the run writes that path itself" in err
    assert train(out, iterations=8, stop_file=out / "STOP", **KW).iteration == 8


@pytest.mark.parametrize("option, value, problem", [
    ("iterations", 10.5, "--iterations must be a positive integer (got 10.5)"),  # was cut to 10
    ("iterations", "10", "--iterations must be a positive integer (got '10')"),  # was a TypeError
    ("batch_size", 4.0, "--batch-size must be a positive integer (got 4.0)"),  # was a TypeError inside torch
    ("checkpoint_every", 2.0, "--checkpoint-every must be a positive integer (got 2.0)"),
    ("lr", "1e-4", "--lr must be a positive number (got '1e-4')"),
    ("lr_decay_start", 2.5, "--lr-decay-start must be an integer of 0 or more (got 2.5)"),
])
def test_api_values_of_the_wrong_type_are_refused_before_out_is_made(tmp_path: Path, option: str, value: Any,
                                                                     problem: str) -> None:
    with pytest.raises(TrainError, match=f"^{re.escape(problem)}$"):
        train(tmp_path / "run", **{**KW, "iterations": 8, option: value})
    assert not (tmp_path / "run").exists()


def test_a_second_trainer_in_one_run_folder_is_refused(tmp_path: Path, cli) -> None:
    """Two trainers started into one empty --out both passed the "folder is empty" check: one failed later ("exists
    with different weights"), and the log held both runs' rows. The run folder is now held for the whole run."""
    import multiprocessing

    from ganeval.train.lock import LOCK_NAME, run_lock

    out = tmp_path / "run"
    out.mkdir()
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()

    def holder() -> None:  # another trainer, in the middle of its run
        with run_lock(out):
            started.set()
            release.wait(60)

    other = ctx.Process(target=holder)
    other.start()
    try:
        assert started.wait(30)
        with pytest.raises(TrainError, match=re.escape(f"{out}: another ganeval train is writing this run folder")):
            train(out, iterations=4, **KW)
        code, _, err = cli("train", "--out", out, "--iterations", "4", "--no-progress", "--device", "cpu")
        assert code == 2 and err.count("\n") == 1 and "another ganeval train is writing this run folder" in err, err
        assert [p.name for p in out.iterdir()] == [LOCK_NAME]  # nothing of either refused run written
    finally:
        release.set()
        other.join(30)
    assert not (out / LOCK_NAME).exists()  # removed by the run that held it
    (out / LOCK_NAME).write_text("")  # left by a killed run: the folder still counts as empty
    assert train(out, iterations=4, **KW).iteration == 4
    assert not (out / LOCK_NAME).exists() and (out / "ckpt_0000004.safetensors").is_file()


def test_a_run_trained_in_segments_is_held_between_them(tmp_path: Path) -> None:
    """Early stopping and seed screening train in segments and judge between them (minutes): the run folder stays
    held across the whole loop, and the trainer's own hold inside it takes nothing more."""
    import multiprocessing

    from ganeval.train.lock import LOCK_NAME, held_runs, run_lock

    out = tmp_path / "run"
    ctx = multiprocessing.get_context("fork")

    def other_trainer(result: Any) -> None:
        try:
            with run_lock(out):
                result.put("took it")
        except TrainError as exc:
            result.put(str(exc))

    with held_runs(out):
        assert train(out, iterations=8, stop_at=4, **KW).iteration == 4
        result = ctx.Queue()
        proc = ctx.Process(target=other_trainer, args=(result,))
        proc.start()
        proc.join(30)
        assert "another ganeval train is writing this run folder" in result.get(timeout=5)  # between the segments
        assert train(out, iterations=8, resume=True, **KW).iteration == 8
    assert not (out / LOCK_NAME).exists()
    with pytest.raises(TrainError, match="no such recipe|unknown model|model"):
        with held_runs(tmp_path / "new" / "run"):
            train(tmp_path / "new" / "run", model="nope", iterations=4, **{k: v for k, v in KW.items() if k != "model"})
    assert not (tmp_path / "new").exists()  # made by the hold, removed again when it failed with them empty
