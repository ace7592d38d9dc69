"""``ganeval export``: the generator alone, identical in output to what the full checkpoint gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganeval.checkpoints import export_generator, load_generator, read_metadata, save_checkpoint
from ganeval.errors import CheckpointError
from ganeval.models import build_generator


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    """A checkpoint whose raw and EMA generators differ."""
    torch.manual_seed(0)
    g = build_generator("dcgan", {"channels": 4})
    ema = build_generator("dcgan", {"channels": 4})
    meta = {"model": "dcgan", "config": {"channels": 4, "latent_dim": 128}, "latent_dim": 128, "iteration": 7, "ema": True}
    return save_checkpoint(tmp_path / "ckpt_0000007.safetensors", g, meta, ema=ema)


def _out(path: Path, z: torch.Tensor, use_ema: bool = True) -> torch.Tensor:
    gen, _ = load_generator(path, use_ema=use_ema)
    with torch.inference_mode():
        return gen(z)


def test_export_keeps_the_scored_generator_and_metadata(ckpt: Path, tmp_path: Path, cli) -> None:
    z = torch.randn(5, 128)
    code, out, err = cli("export", ckpt, "--out", tmp_path / "slim.safetensors")
    assert code == 0, err
    slim = tmp_path / "slim.safetensors"
    assert "g_ema weights of dcgan at iteration 7" in out
    assert set(load_file(str(slim))) == {k for k in load_file(str(ckpt)) if k.startswith("g_ema.")}
    assert slim.stat().st_size < 0.6 * ckpt.stat().st_size
    assert torch.equal(_out(slim, z), _out(ckpt, z))
    assert not torch.equal(_out(slim, z), _out(ckpt, z, use_ema=False))  # the EMA weights, not the raw ones
    meta, src_meta = read_metadata(slim), read_metadata(ckpt)
    assert meta["iteration"] == 7 and meta["config"] == src_meta["config"]
    _, info = load_generator(ckpt)
    assert meta["exported_from"] == {"name": ckpt.name, "sha256": info["sha256"], "weights": "g_ema"}
    again = export_generator(slim, tmp_path / "again.safetensors")  # an export of an export: the chain is kept
    _, slim_info = load_generator(slim)
    assert read_metadata(again)["exported_from"] == {"name": slim.name, "sha256": slim_info["sha256"], "weights": "g_ema",
                                                     "exported_from": meta["exported_from"]}
    raw = export_generator(ckpt, tmp_path / "raw.safetensors", use_ema=False)
    assert torch.equal(_out(raw, z), _out(ckpt, z, use_ema=False))
    # the metadata says what the file holds: the raw generator alone is not EMA weights
    assert meta["ema"] is True and read_metadata(raw)["ema"] is False
    assert set(load_file(str(raw))) == {k for k in load_file(str(ckpt)) if k.startswith("g.")}


def test_export_bad_input_is_one_line_and_writes_nothing(ckpt: Path, tmp_path: Path, cli) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    code, _, err = cli("export", junk, "--out", tmp_path / "x.safetensors")
    assert code == 2 and str(junk) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.safetensors").exists() and not list(tmp_path.glob(".x.safetensors.*"))
    with pytest.raises(CheckpointError, match="exists; refusing"):
        export_generator(ckpt, ckpt)
    slim = export_generator(ckpt, tmp_path / "slim.safetensors")  # EMA weights only: --raw has nothing to take
    code, _, err = cli("export", slim, "--out", tmp_path / "r.safetensors", "--raw")
    assert code == 2 and "holds only the EMA generator" in err and not (tmp_path / "r.safetensors").exists()


@pytest.mark.parametrize("name", ["slim.pt", "slim.ts", "slim.onnx", "slim", "slim.safetensors.bak"])
def test_export_refuses_an_out_that_is_not_safetensors(ckpt: Path, tmp_path: Path, cli, name: str) -> None:
    """The export is a safetensors file; ganeval reads a file by its extension (slim.pt as TorchScript), so any
    other name could not be scored: refused in one line naming --out and .safetensors, before anything is written."""
    code, out, err = cli("export", ckpt, "--out", tmp_path / name)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert f"--out {tmp_path / name}: must end in .safetensors" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.name]
    with pytest.raises(CheckpointError, match="must end in .safetensors"):
        export_generator(ckpt, tmp_path / name)
    assert export_generator(ckpt, tmp_path / "slim.SafeTensors").is_file()  # the case ganeval's loader ignores
