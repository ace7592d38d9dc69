"""The Python API refuses wrong-typed arguments in one line (a ``GanevalError``, as the CLI's exit 2), before any
work: they reached pathlib's or json's TypeError, a dict lookup, or were taken silently with the opposite meaning
(``resume="no"`` resumed, ``out=""`` wrote into the current folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ganeval
from ganeval.early_stop import EarlyStopper
from ganeval.errors import GanevalError
from ganeval.train import train
from ganeval.train.state import STATE_NAME, load_state

SHIPPED = Path(ganeval.__file__).parent / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
FAST: dict[str, Any] = {"metrics": ("mnist_fd",), "num_samples": 50, "bootstrap": 0, "device": "cpu", "progress": False}


def test_train_takes_numpy_scalars(tmp_path: Path, mnist_dir: Path) -> None:
    """batch_size=np.int64(8) trained to the first checkpoint, then failed writing the state's JSON, leaving a
    folder that a fresh run refused as not empty."""
    run = train(tmp_path / "run", "mlp", iterations=2, checkpoint_every=2, batch_size=np.int64(8), lr=np.float32(1e-4),
                n_critic=np.int64(1), config={"latent_dim": np.int64(16)}, device="cpu", progress=False)
    assert run.iteration == 2
    meta = load_state(tmp_path / "run" / STATE_NAME)[1]
    assert meta["run"]["recipe"]["batch_size"] == 8 and meta["run"]["config"]["latent_dim"] == 16
    assert type(meta["run"]["recipe"]["lr"]) is float


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"out": None}, "--out must be a path (a str or os.PathLike), not NoneType"),
    ({"out": ""}, "--out is an empty path"),
    ({"out": 5}, "--out must be a path"),
    ({"resume": "no"}, "resume must be True or False, not 'no'"),
    ({"model": ["mlp"]}, "model must be a name such as 'mlp'"),
    ({"model": ""}, "model must be a name such as 'mlp'"),
    ({"config": "x"}, "config must be a dict"),
    ({"config": {"img_shape": (1, 32, 32)}}, "config img_shape (1, 32, 32) is not MNIST's (1, 28, 28)"),
    ({"config": {"img_shape": 784}}, "config img_shape 784 is not MNIST's"),
    ({"stop_file": 5}, "--stop-file must be a path"),
    ({"data_dir": 5}, "--data-dir must be a path"),
])
def test_train_refuses_wrong_types_before_training(tmp_path: Path, kwargs: dict[str, Any], problem: str) -> None:
    args = {"out": tmp_path / "run", "iterations": 2, "device": "cpu", "progress": False, **kwargs}
    with pytest.raises(GanevalError, match="^" + problem.replace("(", r"\(").replace(")", r"\)")):
        train(args.pop("out"), **args)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("call", "problem"), [
    (lambda d: ganeval.score(SHIPPED, out=5, **FAST), "out must be a path"),
    (lambda d: ganeval.score(SHIPPED, out="", **FAST), "out is an empty path"),
    (lambda d: ganeval.score(SHIPPED, write_report="no", **FAST), "write_report must be True or False"),
    (lambda d: ganeval.score(bytes(SHIPPED), **FAST), "target must be a path (a str or os.PathLike), not bytes"),
    (lambda d: ganeval.score("", **FAST), "target is an empty path"),
    (lambda d: ganeval.compare([SHIPPED, SHIPPED.parent], write_report=7, **FAST), "write_report must be True or False"),
    (lambda d: ganeval.gate(None, max_mnist_fd=5), "gate's target must be a path"),
    (lambda d: ganeval.gate("", max_mnist_fd=5), "gate's target is an empty path"),
    (lambda d: ganeval.load_generator(SHIPPED, use_ema="no"), "use_ema must be True or False"),
    (lambda d: ganeval.export_stats("mnist-train", ["torch-fidelity"], d), "unknown tool ['torch-fidelity']"),
    (lambda d: ganeval.export_stats("mnist-train", "torch-fidelity", d, name=5), "--name must be a string, not int"),
    (lambda d: ganeval.reference_stats("mnist-train", None), "extractor must be a feature extractor or a registered"),
    (lambda d: ganeval.watch(None), "run_dir must be a path"),
    (lambda d: ganeval.watch(d, "x"), "stopper must be an EarlyStopper, not str"),
    (lambda d: ganeval.watch(d, emit=None), "emit must be a callable"),
    (lambda d: ganeval.watch(d, pattern="/tmp/*"), "pattern must be a glob relative to the run folder"),
    (lambda d: ganeval.watch(d, pattern=None), "pattern must be a glob relative to the run folder"),
    (lambda d: ganeval.watch(d, pattern="D_*.pt"), "pattern needs a generator"),
    (lambda d: ganeval.watch(d, stop_file=5), "--stop-file must be a path"),
    (lambda d: ganeval.watch(d, report={"z_dim": 1.5}), "--z-dim must be a positive integer, not 1.5"),
    (lambda d: EarlyStopper(extra="z_dim"), "EarlyStopper extra must be a dict"),
    (lambda d: EarlyStopper(extra={"z_dim": 1.5}), "EarlyStopper extra: --z-dim must be a positive integer"),
])
def test_api_refuses_wrong_types_in_one_line(tmp_path: Path, call: Any, problem: str) -> None:
    with pytest.raises(GanevalError) as err:
        call(tmp_path)
    assert problem in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing written


def test_compare_refuses_write_report_before_picking(tmp_path: Path) -> None:
    """pick="best" scores each run folder whole first; write_report="no" was refused only after that."""
    for run in ("a", "b"):
        for it in (100, 200):
            (tmp_path / run).mkdir(exist_ok=True)
            (tmp_path / run / f"ckpt_{it:07d}.safetensors").write_bytes(b"stand-in: never read")
    with pytest.raises(GanevalError, match="write_report must be True or False"):
        ganeval.compare([tmp_path / "a", tmp_path / "b"], pick="best", write_report="no", **FAST)


def test_a_run_begun_with_a_negative_seed_resumes_with_it_given(tmp_path: Path, mnist_dir: Path) -> None:
    """Negative seeds are refused for new runs; one stored by a run begun before resumes with it (screening gives it)."""
    from ganeval.train.state import save_state

    out = tmp_path / "run"
    train(out, "mlp", iterations=2, checkpoint_every=2, batch_size=8, seed=0, device="cpu", progress=False)
    tensors, meta = load_state(out / STATE_NAME)
    meta["run"]["seed"] = -5
    save_state(out / STATE_NAME, tensors, {k: v for k, v in meta.items() if k not in ("format", "time")})
    assert train(out, iterations=4, seed=-5, resume=True, device="cpu", progress=False).iteration == 4
    with pytest.raises(GanevalError, match="--seed -5 is out of range"):
        train(tmp_path / "new", "mlp", iterations=2, seed=-5, device="cpu", progress=False)
