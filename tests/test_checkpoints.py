"""Generator checkpoints (``ganeval.checkpoints``): round trips, ordering, and refusal of pickles, truncated
files and unknown models, all as ``CheckpointError``."""

from __future__ import annotations

import copy
import io
import json
import pickle
import re
from pathlib import Path

import pytest
import torch

from ganeval import list_checkpoints, load_generator
from ganeval.checkpoints import checkpoint_name, read_metadata, save_checkpoint
from ganeval.errors import CheckpointError
from ganeval.models import build_generator


def _meta(model: str, **extra: object) -> dict[str, object]:
    from ganeval.models import get_model

    return {"model": model, "config": dict(get_model(model).defaults), "iteration": 1, **extra}


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        for name, b in other.named_buffers():
            if name.endswith("running_var"):
                b.mul_(1.5)
    return other


def _trained_bn(g: torch.nn.Module, latent: int) -> None:
    """Give BatchNorm non-default running statistics, so eval-mode samples depend on them."""
    g.train()
    with torch.no_grad():
        for _ in range(3):
            g(torch.randn(16, latent) * 2 + 0.5)


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_round_trip_same_samples(model: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = build_generator(model, {"channels": 8} if model == "dcgan" else None)
    latent = g.latent_dim
    _trained_bn(g, latent)
    ema = _perturbed(g, 1) if model == "dcgan" else None
    meta = _meta(model, seed=3)
    if model == "dcgan":
        meta["config"] = {"latent_dim": latent, "channels": 8}
    path = save_checkpoint(tmp_path / checkpoint_name(7), g, meta, ema=ema)
    z = torch.randn(10, latent, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = g.eval()(z)
        loaded, info = load_generator(path)
        assert not loaded.training
        if ema is None:
            assert info["weights"] == "g"
            torch.testing.assert_close(loaded(z), want, rtol=0, atol=0)
        else:
            assert info["weights"] == "g_ema"
            torch.testing.assert_close(loaded(z), ema.eval()(z), rtol=0, atol=0)
            assert not torch.equal(loaded(z), want)  # the EMA weights really are different ones
            raw, info_raw = load_generator(path, use_ema=False)
            assert info_raw["weights"] == "g"
            torch.testing.assert_close(raw(z), want, rtol=0, atol=0)
    assert info["model"] == model and info["seed"] == 3 and info["package_version"] and info["time"]
    assert read_metadata(path)["iteration"] == 1


def test_list_checkpoints_order(tmp_path: Path) -> None:
    g = build_generator("mlp")
    for it in (100, 2, 30, 1000000):
        save_checkpoint(tmp_path / checkpoint_name(it), g, _meta("mlp"))
    for other in ("ckpt_12.pt", "notes.txt", ".ckpt_0000005.safetensors.abc.tmp", "samples_0000002.png"):
        (tmp_path / other).write_bytes(b"x")
    (tmp_path / "ckpt_0000009.safetensors").mkdir()  # a folder is not a checkpoint
    refs = list_checkpoints(tmp_path)
    assert [r.iteration for r in refs] == [2, 30, 100, 1000000]
    assert [r.path.name for r in refs] == ["ckpt_0000002.safetensors", "ckpt_0000030.safetensors",
                                           "ckpt_0000100.safetensors", "ckpt_1000000.safetensors"]
    assert list_checkpoints(tmp_path / "nope") == []
    # digits of another script (Arabic-Indic 3) are no iteration: a regex digit class matched them, int() read 3
    save_checkpoint(tmp_path / "other" / "ckpt_\u0663.safetensors", g, _meta("mlp"))
    assert list_checkpoints(tmp_path / "other") == []


class _CreatesFile:
    """Unpickling this object opens (so creates) ``target`` for writing."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (io.open, (str(self.target), "w"))


def test_pickle_is_never_unpickled(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": _CreatesFile(target)})
    pickle.loads(payload)["state_dict"].close()  # sanity: unpickling this payload does create the file
    assert target.exists()
    target.unlink()
    path = tmp_path / "ckpt_0000001.safetensors"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match="ckpt_0000001.safetensors: not a safetensors checkpoint"):
        load_generator(path)
    with pytest.raises(CheckpointError):
        read_metadata(path)
    assert not target.exists()


@pytest.mark.parametrize("keep", [4, 40, 0.5, 0.99])
def test_truncated_checkpoint(tmp_path: Path, keep: float) -> None:
    path = save_checkpoint(tmp_path / "ckpt_0000001.safetensors", build_generator("mlp"), _meta("mlp"))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    with pytest.raises(CheckpointError, match="ckpt_0000001.safetensors"):
        load_generator(path)


def test_unknown_model_in_metadata(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ckpt_0000001.safetensors", build_generator("mlp"), {**_meta("mlp"), "model": "stylegan9"})
    with pytest.raises(CheckpointError, match=r"ckpt_0000001.safetensors: unknown model 'stylegan9' \(known: dcgan, dcgan_info, mlp\b"):
        load_generator(path)


def test_bad_config_or_wrong_weights(tmp_path: Path) -> None:
    g = build_generator("mlp")
    path = save_checkpoint(tmp_path / "a.safetensors", g, _meta("mlp", config={"latent_dim": 100, "width": 3}))
    with pytest.raises(CheckpointError, match="does not fit model 'mlp'"):
        load_generator(path)
    path = save_checkpoint(tmp_path / "b.safetensors", g, _meta("mlp", config={"latent_dim": 64}))
    with pytest.raises(CheckpointError, match=r"weights do not fit model 'mlp' \(size mismatch for [\w.]+: copying a param with "
                                              r"shape torch.Size\(\[256, 100\]\)"):  # the key and shapes, not torch's headline
        load_generator(path)


def test_safetensors_without_ganeval_metadata(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "ckpt_0000001.safetensors"
    save_file({"x": torch.zeros(2)}, str(path), metadata={"other": json.dumps({"model": "mlp"})})
    with pytest.raises(CheckpointError, match="without ganeval metadata"):
        load_generator(path)


def test_cli_style_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ckpt_0000001.safetensors"
    path.write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError) as err:
        load_generator(path)
    assert "\n" not in str(err.value)


def test_weights_of_another_dtype_are_refused_not_cast(tmp_path: Path) -> None:
    """load_state_dict casts silently: integer weights made a generator that scored (and ranked best)."""
    g = build_generator("mlp")
    as_int = {k: (v * 100).to(torch.int32) if v.is_floating_point() else v for k, v in g.state_dict().items()}
    path = save_checkpoint(tmp_path / "ckpt_0000001.safetensors", g, _meta("mlp"))
    from safetensors.torch import load_file, save_file

    tensors = {f"g.{k}": v for k, v in as_int.items()}
    save_file(tensors, str(path), metadata={"ganeval": json.dumps(read_metadata(path))})
    with pytest.raises(CheckpointError, match=r"weights of the wrong type \([\w.]+ is int32, the model's is float32"):
        load_generator(path)
    half = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(save_checkpoint(
        tmp_path / "b.safetensors", g, _meta("mlp")))).items()}
    save_file(half, str(tmp_path / "c.safetensors"), metadata={"ganeval": json.dumps(_meta("mlp"))})
    with pytest.raises(CheckpointError, match="is float16, the model's is float32; ganeval writes float32"):
        load_generator(tmp_path / "c.safetensors")


def test_latent_size_in_metadata_must_fit_the_model(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ckpt_0000001.safetensors", build_generator("mlp"), _meta("mlp", latent_dim=5))
    with pytest.raises(CheckpointError, match="metadata says latent_dim 5, but model 'mlp' with its config takes 100"):
        load_generator(path)


def test_odd_entries_of_a_checkpoint_folder_are_rows_not_silence(tmp_path: Path) -> None:
    """A folder, a dangling link and a too-large iteration named like checkpoints are error rows in their place; two
    files of one iteration are both scored, in name order, with a note; the report is written whole."""
    from synthetic import write_bank_checkpoint

    from ganeval.evaluate import score

    run = tmp_path / "run"
    for it in (100, 300):
        write_bank_checkpoint(run, it)
    (run / "ckpt_300.safetensors").write_bytes((run / "ckpt_0000100.safetensors").read_bytes())
    (run / "ckpt_0000200.safetensors").mkdir()
    (run / "ckpt_0000250.safetensors").symlink_to(tmp_path / "gone.safetensors")
    (run / "ckpt_20000000000000000000.safetensors").write_bytes((run / "ckpt_0000300.safetensors").read_bytes())
    df = score(run, num_samples=100, metrics=("mnist_fd",), bootstrap=0, device="cpu", progress=False, out=tmp_path / "rep")
    assert df["checkpoint"].tolist() == ["ckpt_0000100.safetensors", "ckpt_0000200.safetensors", "ckpt_0000250.safetensors",
                                         "ckpt_0000300.safetensors", "ckpt_300.safetensors",
                                         "ckpt_20000000000000000000.safetensors"]
    errors = dict(zip(df["checkpoint"], df["error"], strict=True))
    assert errors["ckpt_0000200.safetensors"].endswith("ckpt_0000200.safetensors: is a folder, not a checkpoint file")
    assert errors["ckpt_0000250.safetensors"].endswith("is a link to nothing (its target is missing)")
    assert errors["ckpt_20000000000000000000.safetensors"].endswith("names an iteration beyond 2^63 - 1")
    assert df["status"].tolist() == ["ok", "error", "error", "ok", "ok", "error"]
    notes = df.attrs["summary"]["notes"]
    assert any(n.startswith("ckpt_0000300.safetensors, ckpt_300.safetensors share iteration 300") for n in notes), notes
    assert {p.name for p in (tmp_path / "rep").iterdir()} >= {"scores.csv", "scores.parquet", "summary.json", "report.html"}


def test_a_missing_checkpoint_names_the_system_reason(tmp_path: Path, cli) -> None:
    """export (through read_metadata) says "No such file or directory", as score and gate do, not "not a
    safetensors checkpoint (FileNotFoundError)"."""
    with pytest.raises(CheckpointError, match=r"nope\.safetensors: No such file or directory"):
        read_metadata(tmp_path / "nope.safetensors")
    code, _, err = cli("export", tmp_path / "nope.safetensors", "--out", tmp_path / "g.safetensors")
    assert code == 2 and "No such file or directory" in err and not (tmp_path / "g.safetensors").exists()


@pytest.mark.parametrize("config", [{"latent_dim": -1}, {"latent_dim": 100, "hidden": [-5]},
                                    {"latent_dim": 100, "img_shape": [1, -28, 28]}])
def test_a_config_that_does_not_build_is_one_line(tmp_path: Path, cli, config: dict[str, object]) -> None:
    """torch raises RuntimeError for a negative size: it was a traceback in load_generator and ganeval export."""
    path = save_checkpoint(tmp_path / "ckpt_0000001.safetensors", build_generator("mlp"),
                           _meta("mlp", config=config, latent_dim=config["latent_dim"]))
    with pytest.raises(CheckpointError, match=r"ckpt_0000001.safetensors: config .* does not fit model 'mlp' \("
                                              r"Trying to create tensor with negative dimension"):
        load_generator(path)
    code, _, err = cli("export", path, "--out", tmp_path / "g.safetensors")
    assert code == 2 and err.count("\n") == 1 and "does not fit model 'mlp'" in err, err
    assert not (tmp_path / "g.safetensors").exists()


@pytest.mark.parametrize("bad,why", [({"categories": 10.5}, "categories must be an integer between 2 and latent_dim - 1 "
                                                                "(got 10.5)"),
                                     ({"categories": True}, "categories must be an integer"),
                                     ({"code_scale": float("nan")}, "code_scale must be a finite float32 number (got nan)"),
                                     ({"code_scale": 1e300}, "code_scale must be a finite float32 number")])
def test_info_settings_no_tensor_shape_shows_are_checked_at_load(tmp_path: Path, cli, bad: dict[str, object], why: str) -> None:
    """categories 10.5 (no tensor's shape depends on it) loaded and exported, then failed at sampling with "slice
    indices must be integers"; a NaN code_scale gave all-NaN samples."""
    g = build_generator("dcgan_info", {"channels": 8})
    config = {"latent_dim": g.latent_dim, "channels": 8, "categories": 10, "code_scale": 3.0, **bad}
    path = save_checkpoint(tmp_path / "ckpt_0000001.safetensors", g, _meta("dcgan_info", config=config))
    with pytest.raises(CheckpointError, match=re.escape(why)):
        load_generator(path)
    code, _, err = cli("export", path, "--out", tmp_path / "g.safetensors")
    assert code == 2 and err.count("\n") == 1 and "does not fit model 'dcgan_info'" in err, err
    assert not (tmp_path / "g.safetensors").exists()


@pytest.mark.parametrize("config", [{"latent_dim": 100, "hidden": [12000, 12000]},  # 600 MB of weights, 1 tensor on disk
                                    {"latent_dim": 100, "hidden": [1] * 100_000}])  # 100,000 layers: minutes, GBs
def test_an_untrusted_config_is_checked_against_the_file_before_anything_is_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict[str, object]) -> None:
    """A tiny file must not make ganeval allocate what its config says: the model is built on the meta device and
    compared with the header first; no real build happens for a file it cannot fit."""
    from safetensors.torch import save_file

    import ganeval.checkpoints

    path = tmp_path / "ckpt_0000001.safetensors"
    save_file({"g.x": torch.zeros(1)}, str(path), metadata={"ganeval": json.dumps(_meta("mlp", config=config))})
    assert path.stat().st_size < 1_000_000

    def no_real_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("built the model for real before checking it against the file")

    monkeypatch.setattr(ganeval.checkpoints, "build_generator", no_real_build)
    with pytest.raises(CheckpointError, match=r"ckpt_0000001.safetensors: (weights|config) .*(Missing key|holds 1 tensor)") as err:
        load_generator(path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


def test_weights_that_do_not_fit_are_refused_from_the_header() -> None:
    """layout_problem speaks torch's words, for a skeleton that holds no memory."""
    from ganeval.checkpoints import layout_problem
    from ganeval.models import build_meta

    skeleton = build_meta("mlp", {"latent_dim": 64})
    assert all(t.device.type == "meta" for t in skeleton.state_dict().values())
    shapes = {k: tuple(v.shape) for k, v in build_generator("mlp").state_dict().items()}
    assert layout_problem(skeleton, shapes) == ("size mismatch for net.0.weight: copying a param with shape "
                                                "torch.Size([256, 100]) from checkpoint, the shape in current model is "
                                                "torch.Size([256, 64])")
    assert layout_problem(build_meta("mlp"), shapes) is None
    shapes.pop("net.0.bias")
    assert layout_problem(build_meta("mlp"), {**shapes, "x": (1,)}) == ('Missing key(s) in state_dict: "net.0.bias"; '
                                                                      'Unexpected key(s) in state_dict: "x"')


def test_a_model_that_cannot_build_on_the_meta_device_is_refused_at_registration() -> None:
    """Checkpoints are checked on a meta-device skeleton before loading; a constructor that reads a tensor's value
    (here ``.item()``) cannot build there. That used to surface at the first checkpoint load, as that file's error."""
    from ganeval.models import MODELS, ModelSpec, register_model

    class ReadsAValue(torch.nn.Module):
        def __init__(self, latent_dim: int = 4) -> None:
            super().__init__()
            self.latent_dim = latent_dim
            self.width = int(torch.ones(1).sum().item()) * 8  # data-dependent: fails on the meta device
            self.lin = torch.nn.Linear(latent_dim, self.width)

    class D(torch.nn.Module):
        def __init__(self, **_: object) -> None:
            super().__init__()

    with pytest.raises(ValueError, match="'test-reads-value': its generator does not build on torch's meta device"):
        register_model(ModelSpec("test-reads-value", ReadsAValue, D, {"latent_dim": 4}))
    assert "test-reads-value" not in MODELS  # not left half-registered
    with pytest.raises(ValueError, match="its discriminator does not build"):
        register_model(ModelSpec("test-reads-value", D, ReadsAValue, {}))
    assert "test-reads-value" not in MODELS


@pytest.mark.parametrize("name", ["mlp", "dcgan", "dcgan_info"])
def test_the_built_in_models_build_on_the_meta_device(name: str) -> None:
    """They register with ``check=False`` (a spectrally normalised D takes 0.5 s there): this is their check."""
    from ganeval.models import build_meta

    for part in ("generator", "discriminator"):
        assert all(p.is_meta for p in build_meta(name, None, part).parameters())


def test_load_generator_resolves_its_device_as_every_command_does(tmp_path: Path) -> None:
    """``device="auto"`` (every other entry point's default) crashed in torch's ``Module.to``, and a bad device gave
    torch's RuntimeError after the file was read; now "auto" works and a bad device is one CheckpointError line."""
    from ganeval.errors import CheckpointError

    path = Path(__file__).resolve().parent.parent / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
    g, _ = load_generator(path, device="auto")
    assert next(g.parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad, problem in (("tpu", "is not a device"), ("mps", "is not supported by ganeval")):
        with pytest.raises(CheckpointError, match=f"^--device '{bad}' {problem}"):
            load_generator(tmp_path / "missing.safetensors", device=bad)  # refused before the (missing) file is read


def test_a_checkpoint_replaced_while_it_is_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest was taken after the weights were read: a file replaced in between (a trainer's "latest" file)
    gave one file's weights under the other's SHA-256, and cached its features so (106 of 259 loads in a loop of
    os.replace every 2 ms). Here the replacement lands while safetensors reads the tensors."""
    import os

    import safetensors.torch

    torch.manual_seed(0)
    a = save_checkpoint(tmp_path / "a" / checkpoint_name(1), build_generator("mlp"), _meta("mlp"))
    b = save_checkpoint(tmp_path / "b" / checkpoint_name(1), _perturbed(build_generator("mlp"), 1), _meta("mlp"))
    real_load = safetensors.torch.load_file

    def replaced_meanwhile(name: str, device: str = "cpu") -> dict[str, torch.Tensor]:
        tensors = real_load(name, device=device)
        os.replace(b, a)  # the file's bytes change after its tensors were read
        return tensors

    monkeypatch.setattr(safetensors.torch, "load_file", replaced_meanwhile)
    with pytest.raises(CheckpointError, match=r"ckpt_0000001.safetensors: changed while it was read \(written to or replaced\)"):
        load_generator(a)
    monkeypatch.setattr(safetensors.torch, "load_file", real_load)
    _, meta = load_generator(a)  # the file as it now is: its own digest
    from ganeval.atomic import sha256_file

    assert meta["sha256"] == sha256_file(a)


def test_a_sidecar_given_as_the_statistics_names_the_npz(tmp_path: Path, cli) -> None:
    """``--reference x.json`` (the sidecar, not the statistics) said the file was "corrupted or replaced"."""
    from ganeval.stats import SHIPPED_DIR

    side = SHIPPED_DIR / "mnist-train_mnist.json"
    ckpt = save_checkpoint(tmp_path / "run" / checkpoint_name(1), build_generator("mlp"), _meta("mlp"))
    code, _, err = cli("score", ckpt, "--metrics", "mnist_fd",
                       "--reference", side, "--num-samples", 50, "--bootstrap", 0, "--out", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "r").exists()
    assert "mnist-train_mnist.json: this is the statistics' sidecar (their provenance); give the statistics file " \
           "mnist-train_mnist.npz" in err, err
