"""File names the commands met badly: not UTF-8 (copied from a Latin-1 system), legal but long (241-255 bytes),
symlink loops, and a TorchScript archive given where a weight file belongs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from synthetic import BankGenerator, bank_images, write_bank_checkpoint
from test_gate import make_row, make_summary, write_report

from ganeval.errors import CheckpointError

pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own

FAST = ("--metrics", "mnist_fd", "--num-samples", 200, "--device", "cpu", "--no-progress")
LATIN1 = "\udce9"  # the byte 0xe9 of a Latin-1 name, as Python spells it on a UTF-8 system


def test_compare_of_a_file_whose_name_is_not_utf8(tmp_path: Path, cli: Any) -> None:
    """The arm kept the name's surrogate escape while the table held its printable form: StopIteration traceback."""
    odd = tmp_path / f"lat{LATIN1}n"
    a = write_bank_checkpoint(odd, 50, noise=0.8)
    b = write_bank_checkpoint(odd, 200).rename(odd / f"g{LATIN1}n_0000200.safetensors")
    code, out, err = cli("compare", a, b, *FAST, "--bootstrap", 20, "--out", tmp_path / "cmp")
    assert code == 0 and "Traceback" not in err, err
    assert "g\ufffdn_0000200" in out and "ckpt_0000050" in out, out


def test_a_selection_from_two_folders_one_not_utf8_is_scored(tmp_path: Path, cli: Any) -> None:
    """Files from two folders get a digest of the selection in the report's name: hashing the non-UTF-8 path raised
    UnicodeEncodeError before anything was scored."""
    a = write_bank_checkpoint(tmp_path / f"run{LATIN1}", 50, noise=0.8)
    b = write_bank_checkpoint(tmp_path / "other", 100)
    code, out, err = cli("score", a, b, *FAST, "--bootstrap", 0)
    assert code == 0, err
    reports = [p for p in tmp_path.iterdir() if p.name.startswith("report_")]
    assert len(reports) == 1 and (reports[0] / "summary.json").is_file(), list(tmp_path.iterdir())


def test_legal_names_of_up_to_255_bytes_are_written(tmp_path: Path, cli: Any) -> None:
    """The temporary file beside a 241-255-byte name was longer than the file system allows: the work was done and
    the last write failed ("File name too long"), leaving an empty folder behind."""
    ckpt = write_bank_checkpoint(tmp_path / "run", 50)
    out = tmp_path / "long" / ("x" * 238 + ".safetensors")
    code, _, err = cli("export", ckpt, "--out", out)
    assert code == 0 and out.is_file(), err
    report = write_report(tmp_path / "rep", make_summary([make_row(100)]))
    junit = tmp_path / ("j" * 251 + ".xml")
    code, out_, err = cli("gate", report, "--max-fid", "30", "--junit", junit)
    assert code == 0 and "<testsuite" in junit.read_text(), err
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_generator_weights_whose_name_is_not_utf8(tmp_path: Path, cli: Any) -> None:
    """safetensors refused the path as "not valid UTF-8", though ganeval's own checkpoints load under such names."""
    gen = BankGenerator()
    gen.bank.copy_(bank_images(None, 500))
    path = tmp_path / f"G_{LATIN1}_0000900.safetensors"
    save_file(gen.state_dict(), str(path))
    code, out, err = cli("score", path, "--generator", "synthetic:BankGenerator", *FAST, "--bootstrap", 0,
                         "--out", tmp_path / "rep")
    assert code == 0, err
    row = json.loads((tmp_path / "rep" / "summary.json").read_text())["rows"][0]
    assert row["status"] == "ok" and row["mnist_fd"] < 5, row


def test_a_torchscript_archive_given_as_weights_says_so(tmp_path: Path, cli: Any) -> None:
    """torch.load's refusal of a TorchScript archive points the user at weights_only=False."""
    gen = BankGenerator()
    gen.bank.copy_(bank_images(None, 500))
    path = tmp_path / "G_0000100.pt"
    torch.jit.save(torch.jit.trace(gen, torch.randn(2, 16)), str(path))
    code, out, err = cli("score", path, "--generator", "synthetic:BankGenerator", *FAST, "--bootstrap", 0,
                         "--out", tmp_path / "rep")
    assert code == 1, err
    assert "is a TorchScript generator (torch.jit.save), not a weight file: score it without --generator" in out + err
    assert "weights_only" not in out + err


def test_a_torchscript_load_error_keeps_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's refusal of an unsafe TorchScript pickle begins with a newline: the reason printed was empty."""
    from ganeval.sources.generators import load_torchscript

    path = tmp_path / "g.pt"
    torch.jit.save(torch.jit.trace(BankGenerator(), torch.randn(2, 16)), str(path))

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("\nUnsupported global: GLOBAL torch.serialization.save")

    monkeypatch.setattr(torch.jit, "load", refuse)
    with pytest.raises(CheckpointError, match=r"cannot load TorchScript \(RuntimeError: Unsupported global"):
        load_torchscript(path)


def test_a_symlink_loop_named_like_a_checkpoint_is_called_one(tmp_path: Path, cli: Any) -> None:
    run = tmp_path / "run"
    write_bank_checkpoint(run, 10)
    os.symlink("ckpt_0000020.safetensors", run / "ckpt_0000020.safetensors")
    code, out, err = cli("score", run, *FAST, "--bootstrap", 0)
    assert code == 1, err
    assert "ckpt_0000020.safetensors: is a symlink loop" in out + err
    rows = json.loads((run / "report" / "summary.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["ok", "error"]


def test_a_weight_folder_with_discriminators_keeps_the_numbers_in_the_names(tmp_path: Path, cli: Any) -> None:
    """G_100.pt beside D_100.pt: the shared numbers made every row's iteration its position (the verdict said "Keep
    G_100.pt (iteration 3)"); the names' numbers are kept, as watch keeps them, and the D files' rows fail."""
    run = tmp_path / "run"
    run.mkdir()
    clean = bank_images(None, 500)
    for it, noise in ((100, 0.8), (200, 0.0)):
        gen = BankGenerator()
        gen.bank.copy_((clean + noise * torch.rand(clean.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1))
        torch.save(gen.state_dict(), run / f"G_{it}.pt")
        torch.save({"main.0.weight": torch.zeros(4, 4)}, run / f"D_{it}.pt")
    code, out, err = cli("score", run, "--generator", "synthetic:BankGenerator", *FAST, "--bootstrap", 0,
                         "--out", tmp_path / "rep")
    assert code == 1, err
    rows = json.loads((tmp_path / "rep" / "summary.json").read_text())["rows"]
    assert [(r["checkpoint"], r["iteration"], r["status"]) for r in rows] == [
        ("D_100.pt", 100, "error"), ("G_100.pt", 100, "ok"), ("D_200.pt", 200, "error"), ("G_200.pt", 200, "ok")]
    assert "G_200.pt (iteration 200)" in out + err


def test_several_files_given_relative_print_a_relative_report_path(tmp_path: Path, cli: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """One file printed ``report: report_ckpt_…/report.html``; two printed the whole absolute path."""
    write_bank_checkpoint(tmp_path / "run", 100)
    write_bank_checkpoint(tmp_path / "run", 200)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("score", "run/ckpt_0000100.safetensors", "run/ckpt_0000200.safetensors", *FAST, "--bootstrap", 0)
    assert code == 0, err
    assert "report: run/report_ckpt_0000100_ckpt_0000200/report.html" in out, out
