"""Weight files of the user's own generator class (``--generator MODULE:NAME``): found, loaded safely, scored."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch
from synthetic import BankGenerator, write_bank_checkpoint

import ganeval
from ganeval.checkpoints import load_generator
from ganeval.errors import CheckpointError, GanevalError
from ganeval.sources.state_dicts import resolve_spec

FAST = {"metrics": ("mnist_fd", "mnist_is"), "num_samples": 300, "bootstrap": 0, "device": "cpu", "progress": False}
GEN_PY = """
import torch
from torch import nn


class Gen(nn.Module):
    def __init__(self, nz=16, width=32):
        super().__init__()
        self.nz = nz
        self.net = nn.Sequential(nn.Linear(nz, width), nn.ReLU(), nn.Linear(width, 784), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)
"""


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture
def bank(tmp_path: Path) -> tuple[Path, BankGenerator, dict]:
    ckpt = write_bank_checkpoint(tmp_path / "ckpt", 1000, noise=0.2)
    gen, meta = load_generator(ckpt)
    return ckpt, gen, meta["config"]


def test_a_training_bundle_scores_exactly_like_the_checkpoint(tmp_path: Path, bank) -> None:
    """{"G": DDP-prefixed state dict, "D": ..., "epoch": 3} of the same weights: the same samples, the same metrics."""
    ckpt, gen, cfg = bank
    bundle = {"G": {f"module.{k}": v for k, v in gen.state_dict().items()},
              "D": {"w": torch.randn(3, 3)}, "opt": {"lr": 2e-4}, "epoch": 3}
    torch.save(bundle, tmp_path / "G_001000.pt")
    ref = ganeval.score(ckpt, **FAST)
    got = ganeval.score(tmp_path / "G_001000.pt", generator=BankGenerator, generator_kwargs=cfg, **FAST)
    assert got["status"].iloc[0] == "ok"
    for col in ("mnist_fd", "mnist_is"):
        assert got[col].iloc[0] == ref[col].iloc[0]
    changed = dict(cfg, noise=0.5)  # other weights or kwargs → other samples (the test can fail)
    other = ganeval.score(tmp_path / "G_001000.pt", generator=BankGenerator, generator_kwargs=changed, **FAST)
    assert other["mnist_fd"].iloc[0] != ref["mnist_fd"].iloc[0]


class Wrapped(torch.nn.Module):
    """A generator whose own submodule is named ``module`` (the DDP wrapper's prefix)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.module = torch.nn.Sequential(torch.nn.Linear(16, 784), torch.nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.module(z).view(-1, 1, 28, 28)


def test_a_submodule_named_module_is_loaded_by_its_own_names(tmp_path: Path) -> None:
    """Its names are tried as saved before the DDP prefix is stripped; saved through DDP (module.module.*), too."""
    gen = Wrapped()
    torch.save(gen.state_dict(), tmp_path / "G_000100.pt")
    torch.save({f"module.{k}": v for k, v in gen.state_dict().items()}, tmp_path / "G_000200.pt")
    df = ganeval.score(tmp_path, generator=Wrapped, z_dim=16, **FAST)
    assert list(df["status"]) == ["ok", "ok"], list(df["error"])
    assert df["mnist_fd"].iloc[0] == df["mnist_fd"].iloc[1]


def test_a_folder_is_a_series_and_the_cli_takes_a_file_spec(tmp_path: Path, cli) -> None:
    (tmp_path / "models.py").write_text(GEN_PY)
    run = tmp_path / "run"
    run.mkdir()
    spec = resolve_spec(f"{tmp_path / 'models.py'}:Gen", '{"nz": 16}')
    for epoch in (20, 5, 10):
        torch.manual_seed(epoch)
        torch.save(spec.factory(nz=16).state_dict(), run / f"netG_epoch_{epoch}.pth")
    (run / "notes.txt").write_text("x")
    code, out, err = cli("score", run, "--generator", f"{tmp_path / 'models.py'}:Gen", "--generator-kwargs", '{"nz": 16}',
                         "--metrics", "mnist_fd", "--num-samples", "200", "--bootstrap", "0", "--device", "cpu",
                         "--no-progress", "--json")
    assert code == 0, err
    summary = json.loads(out)
    scores = pd.read_csv(run / "report" / "scores.csv")
    assert scores["checkpoint"].tolist() == ["netG_epoch_5.pth", "netG_epoch_10.pth", "netG_epoch_20.pth"]
    assert scores["iteration"].tolist() == [5, 10, 20] and scores["mnist_fd"].nunique() == 3
    assert any("ignored 1 non-weight" in n for n in summary["notes"])


def test_two_fitting_entries_need_a_state_key(tmp_path: Path, bank) -> None:
    ckpt, gen, cfg = bank
    sd = gen.state_dict()
    torch.save({"G": sd, "g_ema": {k: v.clone() for k, v in sd.items()}}, tmp_path / "both.pt")
    df = ganeval.score(tmp_path / "both.pt", generator=BankGenerator, generator_kwargs=cfg, **FAST)
    assert df["status"].iloc[0] == "error" and "several entries fit the generator ('G', 'g_ema')" in df["error"].iloc[0]
    df = ganeval.score(tmp_path / "both.pt", generator=BankGenerator, generator_kwargs=cfg, state_key="g_ema", **FAST)
    assert df["status"].iloc[0] == "ok"
    assert df["mnist_fd"].iloc[0] == ganeval.score(ckpt, **FAST)["mnist_fd"].iloc[0]


def test_bad_files_fail_alone_with_one_line(tmp_path: Path, bank) -> None:
    ckpt, gen, cfg = bank
    run = tmp_path / "run"
    run.mkdir()
    torch.save(gen.state_dict(), run / "G_1.pt")
    torch.save({"G": gen.state_dict(), "args": argparse.Namespace(lr=1)}, run / "G_2.pt")  # not a plain container
    torch.save(BankGenerator(bank_size=7).state_dict(), run / "G_3.pt")  # other shapes
    torch.save({"weight": torch.ones(2)}, run / "G_4.pt")  # other names
    (run / "G_5.pt").write_bytes(b"not a torch file")
    df = ganeval.score(run, generator=BankGenerator, generator_kwargs=cfg, **FAST)
    assert df["status"].tolist() == ["ok", "error", "error", "error", "error"]
    errors = df["error"].tolist()[1:]
    assert all("\n" not in e for e in errors)
    assert "G_2.pt: holds objects other than tensors" in errors[0] and "weights_only" in errors[0]
    assert "G_3.pt: weights do not fit the generator" in errors[1] and "size mismatch" in errors[1]
    assert "G_4.pt: the closest match" in errors[2] and "missing" in errors[2]
    assert "G_5.pt: cannot read weights" in errors[3]


def test_input_errors(tmp_path: Path, cli) -> None:
    (tmp_path / "w.pt").write_bytes(b"x")
    code, _, err = cli("score", tmp_path / "w.pt", "--state-key", "G")
    assert code == 2 and "need --generator" in err
    code, _, err = cli("score", tmp_path / "w.pt", "--generator", "no_such_module_xyz:Gen")
    assert code == 2 and "cannot import no_such_module_xyz" in err and err.count("\n") == 1
    code, _, err = cli("score", tmp_path / "w.pt", "--generator", "synthetic:BankGenerator", "--generator-kwargs", "{nz: 1}")
    assert code == 2 and "--generator-kwargs is not valid JSON" in err
    with pytest.raises(GanevalError, match="MODULE:NAME"):
        resolve_spec("synthetic.BankGenerator")
    with pytest.raises(GanevalError, match="not a torch.nn.Module"):
        ganeval.score(tmp_path / "w.pt", generator=lambda: 3, **FAST)


def test_the_cache_key_follows_the_class_source(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(GEN_PY)
    first = resolve_spec(f"{tmp_path / 'a.py'}:Gen").identity()
    (tmp_path / "a.py").write_text(GEN_PY.replace("nn.Tanh()", "nn.Hardtanh()"))
    assert resolve_spec(f"{tmp_path / 'a.py'}:Gen").identity() != first
    assert resolve_spec(f"{tmp_path / 'a.py'}:Gen", {"nz": 8}).identity() != resolve_spec(f"{tmp_path / 'a.py'}:Gen").identity()


def test_compare_and_gate_take_weight_files(tmp_path: Path, bank, cli) -> None:
    ckpt, gen, cfg = bank
    torch.save(gen.state_dict(), tmp_path / "a.pt")
    comp = ganeval.compare([tmp_path / "a.pt", ckpt], generator=BankGenerator, generator_kwargs=cfg,
                           metrics=("mnist_fd",), num_samples=300, bootstrap=50, device="cpu", progress=False)
    d = comp.differences.set_index("metric").loc["mnist_fd"]
    assert not comp.failed
    assert d["difference"] == 0 and d["ci_low"] == 0 and d["ci_high"] == 0  # the same weights, as a state dict and as a checkpoint
    code, out, err = cli("gate", tmp_path / "a.pt", "--generator", "synthetic:BankGenerator", "--generator-kwargs",
                         json.dumps(cfg), "--metrics", "mnist_fd", "--max-mnist-fd", "1e9", "--num-samples", "200",
                         "--bootstrap", "0", "--device", "cpu", "--no-progress")
    assert code == 0, err + out


def test_the_report_names_the_generator_and_the_entry(tmp_path: Path, bank) -> None:
    ckpt, gen, cfg = bank
    torch.save({"state_dict": {"G": gen.state_dict()}}, tmp_path / "G_5.pt")
    df = ganeval.score(tmp_path / "G_5.pt", generator=BankGenerator, generator_kwargs=cfg, **FAST)
    notes = df.attrs["summary"]["notes"]
    assert any("synthetic:BankGenerator" in n and "entry 'state_dict.G'" in n for n in notes), notes


def test_a_state_dict_without_generator_says_how(tmp_path: Path, bank) -> None:
    torch.save(bank[1].state_dict(), tmp_path / "G_1.pt")
    df = ganeval.score(tmp_path / "G_1.pt", **FAST)
    assert df["status"].iloc[0] == "error" and "pass its class: --generator MODULE:NAME" in df["error"].iloc[0]


def test_weight_dtypes_other_widths_load_integers_do_not(tmp_path: Path) -> None:
    from ganeval.sources.state_dicts import load_state_dict_generator, read_weights, resolve_spec

    torch.manual_seed(0)
    spec = resolve_spec(lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh()))
    sd = spec.build().state_dict()
    torch.save({k: v.half() for k, v in sd.items()}, tmp_path / "G_1.pt")
    model, _ = load_state_dict_generator(tmp_path / "G_1.pt", spec, None, torch.device("cpu"))
    assert model[0].weight.dtype == torch.float32 and torch.equal(model[0].weight, sd["0.weight"].half().float())
    torch.save({k: (v * 10).long() for k, v in sd.items()}, tmp_path / "G_2.pt")
    with pytest.raises(CheckpointError, match=r"G_2.pt: weights of the wrong type \(0.weight is int64, the model's is float32\)"):
        load_state_dict_generator(tmp_path / "G_2.pt", spec, None, torch.device("cpu"))
    torch.save({"G": sd, "args": argparse.Namespace(lr=1)}, tmp_path / "G_3.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="G_3.pt: holds objects other than tensors and plain containers such as argparse.Namespace"):
        read_weights(tmp_path / "G_3.pt")  # the legacy (non-zip) format too: the reason, not "neither a torch.save archive"
    (tmp_path / "G_4.pt").write_bytes(b"hello, not weights")
    with pytest.raises(CheckpointError, match=r"G_4.pt: cannot read weights: not a safetensors or torch.save file, or damaged \(KeyError"):
        read_weights(tmp_path / "G_4.pt")
    with (tmp_path / "G_5.pt").open("wb") as fh:
        pickle.dump({"w": [1, 2]}, fh, protocol=4)  # a plain pickle: torch's refusal began
    with pytest.raises(CheckpointError) as info:  # "… Re-running torch.load with weights_only set to False …", cut
        read_weights(tmp_path / "G_5.pt")
    assert str(info.value) == (f"{tmp_path / 'G_5.pt'}: cannot read weights: not safetensors, nor a torch.save file of "
                               "tensors (a plain pickle?; Unsupported operand 149); save G.state_dict() with torch.save "
                               "or safetensors")


def test_api_kwargs_json_cannot_encode_still_score_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``generator_kwargs={"nz": np.int64(16), "dtype": torch.float32}`` from Python: every checkpoint was scored, then
    the report's JSON raised TypeError (nothing written, nothing returned); and a numpy int latent size was not read."""
    import numpy as np

    (tmp_path / "own_models.py").write_text(GEN_PY.replace("width=32):", "width=32, dtype=torch.float32):"))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = resolve_spec("own_models:Gen", {"nz": 16})
    (tmp_path / "run").mkdir()
    torch.manual_seed(0)
    torch.save(spec.factory(nz=16).state_dict(), tmp_path / "run" / "G_100.pt")
    df = ganeval.score(tmp_path / "run", generator="own_models:Gen", out=tmp_path / "rep",
                       generator_kwargs={"nz": np.int64(16), "dtype": torch.float32, "width": np.int32(32)}, **FAST)
    assert df["status"].tolist() == ["ok"], df.get("error")
    written = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert written["options"]["extra"]["generator_kwargs"] == {"nz": 16, "dtype": "torch.float32", "width": 32}
