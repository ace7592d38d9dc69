"""Options no run can use are refused before any work, in one line: exit 2 from the CLI, ``GanevalError`` from the
API (devices, seeds, an empty metric list, options of the wrong type), whichever command takes them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synthetic import write_bank_checkpoint

import ganeval
from ganeval.errors import GanevalError
from ganeval.train.recipes import TrainError

FAST: dict[str, Any] = {"num_samples": 200, "metrics": ["mnist_fd"], "bootstrap": 0, "device": "cpu", "progress": False}
SCORING = ("--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 0, "--no-progress")


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A one-checkpoint run folder."""
    write_bank_checkpoint(tmp_path / "run", 1000)
    return tmp_path / "run"


#: Each command with a device flag, as argv after ``ganeval`` (RUN and OUT filled in by the test).
COMMANDS = {
    "score": ("score", "RUN", *SCORING),
    "gate": ("gate", "RUN", *SCORING, "--max-mnist-fd", 1000),
    "compare": ("compare", "RUN", "RUN2", *SCORING),
    "watch": ("watch", "RUN", "--idle-timeout", 1, "--settle", 0, "--interval", 0.1),
    "stats": ("stats", "--dataset", "mnist-test", "--extractor", "mnist", "--limit", 100, "--out", "OUT/st.npz"),
    "train-classifier": ("train-classifier", "--epochs", 1, "--limit", 100, "--out", "OUT/c.safetensors"),
    "train": ("train", "--model", "mlp", "--iterations", 1, "--out", "OUT/train", "--no-progress"),
}
DEVICES = {
    "gpu": "--device 'gpu' is not a device (use auto, cpu or cuda)",  # train's wording, now every command's
    "mps": "--device 'mps' is not supported by ganeval (use auto, cpu or cuda)",  # a type torch knows, ganeval does not use
    "cuda:99": "--device",  # no such CUDA device: absent CUDA, or an index past the machine's devices
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("command", COMMANDS)
def test_an_unusable_device_is_one_line_and_exit_2_in_every_command(run: Path, tmp_path: Path, cli, command: str,
                                                                    device: str) -> None:
    """Not torch's RuntimeError traceback with exit 1; nothing is scored, trained or written."""
    write_bank_checkpoint(tmp_path / "run2", 1000, noise=0.3)
    fill = {"RUN": run, "RUN2": tmp_path / "run2" / "ckpt_0001000.safetensors"}
    argv = [fill.get(a, a) if isinstance(a, str) else a for a in COMMANDS[command]]
    argv = [a.replace("OUT", str(tmp_path / "out")) if isinstance(a, str) else a for a in argv]
    code, _, err = cli(*argv, "--device", device)
    assert code == 2 and DEVICES[device] in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out").exists() and not (run / "report").exists()


def test_gate_reports_a_device_error_in_its_json_and_junit(run: Path, tmp_path: Path, cli) -> None:
    """docs/ci.md: on an exit-2 error the JSON is {"passed": false, "exit_code": 2, "error": ...} and the JUnit file
    one ``gate`` testcase with an ``<error>``."""
    junit = tmp_path / "gate.xml"
    code, out, _ = cli("gate", run, *SCORING, "--max-mnist-fd", 1000, "--device", "gpu", "--json", "--junit", junit)
    verdict = json.loads(out)
    assert code == 2 and verdict["exit_code"] == 2 and "--device 'gpu' is not a device" in verdict["error"]
    assert '<error message="--device \'gpu\' is not a device' in junit.read_text()


def test_the_api_and_the_trainer_refuse_devices_with_a_ganeval_error(run: Path, tmp_path: Path) -> None:
    from ganeval.train.plan import plan_train

    with pytest.raises(GanevalError, match=re.escape(DEVICES["gpu"])):
        ganeval.score(run, **{**FAST, "device": "gpu"})
    with pytest.raises(TrainError, match=re.escape(DEVICES["mps"])):  # the trainer's error class, the shared check
        plan_train(tmp_path / "t", "mlp", iterations=1, device="mps")


@pytest.mark.parametrize("seed", ["-5", "-1", str(2**32), str(2**64)])
@pytest.mark.parametrize("command", ["score", "gate", "compare"])
def test_a_seed_outside_its_range_is_refused_before_scoring(run: Path, tmp_path: Path, cli, command: str, seed: str) -> None:
    """Not numpy's ValueError traceback (exit 1) below -1, nor an error row for every checkpoint at 2**64."""
    argv = {"score": ("score", run), "gate": ("gate", run, "--max-mnist-fd", 1000),
            "compare": ("compare", run / "ckpt_0001000.safetensors", run / "ckpt_0001000.safetensors")}[command]
    code, _, err = cli(*argv, *SCORING, "--device", "cpu", f"--seed={seed}", "--real-floor")
    assert code == 2 and f"--seed must be an integer from 0 to 2**32 - 1 = 4294967295 (got {seed})" in err, err
    assert err.strip().count("\n") == 0 and not (run / "report").exists()


BOOTSTRAPS = {"1": "--bootstrap 1: one resample has no spread to make an interval from",
              "100000000": "--bootstrap 100000000 at 200 samples: its resampled indices would take 149 GiB of memory"}


@pytest.mark.parametrize("bootstrap", BOOTSTRAPS)
@pytest.mark.parametrize("command", ["score", "gate", "compare"])
def test_a_bootstrap_no_interval_can_come_from_is_refused(run: Path, cli, command: str, bootstrap: str) -> None:
    """--bootstrap 1 gave no interval at all (a single replicate has no spread) and said nothing; a huge one
    drew every replicate's indices up front until numpy's MemoryError traceback (or the OOM killer)."""
    argv = {"score": ("score", run), "gate": ("gate", run, "--max-mnist-fd", 1000),
            "compare": ("compare", run / "ckpt_0001000.safetensors", run / "ckpt_0001000.safetensors")}[command]
    code, _, err = cli(*argv, *SCORING, "--device", "cpu", f"--bootstrap={bootstrap}")
    assert code == 2 and BOOTSTRAPS[bootstrap] in err and err.strip().count("\n") == 0, err
    assert not (run / "report").exists()


def test_the_api_and_early_stopping_refuse_a_single_bootstrap_replicate(run: Path) -> None:
    from ganeval.early_stop import EarlyStopper

    with pytest.raises(GanevalError, match="--bootstrap 1: one resample"):
        ganeval.score(run, **{**FAST, "bootstrap": 1})
    with pytest.raises(TrainError, match="--bootstrap 1: one resample"):  # before any iteration is trained
        EarlyStopper(num_samples=200, bootstrap=1, device="cpu")
    with pytest.raises(TrainError, match="--bootstrap 10000000 at 2000 samples"):
        EarlyStopper(bootstrap=10_000_000, device="cpu")


def test_a_stopping_rule_without_an_interval_is_refused(run: Path, tmp_path: Path, cli) -> None:
    """``watch --bootstrap 0`` was taken: every judgement was then "not measurable", so no checkpoint could count as
    worse and the watch (or ``train --early-stop`` through the API) would never stop a run that went bad."""
    from ganeval.early_stop import EarlyStopper

    want = "--bootstrap 0: the stopping rule counts a checkpoint as worse only beyond noise"
    with pytest.raises(TrainError, match=re.escape(want)):
        EarlyStopper(num_samples=200, bootstrap=0, device="cpu")
    for metric in ("mnist_fd", "fid"):
        code, out, err = cli("watch", run, "--stop-metric", metric, "--num-samples", 200, "--bootstrap", 0,
                             "--device", "cpu", "--idle-timeout", 1, "--settle", 0, "--out", tmp_path / "w")
        assert code == 2 and out == "" and want in err and err.strip().count("\n") == 0, err
        assert not (tmp_path / "w").exists() and not (run / "watch.json").exists()
    assert EarlyStopper(num_samples=200, bootstrap=2, device="cpu").bootstrap == 2


@pytest.mark.parametrize("seed", [1.5, True, -5, np.int64(-2), "3"])
def test_the_api_refuses_a_seed_that_is_not_an_integer_in_range(run: Path, seed: Any) -> None:
    shown = int(seed) if isinstance(seed, np.integer) else seed  # a numpy integer is taken as Python's, then checked
    with pytest.raises(GanevalError, match=re.escape(f"--seed must be an integer from 0 to 2**32 - 1 = 4294967295 (got {shown!r})")):
        ganeval.score(run, **{**FAST, "seed": seed})


def test_the_largest_seed_scores(run: Path) -> None:
    """The top of the range is usable wherever the seed goes: latents, bootstrap indices, the real floor's subset."""
    df = ganeval.score(run, **{**FAST, "seed": 2**32 - 1, "bootstrap": 10, "real_floor": "auto"})
    assert df["status"].tolist() == ["ok"] and df.attrs["summary"]["real_floor"]["values"]["mnist_fd"] >= 0


def test_the_fresh_seed_of_picked_runs_wraps_at_the_top_of_the_seed_range(tmp_path: Path) -> None:
    """Picked at the largest --seed, compared on seed 0: seed + 1 would be refused as out of range."""
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000, noise=0.5)
    write_bank_checkpoint(run, 2000)
    other = write_bank_checkpoint(tmp_path / "other", 1000, noise=0.2)
    comp = ganeval.compare({"run": run, "other": other}, pick="best", permutations=0, **{**FAST, "seed": 2**32 - 1})
    assert comp.summary["selection_seed"] == 2**32 - 1 and comp.summary["seed"] == 0 and not comp.failed


@pytest.mark.parametrize("metrics", [[], (), "", " , "])
def test_no_metrics_is_refused(run: Path, metrics: Any) -> None:
    """Not a KeyError from the evaluator's table: score, gate and compare all check first."""
    for call in (lambda: ganeval.score(run, **{**FAST, "metrics": metrics}),
                 lambda: ganeval.gate(run, max_mnist_fd=1000, **{**FAST, "metrics": metrics}),
                 lambda: ganeval.compare([run / "ckpt_0001000.safetensors"] * 2, **{**FAST, "metrics": metrics})):
        with pytest.raises(GanevalError, match=re.escape("--metrics: give at least one metric")):
            call()


@pytest.mark.parametrize("option, problem", [
    ({"ci": "0.9"}, "--ci (the interval level) must lie between 0 and 1, e.g. 0.95 (got the str '0.9')"),
    ({"ci": None}, "--ci (the interval level) must lie between 0 and 1, e.g. 0.95 (got None)"),
    ({"late_threshold": None}, "--late-threshold must be a finite 0 or more, e.g. 0.1 for 10 % (got None)"),
    ({"copying_threshold": "-3"}, "--copying-threshold must be a finite z-score, e.g. -3 (got the str '-3')"),
    ({"max_class_kl": float("nan")}, "max_class_kl must be a finite 0 or more, e.g. 0.1 (got nan)"),
    ({"mode_min_share": 2}, "mode_min_share must lie between 0 and 1, e.g. 0.02 (got 2)"),
    ({"min_modes": 2.5}, "min_modes must be an integer of at least 0 (got 2.5)"),
    ({"resize": "bogus"}, "--resize must be one of tf1x, clean (got 'bogus')"),  # also without an Inception metric
    ({"resize": "bogus", "metrics": ["fid"]}, "--resize must be one of tf1x, clean (got 'bogus')"),
    ({"inception_all": "yes"}, "inception_all must be True, False or None"),
    ({"use_cache": "no"}, "use_cache must be True or False (got 'no')"),
    ({"extra": [1]}, "extra must be a dict of input hints"),
    ({"metrics": None}, "--metrics must be metric names"),
    ({"metrics": ["mnist_fd", 3]}, "--metrics must be metric names"),
])
def test_api_options_of_the_wrong_type_are_refused(run: Path, option: dict[str, Any], problem: str) -> None:
    """The same GanevalError from score and compare, before anything is read or scored."""
    for call in (lambda: ganeval.score(run, **{**FAST, **option}),
                 lambda: ganeval.compare([run / "ckpt_0001000.safetensors"] * 2, **{**FAST, **option})):
        with pytest.raises(GanevalError, match=re.escape(problem)):
            call()
    assert not (run / "report").exists()


@pytest.mark.parametrize("criteria, problem", [
    ({"max_mnist_fd": "abc"}, "--max-mnist-fd must be a number, not NaN (got the str 'abc')"),
    ({"max_mnist_fd": float("nan")}, "--max-mnist-fd must be a number, not NaN (got nan)"),
    ({"max_mnist_fd": 500, "checkpoint": None}, "--checkpoint must be best, last or a checkpoint's path or name (got None)"),
    ({"max_mnist_fd": 500, "baseline": "BASE", "max_regression": "5"},
     "--max-regression must be a finite percentage >= 0, e.g. 5 (got the str '5')"),
])
def test_gate_limits_of_the_wrong_type_are_refused(run: Path, criteria: dict[str, Any], problem: str) -> None:
    if criteria.get("baseline") == "BASE":
        criteria = {**criteria, "baseline": run / "ckpt_0001000.safetensors"}
    with pytest.raises(GanevalError, match=re.escape(problem)):
        ganeval.gate(run, **criteria, **FAST)
    assert not (run / "report").exists()


def test_gate_takes_a_path_as_its_checkpoint(run: Path) -> None:
    result = ganeval.gate(run, max_mnist_fd=1e6, checkpoint=run / "ckpt_0001000.safetensors", **FAST)
    assert result.passed and result.row["checkpoint"] == "ckpt_0001000.safetensors"


@pytest.mark.parametrize("threads", [str(2**40), "100000"])
@pytest.mark.parametrize("command", ["score", "gate", "compare", "train-classifier"])
def test_more_threads_than_torch_takes_are_refused(run: Path, tmp_path: Path, cli, command: str, threads: str) -> None:
    """--threads past 2**31 - 1 was torch's "Overflow when unpacking long" traceback (exit 1), and 100,000 threads
    segfaulted in the first matrix product: one line, exit 2, nothing done; the API raises the same error."""
    argv = {"score": ("score", run, *SCORING), "gate": ("gate", run, *SCORING, "--max-mnist-fd", 1000),
            "compare": ("compare", run / "ckpt_0001000.safetensors", run / "ckpt_0001000.safetensors", *SCORING),
            "train-classifier": ("train-classifier", "--epochs", 1, "--limit", 100, "--out", tmp_path / "c.safetensors")}
    code, _, err = cli(*argv[command], "--device", "cpu", "--threads", threads)
    assert code == 2 and f"--threads must be at most 1024 (got {threads})" in err and err.strip().count("\n") == 0, err
    assert not (run / "report").exists() and not (tmp_path / "c.safetensors").exists()
    with pytest.raises(GanevalError, match=re.escape(f"--threads must be at most 1024 (got {threads})")):
        ganeval.score(run, **{**FAST, "threads": int(threads)})


@pytest.mark.parametrize(("flags", "said"), [
    (("--num-samples", 10**14), "--num-samples 100000000000000 would hold at least 231 PiB in memory"),
    (("--num-samples", 10, "--bootstrap", 10**11), "--bootstrap 100000000000 at 10 samples: its resampled indices would take")])
def test_sizes_whose_resampled_indices_outgrow_memory_are_refused(run: Path, cli, flags: tuple, said: str) -> None:
    """--num-samples 1e14 was numpy's MemoryError traceback (exit 1), --bootstrap 1e11 a run that never started (it
    drew 1e11 index arrays): one line, exit 2, before any work; the API raises the same error."""
    argv = [a for a in SCORING if a not in ("--num-samples", 200)]
    code, _, err = cli("score", run, *argv, *flags, "--device", "cpu")
    assert code == 2 and said in err and err.strip().count("\n") == 0, err
    assert not (run / "report").exists()
    kwargs = {k.lstrip("-").replace("-", "_"): v for k, v in zip(flags[::2], flags[1::2], strict=True)}
    with pytest.raises(GanevalError, match=re.escape(said)):
        ganeval.score(run, **{**FAST, **kwargs})


@pytest.mark.parametrize(("flag", "value", "reader"), [("--copy-train", "mnist-test", "copying or inception_copying"),
                                                       ("--copy-heldout", "mnist-test", "copying or inception_copying"),
                                                       ("--feature-network", "nets:Net", "a custom_* metric"),
                                                       ("--feature-network-kwargs", "{}", "a custom_* metric"),
                                                       ("--inception-weights", "w.pth", "an Inception metric")])
@pytest.mark.parametrize("command", ["score", "gate"])
def test_inputs_no_asked_metric_reads_are_refused(run: Path, cli, command: str, flag: str, value: str, reader: str) -> None:
    """--copy-train without a copying test, --feature-network without a custom_* metric, --inception-weights without an
    Inception metric were taken and ignored (exit 0, nothing said): one line, exit 2, before scoring; the API too."""
    argv = ("score", run) if command == "score" else ("gate", run, "--max-mnist-fd", 1000)
    code, _, err = cli(*argv, *SCORING, "--device", "cpu", flag, value)
    want = f"{flag} is read only by {reader}, and --metrics (mnist_fd) has none"
    assert code == 2 and want in err and err.strip().count("\n") == 0, err
    assert not (run / "report").exists()
    with pytest.raises(GanevalError, match=re.escape(want)):
        ganeval.score(run, **{**FAST, flag.lstrip("-").replace("-", "_"): value})


@pytest.mark.parametrize(("flag", "value", "reader"), [("--resize", "clean", "an Inception metric"),
                                                       ("--copy-cells", 10, "copying or inception_copying"),
                                                       ("--copying-threshold", -2.0, "copying or inception_copying")])
@pytest.mark.parametrize("command", ["score", "gate", "compare"])
def test_settings_no_asked_metric_reads_are_refused(run: Path, tmp_path: Path, cli, command: str, flag: str, value: Any,
                                                    reader: str) -> None:
    """--resize clean without an Inception metric, --copy-cells or --copying-threshold without a copying test were
    recorded in the options and used by nothing (exit 0, nothing said): one line, exit 2, before scoring; the API
    too. Their defaults, given explicitly, are still taken."""
    one = run / "ckpt_0001000.safetensors"
    argv = {"score": ("score", run), "gate": ("gate", run, "--max-mnist-fd", 1000), "compare": ("compare", one, one)}[command]
    code, out, err = cli(*argv, *SCORING, "--device", "cpu", flag, value, "--out", tmp_path / "out")
    want = f"{flag} is read only by {reader}, and --metrics (mnist_fd) has none"
    assert code == 2 and out == "" and want in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out").exists() and not (run / "report").exists()
    with pytest.raises(GanevalError, match=re.escape(want)):
        ganeval.score(run, **{**FAST, flag.lstrip("-").replace("-", "_"): value})
    if command == "score":  # the defaults are never refused
        code, _, err = cli(*argv, *SCORING, "--device", "cpu", "--resize", "tf1x", "--copy-cells", 50,
                           "--copying-threshold", -3, "--out", tmp_path / "default")
        assert code == 0, err


def test_numpy_integers_are_taken_as_python_integers(run: Path, tmp_path: Path) -> None:
    """``num_samples=np.int64(200)`` passed the checks and reached json.dumps: the scoring ran, then no report was
    written (a TypeError); ``batch_size`` failed every row (its cache key); compare refused ``permutations=np.int64``
    ("must be an integer"); an EarlyStopper's early_stop.json could not be written."""
    from ganeval.early_stop import EarlyStopper

    ints = {"num_samples": np.int64(200), "batch_size": np.int32(100), "bootstrap": np.int64(20), "seed": np.uint8(3)}
    df = ganeval.score(run, **{**FAST, **ints}, out=tmp_path / "rep")
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert df["status"].tolist() == ["ok"] and summary["n_samples"] == 200 and summary["seed"] == 3
    plain = ganeval.score(run, **{**FAST, **{k: int(v) for k, v in ints.items()}})
    assert df["mnist_fd"].item() == plain["mnist_fd"].item()
    one = run / "ckpt_0001000.safetensors"
    comp = ganeval.compare([one, one], **{**FAST, "bootstrap": 20}, permutations=np.int64(50), sequential=np.int16(5))
    assert comp.differences["difference"].item() == 0
    stopper = EarlyStopper(num_samples=np.int64(200), bootstrap=np.int64(20), patience=np.int64(2),
                           threshold=np.float32(0.25), device="cpu")
    assert json.loads(json.dumps(stopper.summary(False, 0)))["num_samples"] == 200
    with pytest.raises(GanevalError, match="--permutations must be an integer of at least 0"):
        ganeval.compare([one, one], **FAST, permutations=np.float64(5.0))


def test_loading_and_scoring_leave_the_callers_random_numbers_alone(run: Path) -> None:
    """``load_generator`` and ``score`` drew the generator's initial weights (replaced at once by the checkpoint's)
    from the global RNG: a caller's seeded stream came out different after either."""
    import torch

    ckpt = Path(ganeval.__file__).parent / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"  # a DCGAN's layers
    torch.manual_seed(123)
    want = torch.rand(3)
    for call in (lambda: ganeval.load_generator(ckpt), lambda: ganeval.score(run, **FAST, use_cache=False)):
        torch.manual_seed(123)
        call()
        assert torch.equal(torch.rand(3), want)
