"""Inputs at their edges (docs/inputs.md): ONNX weights stored beside the model, user modules run from the project
folder, weight-file folders for gate, sample arrays of every dtype, names with huge numbers."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ganeval.evaluate import score

FAST: dict[str, Any] = {"num_samples": 64, "metrics": ("mnist_fd",), "bootstrap": 0, "device": "cpu", "progress": False}


@pytest.fixture(autouse=True)
def _cache_and_quiet(own_cache: Path) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.onnx exporter deprecations
    warnings.filterwarnings("ignore", category=DeprecationWarning)


class TinyG(nn.Module):
    """z (8) → 1×28×28 in [-1, 1], weights from ``seed``."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(8, 784)
        self.latent_dim = 8

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z)).view(-1, 1, 28, 28)


def _onnx_external(module: nn.Module, folder: Path) -> Path:
    """``module`` as folder/gen.onnx with every weight in folder/gen.onnx.data."""
    onnx = pytest.importorskip("onnx")
    folder.mkdir(parents=True)
    tmp = folder / "inline.onnx"
    torch.onnx.export(module.eval(), (torch.randn(2, 8),), str(tmp), input_names=["z"], output_names=["images"],
                      dynamic_axes={"z": {0: "batch"}, "images": {0: "batch"}}, dynamo=False)
    onnx.save_model(onnx.load(str(tmp)), str(folder / "gen.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="gen.onnx.data", size_threshold=0)
    tmp.unlink()
    return folder / "gen.onnx"


def test_onnx_weights_in_an_external_data_file_are_part_of_its_identity(tmp_path: Path) -> None:
    """A retrained model saved with external data has a byte-identical .onnx: keyed on that file alone, the new weights
    were served the old weights' cached features (MNIST FD 345.618 for a model whose own is 343.771)."""
    pytest.importorskip("onnxruntime")
    path = _onnx_external(TinyG(0), tmp_path / "a")
    other = _onnx_external(TinyG(1), tmp_path / "b")
    assert path.read_bytes() == other.read_bytes()  # only gen.onnx.data differs
    first = score(str(path), **FAST)["mnist_fd"].iloc[0]
    shutil.copy(other.parent / "gen.onnx.data", path.parent / "gen.onnx.data")
    cached = score(str(path), **FAST)["mnist_fd"].iloc[0]
    fresh = score(str(path), use_cache=False, **FAST)["mnist_fd"].iloc[0]
    assert cached == fresh and cached != first


def test_module_name_is_found_in_the_folder_ganeval_is_run_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--generator models:Generator`` "run from your project folder": the installed ``ganeval`` command has its bin/
    folder on sys.path, not the working directory (only ``python -m ganeval`` has that), so it said "cannot import"."""
    from ganeval.user_code import resolve_factory

    project = tmp_path / "project"
    project.mkdir()
    (project / "edge_models_cwd.py").write_text("from torch import nn\n\nclass Generator(nn.Linear):\n"
                                                "    def __init__(self, nz=4):\n        super().__init__(nz, 784)\n")
    monkeypatch.chdir(project)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".", str(project))])
    monkeypatch.delitem(__import__("sys").modules, "edge_models_cwd", raising=False)
    spec = resolve_factory("edge_models_cwd:Generator", '{"nz": 3}')
    assert spec.build().in_features == 3 and spec.source_sha256 is not None
    monkeypatch.delitem(__import__("sys").modules, "edge_models_cwd")


TINY_PY = """
import torch
from torch import nn


class Gen(nn.Module):
    def __init__(self, nz=8):
        super().__init__()
        self.nz = nz
        self.fc = nn.Linear(nz, 784)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 1, 28, 28)
"""


def test_gate_takes_a_folder_of_weight_files(tmp_path: Path, cli: Any) -> None:
    """A folder of ``.pth``/``.ckpt`` state dicts was "neither a report nor a checkpoint folder" to gate (score took it):
    only ``.pt`` counted as something to score, being a TorchScript extension too."""
    (tmp_path / "models.py").write_text(TINY_PY)
    run = tmp_path / "run"
    run.mkdir()
    torch.manual_seed(0)
    weights = {f"fc.{k}": v for k, v in nn.Linear(8, 784).state_dict().items()}
    torch.save({"G": {f"module.{k}": v for k, v in weights.items()}}, run / "G_1.pth")  # a DDP training bundle
    torch.save(weights, run / "G_2.ckpt")
    args = ["--metrics", "mnist_fd", "--max-mnist-fd", "1e9", "--num-samples", "64", "--bootstrap", "0", "--device", "cpu",
            "--no-progress", "--out", tmp_path / "gate"]
    code, out, err = cli("gate", run, "--generator", f"{tmp_path / 'models.py'}:Gen", *args)
    assert code == 0, err + out
    code, _, err = cli("gate", run, *args)  # without the class: one line that says what is missing
    assert code == 2 and "pass their class, --generator MODULE:NAME" in err and "Traceback" not in err


def test_a_folder_of_renamed_checkpoints_is_told_to_give_the_files(tmp_path: Path, cli: Any) -> None:
    """ganeval checkpoints renamed (a.safetensors, …): the folder was told to pass --generator, as for foreign weights."""
    from synthetic import write_bank_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    for it, name in ((1000, "a"), (2000, "b")):
        write_bank_checkpoint(tmp_path / "src", it).rename(run / f"{name}.safetensors")
    args = ("--metrics", "mnist_fd", "--num-samples", 64, "--bootstrap", 0, "--device", "cpu", "--no-progress")
    code, _, err = cli("score", run, *args, "--out", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and "--generator" not in err, err
    assert (f"a.safetensors, b.safetensors are ganeval checkpoints not named ckpt_*.safetensors: give the files "
            f"({run}/*.safetensors) to score them as a series") in err
    code, _, err = cli("score", run / "a.safetensors", run / "b.safetensors", *args, "--out", tmp_path / "r")
    assert code == 0, err  # as the message says


def test_sample_arrays_of_any_byte_order_and_integer_width_are_read_or_refused_in_one_line(tmp_path: Path) -> None:
    """Big-endian arrays (valid images) were refused by torch ("byte order different from the native"), uint16 crashed
    ("max_all not implemented"), int8 overflowed, and negative int16 pixels were clamped to 0 without a word."""
    from ganeval.errors import GanevalError
    from ganeval.sources.samples import array_images, read_npz

    digits = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    want = torch.from_numpy(digits).unsqueeze(1)
    floats = (digits / 127.5 - 1).astype(np.float32)
    for arr in (digits.astype(">u2"), digits.astype(np.uint16), digits.astype(np.uint32), digits.astype(np.int16),
                floats.astype(">f4"), floats.astype(">f8")):
        np.savez(tmp_path / "s.npz", images=arr)
        assert torch.equal(read_npz(tmp_path / "s.npz", "-1,1")[0], want), arr.dtype
    signed = digits.astype(np.int16) - 128
    for arr, words in ((signed, "int16 values span -128..127"), (signed.astype(np.int8), "int8 values span -128..127"),
                       (digits.astype(np.uint16) * 257, "uint16 values span 0..65535"),
                       (floats.astype(np.complex64), "dtype complex64"), (digits.astype(bool), "dtype bool")):
        np.savez(tmp_path / "s.npz", images=arr)
        with pytest.raises(GanevalError, match="s.npz: ") as exc:
            read_npz(tmp_path / "s.npz", "-1,1")
        assert words in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(GanevalError, match="dtype object"):
        array_images(np.array([digits[0], None], dtype=object), "-1,1", "array")


def test_long_double_and_float8_samples_are_read_and_wide_integers_named_by_their_values(tmp_path: Path) -> None:
    """A float128 (np.longdouble) array, valid float images, was an error row with torch's TypeError ("can't convert
    np.ndarray of type numpy.longdouble"), exit 1; a float8 tensor raised NotImplementedError; and uint64 pixels
    above 2**63 were refused saying they "span -1..-1" (wrapped to int64)."""
    from ganeval.errors import GanevalError
    from ganeval.sources.samples import array_images

    digits = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    floats = digits / 127.5 - 1
    np.save(tmp_path / "ld.npy", floats.astype(np.longdouble))
    np.save(tmp_path / "f64.npy", floats)
    wide, plain = score(str(tmp_path / "ld.npy"), **FAST), score(str(tmp_path / "f64.npy"), **FAST)
    assert wide["status"].iloc[0] == "ok" and wide["mnist_fd"].iloc[0] == plain["mnist_fd"].iloc[0]
    f8 = torch.from_numpy(floats).to(torch.float8_e4m3fn)
    assert torch.equal(array_images(f8, "-1,1", "f8")[0], array_images(f8.float(), "-1,1", "f8")[0])
    with pytest.raises(GanevalError, match=r"uint64 values span 0\.\.18446744073709551615"):
        array_images(np.array([[[0, 2**64 - 1]]], dtype=np.uint64), "-1,1", "u64")


def test_a_generator_class_of_unknown_latent_size_is_a_usage_error_before_any_work(tmp_path: Path, cli: Any) -> None:
    """It was an error row per weight file (exit 1, with a report written), where a TorchScript file of unknown latent
    size stops with exit 2: the class is built before scoring, so its latent size is known then."""
    from ganeval.errors import GanevalError

    (tmp_path / "models.py").write_text(TINY_PY.replace("        self.nz = nz\n", ""))
    torch.save({f"fc.{k}": v for k, v in nn.Linear(8, 784).state_dict().items()}, tmp_path / "G_1.pt")
    spec = f"{tmp_path / 'models.py'}:Gen"
    code, _, err = cli("score", tmp_path / "G_1.pt", "--generator", spec, "--metrics", "mnist_fd", "--num-samples", "64",
                       "--bootstrap", "0", "--device", "cpu", "--no-progress", "--out", tmp_path / "out")
    assert code == 2 and "pass --z-dim N" in err and not (tmp_path / "out").exists()
    with pytest.raises(GanevalError, match="pass --z-dim N"):
        score(str(tmp_path / "G_1.pt"), generator=spec, **FAST)
    assert score(str(tmp_path / "G_1.pt"), generator=spec, z_dim=8, **FAST)["status"].iloc[0] == "ok"


def test_a_number_beyond_int64_in_a_name_is_no_iteration(tmp_path: Path) -> None:
    """``s_99999999999999999999.npz`` was scored, then the table's int64 iteration column raised a TypeError traceback."""
    digits = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    for name in ("s_1.npz", "s_99999999999999999999.npz"):
        np.savez(tmp_path / name, images=digits)
    one = score(str(tmp_path / "s_99999999999999999999.npz"), **FAST)
    assert one["status"].tolist() == ["ok"]
    both = score([str(tmp_path / "s_99999999999999999999.npz"), str(tmp_path / "s_1.npz")], **FAST)
    assert both["status"].tolist() == ["ok", "ok"] and both["iteration"].tolist() == [1, 2]  # position in the given order


def test_a_float_image_is_left_out_with_its_reason_not_read_as_black_rgb(tmp_path: Path) -> None:
    """A float32 TIFF (Pillow mode 'F') of a digit in [0, 1] was converted to a 3-channel image of 0s and 1s: black."""
    from PIL import Image

    from ganeval.sources.samples import read_image_set

    digit = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    (tmp_path / "set").mkdir()
    Image.fromarray((digit / 255.0).astype(np.float32)).save(tmp_path / "set" / "a_1.tif")
    Image.fromarray(digit).save(tmp_path / "set" / "a_2.png")
    got = read_image_set(tmp_path / "set", 10)
    assert got.n_bad == 1 and "a_1.tif" in got.notes[0] and "32-bit float image" in got.notes[0]
    assert torch.equal(got.images, torch.from_numpy(digit)[None, None])  # grayscale, the PNG alone


def test_a_npy_array_of_samples_scores_as_the_same_images_in_an_npz(tmp_path: Path) -> None:
    """``np.save("s.npy", images)`` was read as a ganeval checkpoint: "not a safetensors checkpoint (bad header length)"."""
    digits = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "s.npy", digits[..., None])  # (N, H, W, 1)
    np.savez(tmp_path / "s.npz", images=digits)
    npy, npz = score(str(tmp_path / "s.npy"), **FAST), score(str(tmp_path / "s.npz"), **FAST)
    assert npy["status"].iloc[0] == "ok" and npy["mnist_fd"].iloc[0] == npz["mnist_fd"].iloc[0]
    from ganeval.inputs import SAMPLE_KINDS, resolve_target

    assert resolve_target(tmp_path / "s.npy").sources[0].kind in SAMPLE_KINDS  # stored samples: unpaired bootstrap


@pytest.mark.parametrize(("shape", "dtype"), [((10, 28, 0), np.uint8), ((10, 0, 28, 3), np.uint8), ((10, 0, 28), np.float32)])
def test_sample_arrays_of_zero_sized_images_are_refused_with_their_shape(tmp_path: Path, shape: tuple[int, ...],
                                                                          dtype: type) -> None:
    """An image dimension of 0 failed inside the pixel hash: "TypeError: memoryview: cannot cast view with zeros in
    shape or strides", saying nothing of the input."""
    want = f"images of shape {shape} hold no pixels (a height, width or channel count of 0)"
    np.save(tmp_path / "z.npy", np.zeros(shape, dtype))
    for target, what in ((str(tmp_path / "z.npy"), "z.npy"), (np.zeros(shape, dtype), "array")):
        row = score(target, **FAST).iloc[0]
        assert row["status"] == "error" and row["error"].endswith(f"{what}: {want}"), row["error"]


def test_a_link_to_nothing_among_sample_images_is_counted_and_named(tmp_path: Path) -> None:
    """docs: unreadable files are left out, counted (n_bad_images) and named; a dangling link was dropped without a word."""
    import os

    from PIL import Image

    from ganeval.sources.samples import read_image_set

    (tmp_path / "set").mkdir()
    for i in range(3):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(tmp_path / "set" / f"img_{i}.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "set" / "img_3.png")
    got = read_image_set(tmp_path / "set", 10)
    assert len(got.images) == 3 and got.n_bad == 1 and "img_3.png" in got.notes[0]


def test_an_unreadable_image_note_names_no_memory_address(tmp_path: Path) -> None:
    """PIL's message holds the repr of the bytes it read (``<_io.BytesIO object at 0x7f…>``): the note, and every
    summary.json holding it, differed between two runs of the same command."""
    from ganeval.sources.samples import read_image_set

    (tmp_path / "set").mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "set" / "a.png")
    (tmp_path / "set" / "b.png").write_bytes(b"not an image at all")
    notes = read_image_set(tmp_path / "set", 10).notes
    assert "b.png: UnidentifiedImageError: cannot identify image file" in notes[0] and " at 0x" not in notes[0], notes


def test_scoring_a_module_leaves_it_as_it_was_given(tmp_path: Path) -> None:
    """``ganeval.score(G)`` from a training loop put G (and its BatchNorm) in eval mode for good: training went on with
    frozen batch statistics. Its modes (and device) are put back once it is scored; it is still scored in eval mode."""

    class Bn(TinyG):
        def __init__(self) -> None:
            super().__init__(0)
            self.bn = nn.BatchNorm1d(784)
            self.seen: list[bool] = []

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            self.seen.append(self.bn.training)
            return torch.tanh(self.bn(self.fc(z))).view(-1, 1, 28, 28)

    g = Bn().train()
    g.fc.eval()  # a submodule the caller froze stays frozen
    assert score(g, **FAST)["status"].iloc[0] == "ok"
    assert g.seen and not any(g.seen)
    assert g.training and g.bn.training and not g.fc.training


def test_a_module_that_cannot_be_opened_is_left_as_it_was_given(tmp_path: Path) -> None:
    """Opening put the module in eval mode, then failed (no memory for its latents: a latent_dim of 2**40): its row
    said why, but nothing put the caller's module back in training mode, as a scored one is."""

    class Huge(TinyG):
        def __init__(self) -> None:
            super().__init__(0)
            self.latent_dim = 2**40

    g = Huge().train()
    row = score(g, **FAST).iloc[0]
    assert row["status"] == "error" and "allocate" in row["error"], row["error"]
    assert g.training and g.fc.training


def test_a_module_spread_over_devices_is_scored_where_it_is(tmp_path: Path) -> None:
    """A module whose tensors are on more than one device (model parallel over two GPUs, parts offloaded, parts on
    ``meta``) was moved whole to the scoring device and never put back (nothing said where each part belonged), a
    forward that moves activations between its parts then failed, and ``meta`` parts made it an error row. It is now
    scored where it is and left there; here parameters on the CPU and parts on ``meta`` that sampling does not use
    (a CPU-only stand-in for a second device)."""

    class Spread(TinyG):
        def __init__(self) -> None:
            super().__init__(0)
            self.head = nn.Linear(3, 3, device="meta")  # e.g. a part only training uses
            self.register_buffer("table", torch.zeros(3, device="meta"))

    g = Spread().train()
    placed = {name: t.device for name, t in [*g.named_parameters(), *g.named_buffers()]}
    row = score(g, **FAST).iloc[0]
    assert row["status"] == "ok", row["error"]
    assert {name: t.device for name, t in [*g.named_parameters(), *g.named_buffers()]} == placed
    assert g.training and g.fc.training and g.head.training


def test_a_ctrl_c_while_a_module_is_put_back_waits_until_it_is(tmp_path: Path, ctrl_c_raises: None) -> None:
    """Ctrl-C as the scored module was being moved back to its device (seconds for a large model) stopped the
    putting back there: the module stayed in eval mode (and, on a GPU, half moved). It is now put back, then the
    Ctrl-C interrupts."""
    import os
    import signal

    class SlowToMove(TinyG):
        moves = 0

        def to(self, *args: Any, **kwargs: Any) -> SlowToMove:
            SlowToMove.moves += 1
            if SlowToMove.moves == 2:  # the move back, after scoring
                os.kill(os.getpid(), signal.SIGINT)
            return super().to(*args, **kwargs)

    g = SlowToMove(0).train()
    with pytest.raises(KeyboardInterrupt):
        score(g, **FAST)
    assert SlowToMove.moves == 2 and g.training and g.fc.training
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_file_of_no_kind_ganeval_scores_is_an_input_error(tmp_path: Path, cli) -> None:
    """A text file, or a .pth weight file without --generator, was opened as a ganeval checkpoint: an error row
    ("not a safetensors checkpoint"), exit 1 and a report of nothing. Now one line saying what to give instead, exit 2,
    nothing written; a ganeval checkpoint under another name is still scored."""
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "G.pth").write_bytes(b"PK\x03\x04 a zip-pickled state dict")
    for name, said in (("notes.txt", "not a file ganeval scores"), ("G.pth", "pass --generator MODULE:NAME")):
        code, out, err = cli("score", tmp_path / name, "--metrics", "mnist_fd", "--out", tmp_path / "rep")
        assert code == 2 and f"{name}: " in err and said in err and err.count("\n") == 1 and not out, err
        assert not (tmp_path / "rep").exists()
    shutil.copy(Path(__file__).parents[1] / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors",
                tmp_path / "renamed.bin")
    df = score(tmp_path / "renamed.bin", **FAST)
    assert df["status"].iloc[0] == "ok" and df["iteration"].iloc[0] == 10000


def test_a_torchscript_generator_under_a_weight_file_name_is_told_to_be_named_pt(tmp_path: Path, cli) -> None:
    """``torch.jit.save(G, "G.pth")`` was refused as a weight file needing ``--generator MODULE:NAME``: advice that
    cannot work (a TorchScript archive needs no class). Now the refusal says to name it .pt, which scores it."""
    module = torch.jit.script(TinyG(0))
    torch.jit.save(module, str(tmp_path / "G.pth"))
    code, out, err = cli("score", tmp_path / "G.pth", "--metrics", "mnist_fd", "--out", tmp_path / "rep")
    assert code == 2 and "G.pth: a TorchScript generator" in err and "name it .pt" in err and "--generator" not in err, err
    assert not (tmp_path / "rep").exists()
    shutil.copy(tmp_path / "G.pth", tmp_path / "G.pt")
    assert score(tmp_path / "G.pt", **FAST)["status"].iloc[0] == "ok"


def test_integer_images_of_only_0_and_1_get_a_note(tmp_path: Path) -> None:
    """A bool array is refused ({0, 1} read as pixels are black images), but the same values as uint8 or int64 were
    scored as near-black digits without a word."""
    from ganeval.data import load_mnist

    digits = load_mnist("test")[0][:64]
    for dtype in (np.uint8, np.int64):
        np.savez(tmp_path / "binary.npz", images=(digits > 127).astype(dtype))
        notes = score(tmp_path / "binary.npz", **FAST).attrs["summary"]["notes"]
        assert any("every pixel is 0 or 1" in n for n in notes), (dtype, notes)
    np.savez(tmp_path / "gray.npz", images=digits)
    assert not any("every pixel is 0 or 1" in n for n in score(tmp_path / "gray.npz", **FAST).attrs["summary"]["notes"])
