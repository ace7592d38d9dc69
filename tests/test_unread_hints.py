"""Input hints (``--z-dim``, ``--z-type``, ``--output-range``, ``--generator``, …) that no input of the run reads are
refused before any work, in one line (exit 2; ``GanevalError`` from the API), as options no asked metric reads are;
a hint some input of the run reads (a series mixing sources, a gate's baseline model) is taken."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from synthetic import BankGenerator, bank_images, write_bank_checkpoint

import ganeval
from ganeval.errors import GanevalError

SCORING = ("--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 0, "--device", "cpu", "--no-progress")
QUICK: dict[str, Any] = {"metrics": ("mnist_fd",), "num_samples": 200, "bootstrap": 0, "device": "cpu", "progress": False}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _digits(n: int = 200, offset: int = 0) -> np.ndarray:
    """``n`` real digits as uint8 ``(n, 28, 28)``."""
    return ((bank_images(n=n + offset).numpy()[offset:, 0] + 1) * 127.5).round().astype(np.uint8)


def _inputs(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """Two inputs of ``kind`` (two compare arms; the first is score's and gate's)."""
    if kind == "checkpoint":
        return (write_bank_checkpoint(tmp_path / "a", 1000), write_bank_checkpoint(tmp_path / "b", 1000, noise=0.3))
    if kind == "npz":
        np.savez(tmp_path / "a.npz", images=_digits())
        np.save(tmp_path / "b.npy", _digits(offset=200))
        return tmp_path / "a.npz", tmp_path / "b.npy"
    from PIL import Image

    for name, images in (("a", _digits()), ("b", _digits(offset=200))):
        (tmp_path / name).mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img).save(tmp_path / name / f"{i:04d}.png")
    return tmp_path / "a", tmp_path / "b"


CASES = [("checkpoint", "--z-dim", "16", "ganeval checkpoints"),  # the checkpoint's own latent size too
         ("checkpoint", "--output-range", "0,1", "ganeval checkpoints"),
         ("npz", "--output-range", "0,1", "integer-pixel sample arrays"),  # uint8 pixels: no range to apply
         ("npz", "--z-type", "uniform", "integer-pixel sample arrays"),
         ("npz", "--generator", "synthetic:BankGenerator", "integer-pixel sample arrays"),
         ("images", "--output-range", "0,1", "stored images")]  # (a folder of images with --generator was refused)


@pytest.mark.parametrize(("kind", "flag", "value", "inputs"), CASES)
@pytest.mark.parametrize("command", ["score", "gate", "compare"])
def test_a_hint_no_input_reads_is_refused(tmp_path: Path, mnist_dir: Path, cli, command: str, kind: str, flag: str,
                                         value: str, inputs: str) -> None:
    """A --z-dim or --output-range given with ganeval checkpoints, stored samples or images was recorded in the
    options' extra and ignored (exit 0; a --z-dim contradicting the checkpoint's own too): one line, exit 2, nothing
    written; the API refuses it too, as a keyword or in ``extra``."""
    a, b = _inputs(tmp_path, kind)
    argv = {"score": ("score", a), "gate": ("gate", a, "--max-mnist-fd", 1000), "compare": ("compare", a, b)}[command]
    code, out, err = cli(*argv, *SCORING, flag, value, "--out", tmp_path / "out")
    want = f"{flag} is read only by "
    assert code == 2 and out == "" and want in err and f"the inputs here are {inputs}" in err, err
    assert err.strip().count("\n") == 0 and not (tmp_path / "out").exists()
    key = flag.lstrip("-").replace("-", "_")
    api = {"score": lambda **o: ganeval.score(a, **o), "gate": lambda **o: ganeval.gate(a, max_mnist_fd=1000, **o),
           "compare": lambda **o: ganeval.compare([a, b], **o)}[command]
    for given in ({key: value}, {"extra": {key: value}}):
        with pytest.raises(GanevalError, match=want):
            api(out=tmp_path / "out", **QUICK, **given)
    assert not (tmp_path / "out").exists()


def test_sample_arrays_read_the_output_range_where_they_hold_floats(tmp_path: Path, mnist_dir: Path, cli) -> None:
    """A float array reads --output-range (stored, or in memory), an integer one does not: a series of both takes it,
    and the float set is read in that range."""
    digits = _digits()
    np.savez(tmp_path / "u8.npz", images=digits)
    np.save(tmp_path / "unit.npy", digits.astype(np.float32) / 255)
    code, _, err = cli("score", tmp_path / "u8.npz", tmp_path / "unit.npy", *SCORING, "--output-range", "0,1",
                       "--out", tmp_path / "series")
    rows = json.loads((tmp_path / "series" / "summary.json").read_text())["rows"]
    assert code == 0 and rows[0]["mnist_fd"] == pytest.approx(rows[1]["mnist_fd"], rel=1e-6), err
    with pytest.raises(GanevalError, match="the inputs here are integer-pixel sample arrays"):
        ganeval.score(digits, output_range="0,1", **QUICK)
    unit = ganeval.score(torch.from_numpy(digits.astype(np.float32) / 255), output_range="0,1", **QUICK)
    assert unit["mnist_fd"].iloc[0] == pytest.approx(rows[0]["mnist_fd"], rel=1e-6)


def test_a_folder_mixing_checkpoints_and_weight_files_takes_the_generator(tmp_path: Path, mnist_dir: Path, cli) -> None:
    """--generator is read by the weight files of a folder that also holds a ganeval checkpoint (scored as one):
    taken, both scored, in score and in watch (which judges each file with the hints it reads)."""
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000)
    gen = BankGenerator()
    gen.bank.copy_(bank_images(None, 500))
    torch.save({"G": gen.state_dict()}, run / "G_2000.pt")
    code, _, err = cli("score", run, *SCORING, "--generator", "synthetic:BankGenerator", "--out", tmp_path / "s")
    rows = json.loads((tmp_path / "s" / "summary.json").read_text())["rows"]
    assert code == 0 and [r["status"] for r in rows] == ["ok", "ok"], err
    assert rows[0]["mnist_fd"] == pytest.approx(rows[1]["mnist_fd"], rel=1e-6)  # one digit bank, one latent set
    import os
    import time

    for p in run.iterdir():
        os.utime(p, (time.time() - 60, time.time() - 60))
    code, out, err = cli("watch", run, "--generator", "synthetic:BankGenerator", "--interval", "0.05", "--idle-timeout",
                         "0.6", "--settle", "0", "--num-samples", "200", "--bootstrap", "2", "--device", "cpu",
                         "--out", tmp_path / "w")
    judged = json.loads((tmp_path / "w" / "watch.json").read_text())
    assert code == 0 and [h["iteration"] for h in judged["history"]] == [1000, 2000] and not judged["failed"], out + err


def test_a_hint_only_the_gates_baseline_model_reads_is_taken(tmp_path: Path, mnist_dir: Path, cli) -> None:
    """gate CKPT --baseline MODEL: a --z-dim the baseline (a TorchScript that does not say its latent size) reads is
    taken, and the checkpoint is scored without it; a gate of that report gets it again for the baseline. Read by
    neither, it is refused."""
    from test_gate_model_baseline import _torchscript

    ckpt = write_bank_checkpoint(tmp_path / "run", 1000)
    lin = _torchscript(tmp_path / "lin.pt", 2, z_dim=None)
    gate = ("--max-regression", 1000, "--json", "--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 20,
            "--device", "cpu", "--no-progress")
    code, out, err = cli("gate", ckpt, "--baseline", lin, "--z-dim", 64, "--output-range", "0,1", "--out", tmp_path / "r",
                         *gate)
    assert code == 0 and json.loads(out)["criteria"][0]["metric"] == "mnist_fd", err
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["options"]["extra"] == {}  # read by the checkpoint: none
    code, again, err = cli("gate", tmp_path / "r", "--baseline", lin, "--z-dim", 64, "--output-range", "0,1", "--json")
    assert code == 0 and json.loads(again)["criteria"][0]["value"] == json.loads(out)["criteria"][0]["value"], err
    assert not any("scoring options ignored" in n for n in json.loads(again)["notes"])
    other = write_bank_checkpoint(tmp_path / "other", 1000, noise=0.3)
    code, out, err = cli("gate", ckpt, "--baseline", other, "--z-dim", 64, "--out", tmp_path / "r2", *gate)
    assert code == 2 and "--z-dim is read only by generators" in err and not (tmp_path / "r2").exists(), err
