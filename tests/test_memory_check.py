"""An N or a batch size whose features and activations cannot fit in this machine's memory is refused before any
work, in one line (exit 2 from the CLI, ``GanevalError`` from the API), in every command that scores; sizes that
do fit pass. ``--num-samples 3000000000 --bootstrap 0`` used to pass the check (it counted only the resampled indices)
and fail on the first checkpoint, allocating its latents."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_bank_checkpoint

import ganeval
from ganeval.early_stop import EarlyStopper
from ganeval.errors import GanevalError
from ganeval.memory import check_memory
from ganeval.options import ScoreOptions
from ganeval.train.recipes import TrainError

FAST = {"metrics": ["mnist_fd"], "device": "cpu", "progress": False}
SCORING = ("--metrics", "mnist_fd", "--no-progress", "--device", "cpu")
GIB = 2**30
HUGE_N = "--num-samples 3000000000 would hold at least"  # 7 TiB of MNIST features alone: no machine has it


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture
def run(tmp_path: Path) -> Path:
    write_bank_checkpoint(tmp_path / "run", 1000)
    return tmp_path / "run"


def _argv(command: str, run: Path) -> tuple:
    one = run / "ckpt_0001000.safetensors"
    return {"score": ("score", run, *SCORING), "gate": ("gate", run, *SCORING, "--max-mnist-fd", 1000),
            "compare": ("compare", one, one, *SCORING),
            "watch": ("watch", run, "--idle-timeout", 1, "--settle", 0, "--interval", 0.1, "--device", "cpu")}[command]


@pytest.mark.parametrize("command", ["score", "gate", "compare", "watch"])
def test_an_n_whose_features_cannot_fit_is_refused_in_one_line(run: Path, cli, command: str) -> None:
    code, out, err = cli(*_argv(command, run), "--num-samples", 3_000_000_000, "--bootstrap", 0)
    assert code == 2 and HUGE_N in err and err.strip().count("\n") == 0, (code, out, err)
    assert "lower it (at most" in err and not (run / "report").exists() and not (run / "watch.json").exists()


def test_the_api_refuses_it_with_a_ganeval_error(run: Path) -> None:
    one = run / "ckpt_0001000.safetensors"
    with pytest.raises(GanevalError, match=re.escape(HUGE_N)):
        ganeval.score(run, num_samples=3_000_000_000, bootstrap=0, **FAST)
    with pytest.raises(GanevalError, match=re.escape(HUGE_N)):
        ganeval.compare([one, one], num_samples=3_000_000_000, bootstrap=0, **FAST)
    with pytest.raises(GanevalError, match=re.escape(HUGE_N)):
        ganeval.gate(run, max_mnist_fd=1000, num_samples=3_000_000_000, bootstrap=0, **FAST)
    with pytest.raises(TrainError, match=re.escape(HUGE_N)):  # watch's and train's judge, before any iteration
        EarlyStopper(num_samples=3_000_000_000, bootstrap=0, device="cpu")


def test_a_watch_report_whose_n_cannot_fit_is_refused_before_judging(run: Path) -> None:
    """The judging (200 samples) fits, the report's N does not: every report would have failed, the watch going on."""
    from ganeval.watching import watch

    with pytest.raises(GanevalError, match=re.escape(HUGE_N)):
        watch(run, EarlyStopper(num_samples=200, bootstrap=2, device="cpu"), idle_timeout_s=1, settle_s=0, interval_s=0.1,
              report={"metrics": ("mnist_fd",), "num_samples": 3_000_000_000, "bootstrap": 0, "device": "cpu"})
    assert not (run / "watch.json").exists() and not (run / "report").exists()


def test_a_numpy_integer_n_does_not_wrap_past_the_check(run: Path) -> None:
    """2**61 × 2.5 KiB wrapped to a small number in numpy int64 arithmetic."""
    with pytest.raises(GanevalError, match="--num-samples 2305843009213693952 would hold"):
        ganeval.score(run, num_samples=np.int64(2**61), bootstrap=0, **FAST)


def test_a_batch_too_large_for_memory_names_batch_size(run: Path, cli) -> None:
    """One batch of 20 million images through the MNIST classifier: 3.7 TiB of activations at least."""
    code, _, err = cli("score", run, *SCORING, "--num-samples", 20_000_000, "--bootstrap", 0, "--batch-size", 10**12)
    assert code == 2 and "--batch-size 1000000000000: one batch of 20000000 images" in err, err
    assert err.strip().count("\n") == 0 and not (run / "report").exists()


def test_sizes_that_fit_pass_and_those_that_do_not_are_refused_on_a_24_gib_machine() -> None:
    """By the count (not this machine's memory): default options at N = 50,000 fit in 24 GiB, with a huge batch too
    on a CPU (tf1x Inception runs 32 images at a time; the MNIST classifier's 50,000 need ~10 GB); 1,000,000 do not."""
    d, cpu = ScoreOptions(), torch.device("cpu")
    for bs in (d.batch_size, 10**12):
        check_memory(50_000, d.bootstrap, d.metrics, bs, cpu, have=24 * GIB)
    check_memory(2_000_000, 100, ("mnist_fd",), 100, cpu, have=24 * GIB)
    with pytest.raises(GanevalError, match=r"--num-samples 1000000 would hold at least 42\.5 GiB"):
        check_memory(1_000_000, 0, d.metrics, 100, cpu, have=24 * GIB)
    with pytest.raises(GanevalError, match="--batch-size 1000000000000: one batch of 200000 images"):
        check_memory(200_000, 0, ("mnist_fd",), 10**12, cpu, have=24 * GIB)


@pytest.mark.parametrize(("value", "said"), [("0", "--num-samples must be an integer of at least 2 (got 0)"),
                                             ("-5", "--num-samples must be an integer of at least 2 (got -5)"),
                                             ("1e30", "argument --num-samples: invalid int value: '1e30'")])
def test_absurd_n_values_are_one_line(run: Path, cli, value: str, said: str) -> None:
    code, _, err = cli("score", run, *SCORING, f"--num-samples={value}")
    assert code == 2 and said in err, err


def test_an_n_too_large_for_any_interval_says_so() -> None:
    """--num-samples 10**30 at the default --bootstrap 100 suggested "give at most 0" replicates."""
    with pytest.raises(GanevalError, match="no interval can be drawn at this N: give --bootstrap 0, or at most 2684354 samples"):
        ScoreOptions(num_samples=10**30, device="cpu").check()


def test_the_counted_feature_sizes_are_the_extractors() -> None:
    from ganeval.features.inception import SPATIAL_DIM, InceptionExtractor
    from ganeval.features.mnist_net import NUM_CLASSES, POOL_DIM
    from ganeval.memory import FEATURE_DIMS

    assert FEATURE_DIMS == {"inception": (InceptionExtractor.pool_dim, 1008), "inception-spatial": (SPATIAL_DIM, 0),
                            "mnist": (POOL_DIM, NUM_CLASSES)}
