"""Adam's epsilon form (``ganeval.train.adam``): the mlp recipe, a port of the seed's Keras loop, uses Keras'
"epsilon hat" (checked against the Keras update written out by hand); the DCGAN recipes keep PyTorch's; the form
is recorded in the state, resumes are bit-identical, and a state from before the field resumes in PyTorch's form.
The same holds for the other Keras form of the port, BatchNorm's running-variance update (``bn_variance``)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ganeval.checkpoints import read_metadata
from ganeval.train import train
from ganeval.train.adam import make_adam
from ganeval.train.recipes import RECIPES
from ganeval.train.state import STATE_KEY, STATE_NAME, load_state

GRADS = (1e-3, 1e-5, 1e-6, 1e-7)


def _keras(grads: list[torch.Tensor], lr: float, b1: float, b2: float, eps: float) -> torch.Tensor:
    """Keras/TF Adam, as its source writes it: var -= lr·√(1−β2^t)/(1−β1^t) · m/(√v + ε), in float64."""
    var = torch.zeros_like(grads[0])
    m, v = torch.zeros_like(var), torch.zeros_like(var)
    for t, g in enumerate(grads, start=1):
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        var = var - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (v.sqrt() + eps)
    return var


def _run(opt_of: object, grads: list[torch.Tensor]) -> torch.Tensor:
    p = torch.zeros_like(grads[0], requires_grad=True)
    opt = opt_of([p])  # type: ignore[operator]
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


@pytest.mark.parametrize("fused", [False, True])  # the trainer's CUDA Adam is fused; fused Adam runs on CPU too
def test_the_mlp_recipe_takes_keras_steps(fused: bool) -> None:
    r = RECIPES["mlp"]
    assert (r.adam_eps, r.eps, r.betas) == ("keras", 1e-7, (0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    scale = torch.tensor(GRADS, dtype=torch.float64)
    # 8 steps of gradients around 1e-3 … 1e-7 whose signs and sizes change from step to step
    grads = [scale * (torch.rand(4, generator=gen, dtype=torch.float64) * 2 - 0.5) for _ in range(8)]
    want = _keras(grads, r.lr, *r.betas, r.eps)
    got = _run(lambda ps: make_adam(ps, r, fused=fused), grads)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=0)
    plain = _run(lambda ps: torch.optim.Adam(ps, lr=r.lr, betas=r.betas, eps=r.eps), grads)
    ratio = (plain / want).abs()
    assert ratio[0] == pytest.approx(1.0, abs=0.01) and ratio[3] > 3  # PyTorch's form: far off for tiny gradients


def test_the_dcgan_recipes_keep_pytorchs_adam() -> None:
    for model in ("dcgan", "dcgan_info"):
        r = RECIPES[model]
        assert r.adam_eps == "torch"
        grads = [torch.tensor(GRADS, dtype=torch.float64) * (-1) ** t for t in range(5)]
        plain = _run(lambda ps, r=r: torch.optim.Adam(ps, lr=r.lr, betas=r.betas, eps=r.eps), grads)
        assert torch.equal(_run(lambda ps, r=r: make_adam(ps, r), grads), plain)


def test_a_reloaded_keras_adam_continues_its_own_step_count() -> None:
    r = RECIPES["mlp"]
    grads = [torch.tensor(GRADS, dtype=torch.float64) * (t + 1) for t in range(6)]
    whole = _run(lambda ps: make_adam(ps, r), grads)
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    first = make_adam([p], r)
    for g in grads[:3]:
        p.grad = g.clone()
        first.step()
    second = make_adam([p], r)
    second.load_state_dict(first.state_dict())
    for g in grads[3:]:
        p.grad = g.clone()
        second.step()
    assert torch.equal(p.detach(), whole)
    torch.testing.assert_close(whole, _keras(grads, r.lr, *r.betas, r.eps), rtol=1e-10, atol=0)


KW = {"checkpoint_every": 2, "log_every": 2, "device": "cpu", "progress": False, "seed": 1, "batch_size": 8}


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _recorded_and_old_state_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    field: str) -> tuple[dict[str, torch.Tensor], ...]:
    """Train mlp in Keras' form of recipe ``field``; then, as the trainer did before the field existed, in PyTorch's
    form with no marker, stopped at 2 and resumed from a state without the field. Checks the field is recorded, the
    resume continues in PyTorch's form; returns the last checkpoints of (old, resumed, keras) runs."""
    keras = train(tmp_path / "keras", "mlp", iterations=4, **KW)
    assert load_state(keras.out_dir / STATE_NAME)[1]["run"]["recipe"][field] == "keras"
    assert read_metadata(keras.checkpoints[-1])["recipe"][field] == "keras"
    with monkeypatch.context() as m:
        m.setitem(RECIPES, "mlp", dataclasses.replace(RECIPES["mlp"], **{field: "torch"}))
        old = train(tmp_path / "old", "mlp", iterations=4, **KW)
        train(tmp_path / "part", "mlp", iterations=4, stop_at=2, **KW)
    state = tmp_path / "part" / STATE_NAME
    with safe_open(str(state), "pt") as fh:
        meta = json.loads(fh.metadata()[STATE_KEY])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    assert meta["run"]["recipe"].pop(field) == "torch"
    save_file(tensors, str(state), metadata={STATE_KEY: json.dumps(meta)})
    resumed = train(tmp_path / "part", resume=True, **{k: v for k, v in KW.items() if k not in ("seed", "batch_size")})
    assert resumed.resumed_from == 2 and resumed.iteration == 4
    assert load_state(resumed.out_dir / STATE_NAME)[1]["run"]["recipe"][field] == "torch"
    return tuple(load_file(str(run / "ckpt_0000004.safetensors")) for run in (old.out_dir, resumed.out_dir, keras.out_dir))


def test_the_form_is_recorded_and_a_state_without_it_resumes_in_pytorchs(
        tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    a, b, k = _recorded_and_old_state_resumes(tmp_path, monkeypatch, "adam_eps")
    assert all(torch.equal(a[name], b[name]) for name in a)  # the form it was trained with, bit for bit
    assert not all(torch.equal(a[name], k[name]) for name in a)  # and the forms really differ


def test_the_batchnorm_form_is_recorded_and_a_state_without_it_resumes_in_pytorchs(
        tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    a, b, k = _recorded_and_old_state_resumes(tmp_path, monkeypatch, "bn_variance")
    assert all(torch.equal(a[name], b[name]) for name in a)  # the update it was trained with, bit for bit
    var = [name for name in a if name.endswith("running_var")]
    assert var and not all(torch.equal(a[name], k[name]) for name in var)  # and the forms really differ
