"""Generator checkpoints (``ganeval.checkpoints``): round trips, ordering, and refusal of pickles, truncated
files and unknown models, all as ``CheckpointError``."""

from __future__ import annotations

import copy
import io
import json
import pickle
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
