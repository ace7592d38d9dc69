"""Bring your own generator: TorchScript / ONNX files, callables, arrays and folders of samples (docs/inputs.md)."""

from __future__ import annotations

import io
import json
import math
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from synthetic import bank_images
from torch import nn

from ganeval.checkpoints import save_checkpoint
from ganeval.errors import CheckpointError, GanevalError
from ganeval.evaluate import score
from ganeval.inputs import resolve_target
from ganeval.models import build_generator
from ganeval.sampling import latents, to_uint8
from ganeval.sources.generators import check_torchscript, probe_onnx, scan_pickle

MNIST_ONLY = ("mnist_is", "mnist_fd", "modes")
FAST: dict[str, Any] = {"num_samples": 240, "metrics": MNIST_ONLY, "bootstrap": 20, "device": "cpu", "progress": False}
CLI_FAST = ["--num-samples", "240", "--metrics", *MNIST_ONLY, "--bootstrap", "20", "--device", "cpu"]


def _mnist_ready() -> bool:
    import ganeval.features.mnist_classifier as mc
    from ganeval.reference import reference_path

    return mc.SHIPPED_WEIGHTS.exists() and reference_path("mnist-train", "mnist").is_file()


needs_mnist = pytest.mark.skipif(not _mnist_ready(), reason="the shipped MNIST classifier or its reference stats are not built yet")


@pytest.fixture(autouse=True)
def _cache_and_quiet(own_cache: Path) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit / onnx exporter deprecations
    warnings.filterwarnings("ignore", category=DeprecationWarning)


class MLPImages(nn.Module):
    """The bundled MLP generator, seeded, giving (B, 1, 28, 28) in [-1, 1]; ``latent_dim`` for TorchScript."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.g = build_generator("mlp")
        self.latent_dim = 100
        self.eval()  # export in eval mode: a module left in training mode exports BatchNorm with batch statistics

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.g(z).view(-1, 1, 28, 28)


class NoisyBank(nn.Module):
    """Real digits picked by z[:, 0] plus ``noise`` × a z-dependent pattern (ONNX-exportable)."""

    def __init__(self, noise: float, n: int = 400) -> None:
        super().__init__()
        self.noise = noise
        self.register_buffer("bank", bank_images(None, n).view(n, 784))
        self.register_buffer("proj", torch.randn(16, 784, generator=torch.Generator().manual_seed(0)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = self.bank.shape[0]
        u = 0.5 * (1 + torch.erf(z[:, 0] / math.sqrt(2)))
        idx = (u * k).long().clamp(0, k - 1)
        img = self.bank[idx] + self.noise * torch.tanh(z @ self.proj)
        return img.clamp(-1, 1).view(-1, 1, 28, 28)


def export_onnx(module: nn.Module, path: Path, z_dim: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module.eval(), (torch.randn(2, z_dim),), str(path), input_names=["z"], output_names=["images"],
                      dynamic_axes={"z": {0: "batch"}, "images": {0: "batch"}}, dynamo=False)
    return path


def samples_of(module: nn.Module, n: int, z_dim: int, seed: int = 0) -> torch.Tensor:
    """uint8 samples of ``module`` on the rows of the shared latent set that ``score`` uses."""
    with torch.no_grad():
        return to_uint8(module(latents(n, z_dim, seed)))


def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    """uint8 (N, 1|3, H, W) → folder/sample_00000.png, …"""
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        arr = im[0].numpy() if im.shape[0] == 1 else im.permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(folder / f"sample_{i:05d}.png")
    return folder


# -- generator files ---------------------------------------------------------------------------------------
@needs_mnist
def test_torchscript_and_onnx_match_the_checkpoint(tmp_path: Path) -> None:
    gen = MLPImages()
    save_checkpoint(tmp_path / "ckpt_0001000.safetensors", gen.g, {"model": "mlp", "config": {"latent_dim": 100},
                                                                    "latent_dim": 100, "iteration": 1000})
    torch.jit.save(torch.jit.script(gen), str(tmp_path / "scripted.pt"))  # z_dim from the latent_dim attribute
    torch.jit.save(torch.jit.trace(gen, torch.randn(2, 100)), str(tmp_path / "traced.ts"),
                   _extra_files={"ganeval.json": json.dumps({"z_dim": 100})})
    export_onnx(gen, tmp_path / "gen.onnx", 100)
    base = score(tmp_path / "ckpt_0001000.safetensors", **FAST).iloc[0]
    assert base["status"] == "ok"
    for name in ("scripted.pt", "traced.ts", "gen.onnx"):
        row = score(tmp_path / name, **FAST).iloc[0]
        assert row["status"] == "ok", row["error"]
        assert row["mnist_fd"] == pytest.approx(base["mnist_fd"], rel=1e-4), name
        assert row["mnist_is"] == pytest.approx(base["mnist_is"], rel=1e-4), name
        assert row["n_samples"] == FAST["num_samples"] and len(row["sha256"]) == 64
    df = score(gen, z_dim=100, **FAST)  # a Python callable on the same latents
    assert df.iloc[0]["mnist_fd"] == pytest.approx(base["mnist_fd"], rel=1e-4)
    assert df.attrs["summary"]["verdict"].startswith(f"Keep {df.iloc[0]['checkpoint']}: ")  # it has no iteration to name


@needs_mnist
def test_onnx_series_is_ranked_by_noise(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for it, noise in ((1000, 0.6), (2000, 0.0), (3000, 0.9)):
        export_onnx(NoisyBank(noise), run / f"gen_{it:06d}.onnx", 16)
    df = score(run, **FAST)
    assert list(df["iteration"]) == [1000, 2000, 3000]
    assert df.loc[df["is_best"], "iteration"].item() == 2000
    fd = df.set_index("iteration")["mnist_fd"]
    assert fd[2000] < fd[1000] < fd[3000]
    assert any("number in its name" in n for n in df.attrs["summary"]["notes"])


def test_torchscript_without_latent_size_is_exit_2(tmp_path: Path, cli: Any) -> None:
    torch.jit.save(torch.jit.trace(MLPImages(), torch.randn(2, 100)), str(tmp_path / "g.pt"))
    code, _, err = cli("score", tmp_path / "g.pt", *CLI_FAST)
    assert code == 2 and err.strip().count("\n") == 0
    assert "--z-dim" in err and "g.pt" in err


def test_a_torchscript_generator_that_raises_is_one_line(tmp_path: Path, cli: Any) -> None:
    """A traced generator given the wrong --z-dim raises in the TorchScript interpreter, whose message is dozens of
    lines (both tracebacks): the row's error and the printed line are its last line, the error itself."""
    torch.jit.save(torch.jit.trace(MLPImages(), torch.randn(2, 100)), str(tmp_path / "g.pt"))
    code, _, err = cli("score", tmp_path / "g.pt", "--z-dim", "64", "--no-progress", *CLI_FAST)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("ganeval: error: g.pt: RuntimeError: mat1 and mat2 shapes cannot be multiplied"), err
    row = pd.read_csv(tmp_path / "report_g" / "scores.csv").iloc[0]
    assert row["status"] == "error" and "\n" not in row["error"] and "mat1 and mat2" in row["error"]


def test_output_range_given_apart_says_how_to_write_it(tmp_path: Path, cli: Any) -> None:
    """`--output-range -1,1` is argparse's "expected one argument" (it takes -1,1 for a flag): the line says to write
    --output-range=-1,1, as docs/inputs.md does."""
    code, _, err = cli("score", tmp_path / "g.onnx", "--output-range", "-1,1")
    assert code == 2 and err.count("\n") == 1 and "joined to the flag: --output-range=-1,1" in err, err


def test_onnx_z_dim_is_read_and_contradiction_is_exit_2(tmp_path: Path, cli: Any) -> None:
    path = export_onnx(MLPImages(), tmp_path / "g.onnx", 100)
    src = resolve_target(path).sources[0]
    assert src.kind == "onnx" and src.extra["settings"] == {"z_dim": 100, "z_type": "normal", "output_range": "-1,1"}
    code, _, err = cli("score", path, "--z-dim", "64", *CLI_FAST)
    assert code == 2 and "contradicts" in err


def test_onnx_static_batch_runs_in_chunks(tmp_path: Path) -> None:
    gen = MLPImages()
    torch.onnx.export(gen, (torch.randn(7, 100),), str(tmp_path / "b7.onnx"), input_names=["z"], output_names=["x"], dynamo=False)
    got = resolve_target(tmp_path / "b7.onnx").sources[0].open(torch.device("cpu"), 20, 0)
    assert torch.equal(got.batch(0, 20).images, samples_of(gen, 20, 100)) and got.paired


def test_bad_hints_are_input_errors() -> None:
    with pytest.raises(GanevalError, match="output-range"):
        resolve_target(np.zeros((4, 28, 28), np.uint8), output_range="0,2")
    with pytest.raises(GanevalError, match="z-dim"):
        resolve_target(lambda z: z)  # a callable with no latent size


# -- safety ------------------------------------------------------------------------------------------------
class _Evil:
    marker = ""

    def __reduce__(self) -> tuple:
        import os

        return (os.system, (f"touch {_Evil.marker}",))


def _fake_torchscript(path: Path, payload: bytes) -> Path:
    """A zip laid out like a TorchScript archive whose data.pkl is ``payload``."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/constants.pkl", pickle.dumps(()))
        zf.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_malicious_torchscript_is_refused_before_loading(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    _Evil.marker = str(marker)
    path = _fake_torchscript(tmp_path / "evil.pt", pickle.dumps(_Evil(), protocol=protocol))
    with pytest.raises(CheckpointError, match="system.*refusing"):
        check_torchscript(path)
    src = resolve_target(path, z_dim=100).sources[0]
    with pytest.raises(CheckpointError, match="refusing"):
        src.open(torch.device("cpu"), 10, 0)
    assert not marker.exists()


@needs_mnist
def test_malicious_torchscript_in_a_series_is_one_error_row(tmp_path: Path, cli: Any) -> None:
    marker = tmp_path / "pwned"
    _Evil.marker = str(marker)
    run = tmp_path / "run"
    run.mkdir()
    _fake_torchscript(run / "gen_001000.pt", pickle.dumps(_Evil()))
    torch.jit.save(torch.jit.script(MLPImages()), str(run / "gen_002000.pt"))
    code, _, err = cli("score", run, *CLI_FAST)
    assert code == 1 and "gen_001000.pt" in err and "refusing" in err
    assert not marker.exists()
    rows = json.loads((run / "report" / "summary.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["error", "ok"]


def test_real_torchscript_passes_the_scan(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.trace(MLPImages(), torch.randn(2, 100)), str(tmp_path / "g.pt"),
                   _extra_files={"ganeval.json": '{"z_dim": 100, "output_range": "-1,1"}'})
    assert check_torchscript(tmp_path / "g.pt") == {"z_dim": 100, "output_range": "-1,1"}
    scan_pickle(pickle.dumps({"a": [1, 2.0, "x"], "b": {3}}), "plain data")  # builtins containers are fine
    (tmp_path / "saved.pt").write_bytes(b"")
    torch.save({"w": torch.zeros(2)}, tmp_path / "saved.pt")
    with pytest.raises(CheckpointError, match="not a TorchScript archive"):
        check_torchscript(tmp_path / "saved.pt")


def test_onnx_custom_domain_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Boom", ["z"], ["images"], domain="com.evil")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", 8])],
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["b", 1, 28, 28])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.evil", 1)])
    onnx.save(model, str(tmp_path / "evil.onnx"))
    with pytest.raises(CheckpointError, match="custom-domain.*com.evil"):
        probe_onnx(tmp_path / "evil.onnx")
    src = resolve_target(tmp_path / "evil.onnx").sources[0]
    with pytest.raises(CheckpointError, match="custom-domain"):
        src.open(torch.device("cpu"), 10, 0)


# -- stored samples ----------------------------------------------------------------------------------------
@needs_mnist
def test_png_folder_zip_and_npz_match_the_in_memory_path(tmp_path: Path) -> None:
    gen = MLPImages()
    images = samples_of(gen, FAST["num_samples"], 100)
    folder = write_pngs(tmp_path / "samples", images)
    memory = score(gen, z_dim=100, **FAST).iloc[0]
    df = score(folder, **FAST)
    row = df.iloc[0]
    assert row["status"] == "ok" and row["n_samples"] == FAST["num_samples"] and row["n_bad_images"] == 0
    assert row["mnist_fd"] == pytest.approx(memory["mnist_fd"], rel=1e-3)
    assert row["mnist_fd_ci_low"] <= row["mnist_fd"] <= row["mnist_fd_ci_high"]
    assert any("no paired bootstrap" in n for n in df.attrs["summary"]["notes"])
    with zipfile.ZipFile(tmp_path / "samples.zip", "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"samples/{p.name}")
    np.savez(tmp_path / "samples.npz", images=images[:, 0].numpy())
    feats = tmp_path / "cache" / "features"
    n_cached = len(list(feats.glob("*.npz")))
    for other in (tmp_path / "samples.zip", tmp_path / "samples.npz", images.permute(0, 2, 3, 1).numpy()):
        assert score(other, **FAST).iloc[0]["mnist_fd"] == row["mnist_fd"]
    assert len(list(feats.glob("*.npz"))) == n_cached  # same image bytes, same content key: features reused


@needs_mnist
def test_rgb_32px_folder_is_resized_with_a_note(tmp_path: Path) -> None:
    digits = ((bank_images(None, 200) + 1) * 127.5).round().to(torch.uint8)
    big = torch.nn.functional.interpolate(digits.float(), size=(32, 32), mode="bilinear", antialias=True)
    rgb = big.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1)
    rgb[:, 0] = (rgb[:, 0].float() * 0.9).to(torch.uint8)  # not a grey image in disguise
    df = score(write_pngs(tmp_path / "rgb", rgb), **{**FAST, "num_samples": 200})
    row = df.iloc[0]
    assert row["status"] == "ok" and row["modes_covered"] >= 8 and row["mnist_is"] > 5
    notes = " ".join(df.attrs["summary"]["notes"])
    assert "32×32 RGB, not 28×28 grayscale" in notes and "resized to 28×28" in notes and "digit-like" in notes


@needs_mnist
def test_short_folder_and_bad_images_are_reported(tmp_path: Path, cli: Any) -> None:
    digits = ((bank_images(None, 150) + 1) * 127.5).round().to(torch.uint8)
    folder = write_pngs(tmp_path / "few", digits)
    good = (folder / "sample_00000.png").read_bytes()
    (folder / "sample_00003.png").write_bytes(good[: len(good) // 2])  # truncated
    (folder / "sample_00150.png").write_bytes(b"not a png at all")
    (folder / "labels.txt").write_text("ignored")
    code, out, err = cli("score", folder, *CLI_FAST, "--json")
    assert code == 0, err
    summary = json.loads(out)
    row = summary["rows"][0]
    assert row["n_samples"] == 149 and row["n_bad_images"] == 2
    notes = " ".join(summary["notes"])
    assert "2 unreadable or truncated image(s)" in notes and "sample_00003.png" in notes
    assert "only 149 readable images, fewer than the 240 asked for" in notes
    assert "ignored 1 non-image file(s)" in notes
    assert "only 149 readable images" in err  # also said on the console


def test_mixed_sizes_and_empty_inputs_are_clear_errors(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_pngs(folder, torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "sample_00009.png")
    src = resolve_target(folder).sources[0]
    with pytest.raises(GanevalError, match="different sizes"):
        src.open(torch.device("cpu"), 10, 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanevalError, match="no checkpoints") as exc:
        resolve_target(tmp_path / "empty")
    assert "subfolders" not in str(exc.value)
    write_pngs(tmp_path / "tree" / "class_0", torch.zeros(2, 1, 28, 28, dtype=torch.uint8))  # a class-per-folder tree
    with pytest.raises(GanevalError, match=r"images to score; its subfolders hold images: pass --recursive \(recursive="
                                           r"True\) to score the whole tree as one sample set, or give the subfolders "
                                           r"\(.*tree/\*/\) to score each"):
        resolve_target(tmp_path / "tree")
    np.savez(tmp_path / "obj.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(GanevalError, match="pickles are refused"):
        resolve_target(tmp_path / "obj.npz").sources[0].open(torch.device("cpu"), 10, 0)


def test_array_layouts_and_float_ranges() -> None:
    from ganeval.sources.samples import array_images

    nhw = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for arr in (nhw, nhw[:, None], nhw[..., None], torch.from_numpy(nhw)):
        images, flags, notes = array_images(arr, "-1,1", "a")
        assert images.shape == (5, 1, 28, 28) and torch.equal(images[:, 0], torch.from_numpy(nhw)) and not flags.any()
        assert notes == []
    floats = nhw.astype(np.float32) / 127.5 - 1
    floats[2, 0, 0] = np.nan
    images, flags, notes = array_images(floats, "-1,1", "a")
    assert list(flags) == [False, False, True, False, False] and notes == []
    assert torch.equal(images[[0, 1, 3, 4], 0], torch.from_numpy(nhw[[0, 1, 3, 4]]))
    images, _, notes = array_images(nhw.astype(np.float64) / 255, "0,1", "a")
    assert torch.equal(images[:, 0], torch.from_numpy(nhw)) and notes == []
    # the same [0, 1] floats read with the default range: kept as asked, with the generators' note saying so
    assert array_images(nhw.astype(np.float64) / 255, "-1,1", "a")[2] == [
        "a: values are all >= 0 (0..1); if they are in [0, 1] pass --output-range 0,1"]
    assert "not [-1, 1]: pass --output-range 0,255?" in array_images(nhw.astype(np.float32), "-1,1", "a")[2][0]


def test_float_npz_in_the_wrong_range_gets_a_note_in_the_report(tmp_path: Path) -> None:
    nhw = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "f01.npz", images=nhw.astype(np.float32) / 255)
    df = score(tmp_path / "f01.npz", num_samples=50, metrics=("mnist_fd",), bootstrap=0, device="cpu", progress=False)
    assert any("f01.npz: values are all >= 0" in n and "--output-range 0,1" in n for n in df.attrs["summary"]["notes"])


def test_series_order_from_names_or_position(tmp_path: Path) -> None:
    for name in ("iter_2000", "iter_500", "iter_10000"):
        write_pngs(tmp_path / name, torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    series = resolve_target([tmp_path / "iter_2000", tmp_path / "iter_500", tmp_path / "iter_10000"])
    assert [(s.name, s.iteration) for s in series.sources] == [("iter_500", 500), ("iter_2000", 2000), ("iter_10000", 10000)]
    assert series.root == tmp_path and "number in its name" in series.notes[0]
    for name in ("early", "late"):
        write_pngs(tmp_path / name, torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    series = resolve_target([tmp_path / "late", tmp_path / "early"])
    assert [(s.name, s.iteration) for s in series.sources] == [("late", 1), ("early", 2)]
    assert "position in the given order" in series.notes[0]


@needs_mnist
def test_several_sample_folders_form_a_series_on_the_cli(tmp_path: Path, cli: Any) -> None:
    run = tmp_path / "run"
    for it, noise in ((1000, 0.8), (2000, 0.0), (3000, 0.5)):
        write_pngs(run / f"iter_{it:06d}", samples_of(NoisyBank(noise), 240, 16))
    code, _, err = cli("score", run / "iter_003000", run / "iter_001000", run / "iter_002000", *CLI_FAST)
    assert code == 0, err
    summary = json.loads((run / "report" / "summary.json").read_text())
    assert [r["iteration"] for r in summary["rows"]] == [1000, 2000, 3000]
    assert summary["best"]["iteration"] == 2000
    assert any("no paired bootstrap" in n for n in summary["notes"])


# -- gate ----------------------------------------------------------------------------------------------------
@needs_mnist
def test_gate_on_an_onnx_file(tmp_path: Path, cli: Any) -> None:
    path = export_onnx(NoisyBank(0.0), tmp_path / "gen.onnx", 16)
    code, out, err = cli("gate", path, "--min-modes", "8", *CLI_FAST, "--no-progress", "--json")
    assert code == 0, out + err
    assert json.loads(out)["checkpoint"]["name"] == "gen.onnx"
    assert (tmp_path / "report_gen" / "summary.json").is_file()  # a file's own report folder


@needs_mnist
def test_gate_on_a_sample_folder(tmp_path: Path, cli: Any) -> None:
    folder = write_pngs(tmp_path / "samples", samples_of(NoisyBank(0.0), 240, 16))
    code, out, err = cli("gate", folder, "--min-modes", "8", "--max-mnist-fd", "1e9", *CLI_FAST, "--no-progress")
    assert code == 0, out + err
    assert "PASS min_modes" in out and (folder / "report" / "summary.json").is_file()
    code, out, err = cli("gate", folder, "--min-modes", "11", *CLI_FAST, "--no-progress")
    assert code == 1


def test_png_bytes_round_trip_exactly(tmp_path: Path) -> None:
    images = torch.randint(0, 256, (3, 1, 9, 7), dtype=torch.uint8)
    src = resolve_target(write_pngs(tmp_path / "s", images)).sources[0]
    got = src.open(torch.device("cpu"), 10, 0)
    assert got.n == 3 and torch.equal(got.batch(0, 10).images, images) and not got.paired
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 4), np.uint8), "RGBA").save(buf, "PNG")
    (tmp_path / "s" / "sample_00003.png").write_bytes(buf.getvalue())
    with pytest.raises(GanevalError, match="different sizes"):
        src.open(torch.device("cpu"), 10, 0)


def test_renamed_checkpoint_keeps_its_iteration_from_metadata(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[1] / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
    best = tmp_path / "best.safetensors"
    best.write_bytes(shipped.read_bytes())
    assert resolve_target(best).sources[0].iteration == 10000
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    assert resolve_target(junk).sources[0].iteration is None  # unreadable: reported when scored, not here
    both = resolve_target([str(junk), str(best)])
    assert [s.iteration for s in both.sources] == [1, 2]  # not all numbered: position order, as before


def test_zip_entries_are_each_read_once_and_ties_in_names_keep_one_order(tmp_path: Path) -> None:
    """Two zip entries of one name: both read (by their records, not by name: that gave the last one twice); names
    natural order cannot tell apart (img_1 / img_01) sort the same in any folder or zip listing."""
    from ganeval.sources.samples import read_image_set

    images = samples_of(MLPImages(), 3, 100)[:, 0].numpy()
    folder = write_pngs(tmp_path / "pngs", torch.from_numpy(images[:, None]))
    pngs = sorted(folder.iterdir())
    with zipfile.ZipFile(tmp_path / "dup.zip", "w") as zf:
        zf.write(pngs[0], "img_0.png")
        zf.write(pngs[1], "img_1.png")
        zf.write(pngs[2], "img_0.png")  # a second entry of that name
    got = read_image_set(tmp_path / "dup.zip", 10)
    assert len(got.images) == 3 and got.meta["last"] == "img_1.png"
    assert sorted(map(bytes, got.images[:2, 0].numpy())) == sorted(map(bytes, images[[0, 2]]))
    orders = []
    for i, order in enumerate(((0, 1, 2), (1, 0, 2))):
        with zipfile.ZipFile(tmp_path / f"tie{i}.zip", "w") as zf:
            for k in order:
                zf.write(pngs[k], ("img_1.png", "img_01.png", "img_2.png")[k])
        orders.append(read_image_set(tmp_path / f"tie{i}.zip", 10).images)
    assert torch.equal(orders[0], orders[1])


def test_a_single_npy_array_named_npz_is_one_line(tmp_path: Path, cli: Any) -> None:
    np.save(tmp_path / "x.npy", np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "x.npy").rename(tmp_path / "x.npz")
    code, _, err = cli("score", tmp_path / "x.npz", "--metrics", "mnist_fd", "--device", "cpu", "--no-progress")
    assert code == 1 and "x.npz: a single .npy array, not an .npz archive" in err and "Traceback" not in err, err


def test_an_npz_of_no_array_says_so(tmp_path: Path, cli: Any) -> None:
    """``np.savez(path)`` with nothing in it was "several arrays ()"."""
    np.savez(tmp_path / "empty.npz")
    code, _, err = cli("score", tmp_path / "empty.npz", "--metrics", "mnist_fd", "--device", "cpu", "--no-progress")
    assert code == 1 and "empty.npz: holds no array; save the images with np.savez(path, images=...)" in err, err
    assert "several arrays" not in err


def test_report_folders_of_different_selections_differ(tmp_path: Path) -> None:
    """Seven or more picked files were named after the first and a count, and files of one stem picked from other
    folders alike: two selections shared a report folder and the second silently replaced the first's report."""
    from ganeval.inputs import _report_name

    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        for it in range(1, 9):
            (tmp_path / folder / f"ckpt_{it:07d}.safetensors").write_bytes(b"")

    def name(*picked: str) -> str:
        return _report_name([tmp_path / p for p in picked])

    x = [f"x/ckpt_{it:07d}.safetensors" for it in range(1, 9)]
    assert name(x[0]) == "report_ckpt_0000001" and name(x[1], x[0]) == "report_ckpt_0000001_ckpt_0000002"
    long_a, long_b = name(*x[:7]), name(*x[:1], *x[2:])
    assert long_a.startswith("report_ckpt_0000001_and_6_more_") and long_b.startswith("report_ckpt_0000001_and_6_more_")
    assert long_a != long_b and name(*reversed(x[:7])) == long_a
    mixed_a = name("x/ckpt_0000001.safetensors", "y/ckpt_0000002.safetensors")
    mixed_b = name("y/ckpt_0000001.safetensors", "x/ckpt_0000002.safetensors")
    assert mixed_a.startswith("report_ckpt_0000001_ckpt_0000002_") and mixed_a != mixed_b
    # one file of a long (legal, 250-255 byte) name: its report folder's name was longer than a file system takes
    # ("File name too long": a checkpoint that could not be scored without --out), and said "_and_0_more"
    for stem in ("ckpt_0000100_" + "x" * 225, "ckpt_0000100_" + "é" * 115):
        (tmp_path / "x" / f"{stem}.safetensors").write_bytes(b"")
        one = name(f"x/{stem}.safetensors")
        assert len(one.encode()) <= 100 and one.startswith("report_ckpt_0000100_") and "_more" not in one
        (tmp_path / "x" / one).mkdir()  # a name the file system takes


@pytest.mark.parametrize("target", [42, 3.5, None, {"a": 1}])
def test_a_target_of_no_known_kind_is_one_line(target: object) -> None:
    """``ganeval.score(42)`` raised a TypeError from ``Path(42)``."""
    from ganeval.errors import GanevalError
    from ganeval.inputs import resolve_target

    with pytest.raises(GanevalError, match=f"^cannot score the {type(target).__name__} .*: give a path"):
        resolve_target(target)


def test_a_read_only_array_is_scored_without_torchs_warning_and_left_unchanged(mnist_dir: Path) -> None:
    """A read-only array (load_mnist's, a memory map) printed torch's "The given NumPy array is not writable …
    undefined behavior" warning when scored: ganeval never writes to it (batches are copies), so nothing is said.
    In a fresh process: torch prints that warning once per process."""
    import subprocess
    import sys

    code = (
        "import numpy as np, ganeval\n"
        "from ganeval.data import load_mnist\n"
        "a = load_mnist('test')[0][:64].copy(); a.setflags(write=False); before = a.copy()\n"
        "df = ganeval.score(a, metrics=('mnist_fd',), num_samples=64, bootstrap=0, device='cpu', progress=False, use_cache=False)\n"
        "assert df.iloc[0]['status'] == 'ok' and np.array_equal(a, before)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "not writable" not in res.stderr, res.stderr[-2000:]


def test_a_file_given_twice_in_one_series_is_refused(tmp_path: Path, cli) -> None:
    """``score run run/`` scored every checkpoint twice as one series, iterations replaced by positions 1..2k, and a
    file given beside its own folder was scored twice too."""
    from synthetic import write_bank_checkpoint

    from ganeval.inputs import resolve_target

    one = write_bank_checkpoint(tmp_path / "run", 100)
    write_bank_checkpoint(tmp_path / "run", 200)
    for targets in ([tmp_path / "run", f"{tmp_path / 'run'}/"], [tmp_path / "run", one], [one, tmp_path / "run" / ".." / "run" / one.name]):
        with pytest.raises(GanevalError, match=re.escape(f"{one}: given more than once")):
            resolve_target(targets)
    code, out, err = cli("score", tmp_path / "run", one, "--metrics", "mnist_fd", "--device", "cpu", "--no-progress")
    assert code == 2 and out == "" and "given more than once" in err and not (tmp_path / "run" / "report").exists(), err
    assert [s.name for s in resolve_target([one, tmp_path / "run" / "ckpt_0000200.safetensors"]).sources] == [
        "ckpt_0000100.safetensors", "ckpt_0000200.safetensors"]
