"""Options no run can use are refused before any work, in one line: exit 2 from the CLI, ``GanevalError`` from the
API (devices), whichever command takes them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from synthetic import write_bank_checkpoint

import ganeval
from ganeval.errors import GanevalError
from ganeval.train.recipes import TrainError

FAST: dict[str, Any] = {"num_samples": 200, "metrics": ["mnist_fd"], "bootstrap": 0, "device": "cpu", "progress": False}
SCORING = ("--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 0, "--no-progress")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))


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
