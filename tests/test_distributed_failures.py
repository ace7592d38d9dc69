"""torchrun edge cases: a generator that cannot be re-opened for the path-length pass, generators that draw noise in
``forward``, commands that run as one process only (watch, stats --import/--export), and one error line per run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_distributed import _env, _run

import ganeval
from ganeval.cli import main
from ganeval.errors import GanevalError

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganeval_test_entry"]
SCORE = ["--metrics", "mnist_fd", "mnist_ppl", "--num-samples", "300", "--batch-size", "100", "--bootstrap", "0",
         "--device", "cpu", "--no-cache", "--no-progress"]

REOPEN = '''import inspect
import os

import torch
from torch import nn


def _fails() -> bool:
    """Out of memory (simulated) on rank FAIL_RANK, only while the generator is re-opened for path lengths."""
    in_ppl = any(f.function == "source_path_lengths" for f in inspect.stack())
    return in_ppl and os.environ.get("RANK", "0") == os.environ["FAIL_RANK"]


class G(nn.Module):
    def __init__(self, where: str = "to"):
        if where == "init" and _fails():
            raise RuntimeError("CUDA out of memory (simulated, constructor)")
        super().__init__()
        self.nz, self.where = 16, where
        self.fc = nn.Linear(16, 784)
        self.register_buffer("fails", torch.zeros(()))  # where="to": only the weights saved with fails = 1

    def to(self, *args, **kwargs):
        if self.where == "to" and bool(self.fails) and _fails():
            raise RuntimeError("CUDA out of memory (simulated, .to(device))")
        return super().to(*args, **kwargs)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 1, 28, 28)
'''

NOISY = '''import torch
from torch import nn


class Noisy(nn.Module):
    """Noise injection inside forward, as StyleGAN2's noise_mode='random'."""

    def __init__(self):
        super().__init__()
        self.nz = 16
        self.fc = nn.Linear(16, 784)

    def forward(self, z):
        x = self.fc(z)
        return torch.tanh(x + 0.5 * torch.randn_like(x)).view(-1, 1, 28, 28)
'''


def _weights(tmp_path: Path, module: str, text: str, cls: str, flags: tuple[float, ...]) -> Path:
    """Two (or more) weight files of ``cls`` from ``module`` (written to ``tmp_path``); ``flags``: buffers ``fails``."""
    (tmp_path / f"{module}.py").write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        mod = __import__(module)
    finally:
        sys.path.remove(str(tmp_path))
    folder = tmp_path / "weights"
    folder.mkdir()
    for i, flag in enumerate(flags, 1):
        torch.manual_seed(i)
        g = getattr(mod, cls)()
        state = g.state_dict()
        if "fails" in state:
            state["fails"] = torch.tensor(flag)
        torch.save(state, folder / f"G_{i}000.pt")
    return folder


@pytest.mark.parametrize("where", ["init", "to"])
def test_a_generator_failing_to_reopen_for_path_lengths_fails_its_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       where: str) -> None:
    """Re-building the generator (or moving it to its device) for the path-length pass raises: that checkpoint's row
    error, with one process (not "mnist_ppl unavailable", not a traceback) and under torchrun with the failing rank
    named (rank 1 alone fails: no hang in the gather)."""
    folder = _weights(tmp_path, "reopen", REOPEN, "G", (0.0, 1.0))
    gen = f"{tmp_path / 'reopen.py'}:G"
    failing = ["G_1000.pt", "G_2000.pt"] if where == "init" else ["G_2000.pt"]  # the constructor cannot see weights
    monkeypatch.setenv("FAIL_RANK", "0")
    monkeypatch.delenv("RANK", raising=False)
    df = ganeval.score(str(folder), generator=gen, generator_kwargs={"where": where}, metrics=["mnist_fd", "mnist_ppl"],
                       num_samples=300, batch_size=100, bootstrap=0, device="cpu", use_cache=False, progress=False)
    rows = df.set_index("checkpoint")
    assert df.attrs["failed"]
    assert list(rows.index[rows["status"] == "error"]) == failing
    assert all("CUDA out of memory (simulated" in rows.loc[c, "error"] for c in failing)
    assert not any("unavailable" in n for n in df.attrs["summary"]["notes"]), df.attrs["summary"]["notes"]
    assert (rows.drop(failing)["mnist_ppl"] > 0).all()
    env = {**_env(tmp_path), "FAIL_RANK": "1"}
    res = _run([*TORCHRUN, "score", str(folder), "--generator", gen, "--generator-kwargs", json.dumps({"where": where}),
                *SCORE, "--out", str(tmp_path / "two")], env=env, timeout=240)
    assert res.returncode == 1, res.stderr[-3000:]
    two = pd.read_csv(tmp_path / "two" / "scores.csv").set_index("checkpoint")
    assert list(two.index[two["status"] == "error"]) == failing
    assert all(two.loc[c, "error"].endswith("(simulated, constructor) (on rank 1)" if where == "init" else
                                            "(simulated, .to(device)) (on rank 1)") for c in failing), two["error"]
    assert "]: Traceback" not in res.stderr, res.stderr[-3000:]  # no rank's own traceback (torchrun's summary has one)


def test_noise_drawn_in_forward_is_the_same_in_every_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator that draws noise inside forward gives the same FD and path lengths in two runs of one process (the
    global RNG state differs between them) and under torchrun, so its cached values are the values."""
    folder = _weights(tmp_path, "noisy", NOISY, "Noisy", (0.0,))
    gen = f"{tmp_path / 'noisy.py'}:Noisy"
    cols = ["mnist_fd", "mnist_ppl", "mnist_ppl_std"]
    opts = {"metrics": ["mnist_fd", "mnist_ppl"], "num_samples": 300, "batch_size": 100, "bootstrap": 0, "device": "cpu",
            "use_cache": False, "progress": False}
    first = ganeval.score(str(folder), generator=gen, **opts)[cols].to_numpy()
    torch.rand(7)  # another global RNG state
    second = ganeval.score(str(folder), generator=gen, **opts)[cols].to_numpy()
    np.testing.assert_array_equal(second, first)
    res = _run([*TORCHRUN, "score", str(folder), "--generator", gen, *SCORE, "--out", str(tmp_path / "two")],
               env=_env(tmp_path), timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    two = pd.read_csv(tmp_path / "two" / "scores.csv")[cols].to_numpy()
    np.testing.assert_allclose(two, first, rtol=1e-9)


@pytest.mark.parametrize("args", [["watch", "RUN", "--interval", "0.1", "--idle-timeout", "1", "--settle", "0"],
                                  ["stats", "--export", "mnist-test", "--to", "torch-fidelity", "--out", "OUT"],
                                  ["stats", "--import", "STATS", "--made-by", "torch-fidelity", "--out", "OUT/x_inception.npz"]])
def test_one_process_commands_are_refused_under_torchrun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """watch and stats --import/--export started by torchrun (WORLD_SIZE > 1): one line, exit 2, nothing written
    (every rank would otherwise do the whole job and write the same files)."""
    np.savez(tmp_path / "stats.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    subst = {"RUN": str(tmp_path / "run"), "OUT": str(tmp_path / "out"), "STATS": str(tmp_path / "stats.npz"),
             "OUT/x_inception.npz": str(tmp_path / "out" / "x_inception.npz")}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    assert main([subst.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ganeval: error: {' '.join(args[:2]) if args[0] == 'stats' else 'watch'} does not run under "
                   "torchrun; run it as one process"], err
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()
    if args[0] == "watch":
        with pytest.raises(GanevalError, match="does not run under torchrun"):
            ganeval.watch(tmp_path / "run", idle_timeout_s=1, interval_s=0.1)


def test_ranks_other_than_0_print_no_error_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An input error (or a usage error) is met by every rank: rank 0 alone prints it, the others keep the exit code."""
    bad = ["score", "/nonexistent", "--reference", "/nonexistent.npz"]
    for rank, shown in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        assert main(bad) == 2
        assert ("ganeval: error:" in capsys.readouterr().err) is shown
        with pytest.raises(SystemExit) as exit_:
            main(["score", "x", "--metrics", "nosuch"])
        assert exit_.value.code == 2 and ("error:" in capsys.readouterr().err) is shown


def test_torchrun_prints_one_error_line(tmp_path: Path) -> None:
    """Under torchrun a refusal is printed once (by rank 0), not once per rank."""
    res = _run([*TORCHRUN, "watch", str(tmp_path / "run"), "--idle-timeout", "1", "--interval", "0.1"],
               env=_env(tmp_path), timeout=120)
    assert res.returncode != 0
    lines = [line for line in (res.stdout + res.stderr).splitlines() if "ganeval: error:" in line]
    assert lines == ["ganeval: error: watch does not run under torchrun; run it as one process"], res.stderr[-3000:]
    assert not os.path.exists(tmp_path / "run" / "watch.json")


@pytest.mark.parametrize("extra", [[], ["--num-samples", "0"]])
def test_gate_rank_1_prints_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    """gate under torchrun with a report TARGET (no process group joined) or bad options (refused before scoring joins
    it): rank 1 printed the verdict and the JSON and wrote the JUnit file and the step summary as well, since it asked
    the (unjoined) group for its rank. Rank 0 alone speaks and writes; rank 1 keeps the exit code."""
    from test_gate import make_row, make_summary, write_report

    report = write_report(tmp_path / "rep", make_summary([make_row(1000), make_row(2000)]))
    target = str(tmp_path / "run") if extra else str(report)
    if extra:
        (tmp_path / "run").mkdir()
    monkeypatch.setenv("WORLD_SIZE", "2")
    codes = {}
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / f"step_{rank}.md"))
        codes[rank] = main(["gate", target, "--max-fid", "30", "--json", "--junit", str(tmp_path / f"j_{rank}.xml"), *extra])
        out, err = capsys.readouterr()
        if rank == "1":
            assert (out, err) == ("", ""), (out, err)
        else:
            assert json.loads(out)["exit_code"] == codes[rank]
    assert codes["1"] == codes["0"] == (2 if extra else 0)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".md", ".xml")) == ["j_0.xml", "step_0.md"]
