"""The bundled trainer (``ganeval train`` / ``ganeval.train.train``): the seed's MLP and its loop, the DCGAN
recipe, run-folder files, exact resume (also after a real ``kill -9``), and bad input → exit code 2.
Tiny runs on one CPU thread; the whole file takes well under a minute."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ganeval import list_checkpoints, load_generator
from ganeval.checkpoints import read_metadata
from ganeval.errors import CheckpointError
from ganeval.models import build_discriminator, build_generator
from ganeval.train import train
from ganeval.train.losses import EMA, bce_seed_step, hinge_step
from ganeval.train.recipes import RECIPES, TrainError
from ganeval.train.state import LOG_HEADER, STATE_NAME, load_state

N, K, LOG = 40, 10, 5  # iterations, checkpoint interval and log interval of the reference run


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One CPU thread (as the subprocesses get), for speed on a shared machine and bit-identical results."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted mlp run: N iterations, checkpoints every K."""
    out = tmp_path_factory.mktemp("ref") / "run"
    train(out, "mlp", iterations=N, checkpoint_every=K, log_every=LOG, seed=0, device="cpu", progress=False)
    return out


def _tensors_equal(a: Path, b: Path) -> bool:
    ta, tb = load_file(str(a)), load_file(str(b))
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def _log_rows(out: Path) -> list[list[str]]:
    lines = (out / "train_log.csv").read_text().splitlines()
    assert lines[0] == LOG_HEADER
    return [line.split(",") for line in lines[1:]]


def _subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


# --------------------------------------------------------------------------------------------- models, loop


def test_seed_network_parameter_counts() -> None:
    g, d = build_generator("mlp"), build_discriminator("mlp")
    assert sum(p.numel() for p in g.parameters() if p.requires_grad) == 1_489_936
    assert sum(p.numel() for p in d.parameters() if p.requires_grad) == 533_505
    widths = [m.out_features for m in g.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 512, 1024, 784]
    bns = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [(m.momentum, m.eps) for m in bns] == [(0.2, 1e-3)] * 3  # Keras momentum=0.8, epsilon=1e-3
    assert isinstance(list(g.modules())[-1], torch.nn.Tanh)
    assert [m.out_features for m in d.modules() if isinstance(m, torch.nn.Linear)] == [512, 256, 1]
    assert d(torch.zeros(3, 1, 28, 28)).shape == (3,)  # logits, no sigmoid


def test_seed_batchnorm_moves_its_variance_like_keras() -> None:
    """Keras 2's BatchNormalization moves the running variance towards var_batch · n/(n − 1 − ε) (its
    keras/layers/normalization.py); PyTorch's BatchNorm1d towards n/(n − 1). The seed's D trains on fakes made in
    inference mode, so these statistics shape training; the output in training mode is PyTorch's (biased var)."""
    torch.manual_seed(1)
    g = build_generator("mlp").double()
    g.train()
    z = torch.randn(4, 100, dtype=torch.float64)  # n = 4: Keras' factor 4/2.999 vs PyTorch's 4/3 differ by 3.3e-4
    bn = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm1d)][0]
    h = g.net[1](g.net[0](z)).detach()
    out = bn(h)
    var, mean = torch.var_mean(h, dim=0, correction=0)
    m, n, eps = 0.2, 4, 1e-3
    torch.testing.assert_close(bn.running_mean, m * mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(bn.running_var, (1 - m) + m * var * n / (n - 1 - eps), rtol=1e-12, atol=1e-14)
    assert int(bn.num_batches_tracked) == 1
    torch.testing.assert_close(out, (h - mean) / torch.sqrt(var + eps) * bn.weight + bn.bias)
    bn.eval()  # inference mode: the running statistics, as before
    torch.testing.assert_close(bn(h), (h - bn.running_mean) / torch.sqrt(bn.running_var + eps) * bn.weight + bn.bias)
    with pytest.raises(ValueError):  # one value per channel is refused in training mode, as PyTorch does
        bn.train()(h[:1])


def test_recipes_match_the_issue() -> None:
    mlp, dcgan = RECIPES["mlp"], RECIPES["dcgan"]
    assert (mlp.loss, mlp.lr, mlp.betas, mlp.batch_size, mlp.iterations, mlp.ema_decay) == \
        ("bce_seed", 2e-4, (0.5, 0.999), 32, 30_000, None)
    assert (dcgan.loss, dcgan.lr, dcgan.betas[1], dcgan.batch_size, dcgan.ema_decay) == ("hinge", 2e-4, 0.999, 64, 0.999)
    assert dcgan.betas[0] in (0.0, 0.5)


def _tiny_setup(model: str) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Adam, torch.optim.Adam, object, object]:
    torch.manual_seed(0)
    cfg = {"channels": 4} if model == "dcgan" else None
    g, d = build_generator(model, cfg), build_discriminator(model, cfg)
    opt_g, opt_d = torch.optim.Adam(g.parameters(), 2e-4), torch.optim.Adam(d.parameters(), 2e-4)
    real = lambda: torch.rand(8, 1, 28, 28) * 2 - 1  # noqa: E731
    noise = lambda: torch.randn(8, g.latent_dim)  # noqa: E731
    return g, d, opt_g, opt_d, real, noise


def test_bce_seed_step_is_the_keras_loop() -> None:
    g, d, opt_g, opt_d, real, noise = _tiny_setup("mlp")
    stats = bce_seed_step(g, d, opt_g, opt_d, real, noise, n_critic=1)
    assert stats.shape == (4,) and not stats.requires_grad
    # D: two train_on_batch updates (real, then fake); G: one update.
    assert all(int(s["step"]) == 2 for s in opt_d.state.values())
    assert all(int(s["step"]) == 1 for s in opt_g.state.values())
    # the fake batch for D came from predict() (inference-mode BatchNorm): only the G step updated the statistics
    assert all(int(m.num_batches_tracked) == 1 for m in g.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert all(p.requires_grad for p in d.parameters())  # D unfrozen again
    assert 0.0 <= float(stats[1]) <= 1.0 and 0.0 <= float(stats[3]) <= 1.0


def test_hinge_step_with_n_critic() -> None:
    g, d, opt_g, opt_d, real, noise = _tiny_setup("dcgan")
    stats = hinge_step(g, d, opt_g, opt_d, real, noise, n_critic=3)
    assert stats.shape == (4,)
    assert all(int(s["step"]) == 3 for s in opt_d.state.values())
    assert all(int(s["step"]) == 1 for s in opt_g.state.values())
    assert float(stats[0]) >= 0.0  # hinge D loss is non-negative


def test_ema_warmup_and_update() -> None:
    lin = torch.nn.Linear(2, 1)
    ema = EMA(lin, decay=0.999, warmup=10)
    assert ema.decay_at(1) == pytest.approx(2 / 11)
    assert ema.decay_at(10**6) == 0.999
    with torch.no_grad():
        target = lin.weight.clone() + 1.0
        lin.weight.copy_(target)
    old = ema.model.weight.clone()
    ema.update(lin, 1)
    torch.testing.assert_close(ema.model.weight, old + (1 - 2 / 11) * (target - old))
    assert not ema.model.weight.requires_grad


# --------------------------------------------------------------------------------------------- run folder


def test_run_folder_contents(reference: Path) -> None:
    names = sorted(p.name for p in reference.iterdir())
    ckpts = [f"ckpt_{i:07d}.safetensors" for i in range(K, N + 1, K)]
    pngs = [f"samples_{i:07d}.png" for i in range(K, N + 1, K)]
    assert names == sorted([*ckpts, *pngs, "train_log.csv", STATE_NAME])
    meta = read_metadata(reference / ckpts[-1])
    for key in ("model", "config", "latent_dim", "iteration", "seed", "package_version", "data_sha256", "time"):
        assert key in meta, key
    assert (meta["model"], meta["iteration"], meta["seed"], meta["latent_dim"]) == ("mlp", N, 0, 100)
    from ganeval.data import mnist_checksum

    assert meta["data_sha256"] == mnist_checksum("train")
    g, info = load_generator(reference / ckpts[-1])
    assert info["weights"] == "g" and g(torch.randn(2, 100)).shape == (2, 1, 28, 28)
    with Image.open(reference / pngs[-1]) as im:
        assert im.mode == "L" and im.size == ((10 * 30 + 2) * 2, (3 * 30 + 2) * 2)
    rows = _log_rows(reference)
    assert [int(r[0]) for r in rows] == list(range(LOG, N + 1, LOG))
    assert all(len(r) == 6 and 0 <= float(r[2]) <= 1 and 0 <= float(r[4]) <= 1 for r in rows)
    tensors, state = load_state(reference / STATE_NAME)
    assert state["iteration"] == N and state["run"]["model"] == "mlp"
    assert {"rng.data", "rng.latent", "rng.torch_cpu", "sample_z"} <= tensors.keys()
    assert any(k.startswith("opt_d.") for k in tensors) and any(k.startswith("opt_g.") for k in tensors)


def test_dcgan_checkpoints_hold_ema(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "dcgan"
    result = train(out, "dcgan", iterations=6, checkpoint_every=3, log_every=3, config={"channels": 4}, device="cpu",
                   progress=False)
    assert [p.name for p in result.checkpoints] == ["ckpt_0000003.safetensors", "ckpt_0000006.safetensors"]
    keys = load_file(str(result.checkpoints[-1])).keys()
    assert any(k.startswith("g_ema.") for k in keys) and any(k.startswith("g.") for k in keys)
    g, info = load_generator(result.checkpoints[-1])
    assert info["weights"] == "g_ema" and info["config"] == {"latent_dim": 128, "channels": 4} and info["ema"] is True
    assert not _tensors_equal_models(g, load_generator(result.checkpoints[-1], use_ema=False)[0])


def test_lr_decay_schedule() -> None:
    r = dataclasses.replace(RECIPES["dcgan"], lr_decay_start=6)
    assert [r.lr_at(t, 10) for t in (1, 6, 7, 8, 10)] == pytest.approx([2e-4, 2e-4, 2e-4, 1.5e-4, 0.5e-4])
    assert RECIPES["dcgan"].lr_at(10, 10) == 2e-4  # no decay unless asked for


def test_lr_decay_run_and_resume(tmp_path: Path, mnist_dir: Path) -> None:
    kw = dict(checkpoint_every=4, log_every=4, config={"channels": 4}, device="cpu", progress=False, seed=3)
    full = train(tmp_path / "full", "dcgan", iterations=8, lr_decay_start=4, **kw)
    _, meta = load_state(full.out_dir / STATE_NAME)
    assert meta["run"]["recipe"]["lr_decay_start"] == 4
    assert [g["lr"] for g in meta["opt_g"]["param_groups"] + meta["opt_d"]["param_groups"]] == pytest.approx([0.5e-4] * 2)
    with pytest.raises(TrainError, match="must be below"):
        train(tmp_path / "bad", "dcgan", iterations=4, lr_decay_start=4, **kw)
    train(tmp_path / "part", "dcgan", iterations=6, lr_decay_start=4, **kw)
    rest = {k: v for k, v in kw.items() if k not in ("config", "seed")}
    with pytest.raises(TrainError, match="--lr-decay-start 5 differs"):
        train(tmp_path / "part", iterations=8, resume=True, lr_decay_start=5, **rest)
    resumed = train(tmp_path / "part", iterations=8, resume=True, **rest)
    _, meta = load_state(resumed.out_dir / STATE_NAME)
    assert resumed.iteration == 8 and meta["run"]["recipe"]["lr_decay_start"] == 4
    assert meta["opt_g"]["param_groups"][0]["lr"] == pytest.approx(0.5e-4)
    assert read_metadata(resumed.checkpoints[-1])["target_iterations"] == 8


def test_decay_added_on_resume_matches_a_fresh_decayed_run(tmp_path: Path, mnist_dir: Path) -> None:
    kw = dict(checkpoint_every=3, log_every=3, device="cpu", progress=False)
    fresh = train(tmp_path / "fresh", "dcgan", iterations=9, lr_decay_start=6, seed=5, config={"channels": 4}, **kw)
    train(tmp_path / "late", "dcgan", iterations=6, seed=5, config={"channels": 4}, **kw)  # constant rate so far
    with pytest.raises(TrainError, match="at or after its iteration 6"):
        train(tmp_path / "late", iterations=9, resume=True, lr_decay_start=5, **kw)  # would rewrite the past
    late = train(tmp_path / "late", iterations=9, resume=True, lr_decay_start=6, **kw)
    assert [c.name for c in late.checkpoints] == [c.name for c in fresh.checkpoints]
    for a, b in zip(fresh.checkpoints, late.checkpoints, strict=True):
        assert _tensors_equal(a, b), a.name
    _, meta = load_state(late.out_dir / STATE_NAME)
    assert meta["run"]["recipe"]["lr_decay_start"] == 6
    assert meta["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4 / 3)
    with pytest.raises(TrainError, match="--lr-decay-start 7 differs"):  # a run that has a decay keeps it
        train(tmp_path / "late", iterations=12, resume=True, lr_decay_start=7, **kw)


def test_bf16_run_resume_and_checks(tmp_path: Path, mnist_dir: Path) -> None:
    kw = dict(checkpoint_every=3, log_every=3, config={"channels": 4}, device="cpu", progress=False, seed=5)
    full = train(tmp_path / "full", "dcgan", iterations=6, precision="bf16", **kw)
    fp32 = train(tmp_path / "fp32", "dcgan", iterations=6, **kw)
    _, meta = load_state(full.out_dir / STATE_NAME)
    assert meta["run"]["recipe"]["precision"] == "bf16"
    assert read_metadata(full.checkpoints[-1])["recipe"]["precision"] == "bf16"
    ta, tb = load_file(str(full.checkpoints[-1])), load_file(str(fp32.checkpoints[-1]))
    assert {v.dtype for v in ta.values() if v.is_floating_point()} == {torch.float32}  # weights stay fp32 (checkpoints do not change form)
    assert not all(torch.equal(ta[k], tb[k]) for k in ta)  # the forward passes really ran in bf16
    g, _ = load_generator(full.checkpoints[-1])
    assert torch.isfinite(g(torch.randn(2, g.latent_dim))).all()
    train(tmp_path / "part", "dcgan", iterations=3, precision="bf16", **kw)
    rest = {k: v for k, v in kw.items() if k not in ("config", "seed")}
    with pytest.raises(TrainError, match="--precision fp32 differs"):
        train(tmp_path / "part", iterations=6, resume=True, precision="fp32", **rest)
    resumed = train(tmp_path / "part", iterations=6, resume=True, **rest)
    assert resumed.resumed_from == 3
    for ref in list_checkpoints(full.out_dir):  # resume stays bit-identical in bf16
        assert _tensors_equal(ref.path, resumed.out_dir / ref.path.name), ref.path.name
    with pytest.raises(TrainError, match="--precision 'fp16' is not one of fp32, bf16"):
        train(tmp_path / "bad", "dcgan", iterations=2, precision="fp16", **kw)
    assert not (tmp_path / "bad").exists()


def test_bf16_seed_mlp_step(tmp_path: Path, mnist_dir: Path) -> None:
    run = train(tmp_path / "mlp", "mlp", iterations=4, checkpoint_every=2, log_every=2, precision="bf16", device="cpu",
                progress=False)
    assert run.iteration == 4 and len(run.checkpoints) == 2
    assert all(float(r[1]) == float(r[1]) and float(r[3]) > 0 for r in _log_rows(run.out_dir))  # finite losses


def _tensors_equal_models(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------------------------- resume


def test_resume_is_bit_identical(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = train(out, "mlp", iterations=K, checkpoint_every=K, log_every=LOG, seed=0, device="cpu", progress=False)
    assert first.iteration == K and first.resumed_from is None
    # the run's own cadence, not the defaults (1000/100): a resume without --checkpoint-every wrote none before N
    result = train(out, iterations=N, resume=True, device="cpu", progress=False)
    assert result.resumed_from == K and result.iteration == N
    assert [r.iteration for r in list_checkpoints(out)] == [r.iteration for r in list_checkpoints(reference)]
    for ref in list_checkpoints(reference):
        assert _tensors_equal(ref.path, out / ref.path.name), ref.path.name
    assert _tensors_equal(reference / STATE_NAME, out / STATE_NAME)
    assert [r[:5] for r in _log_rows(out)] == [r[:5] for r in _log_rows(reference)]


def test_resume_after_crash_between_state_and_checkpoint(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / f"ckpt_{N:07d}.safetensors").unlink()  # killed after the state was written, before the checkpoint
    (out / f"samples_{N:07d}.png").unlink()
    (out / f".ckpt_{N:07d}.safetensors.x1y2.tmp").write_bytes(b"partial")
    (out / ".samples_0000020.png.abc.tmp").write_bytes(b"partial")
    with open(out / "train_log.csv", "a") as fh:
        fh.write(f"{N + 10},0.1,0.5,0.2,0.5,9.0\n{N + 20},0.1,0.")  # rows after the state's iteration, and a torn one
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name.startswith("ckpt_")}
    result = train(out, resume=True, progress=False, device="cpu")
    assert result.iteration == N
    assert _tensors_equal(reference / f"ckpt_{N:07d}.safetensors", out / f"ckpt_{N:07d}.safetensors")
    assert (out / f"samples_{N:07d}.png").exists()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
    assert [int(r[0]) for r in _log_rows(out)] == list(range(LOG, N + 1, LOG))
    assert all(p.read_bytes() == data for p, data in ((out / n, d) for n, d in before.items()))


def test_existing_checkpoint_is_never_rewritten(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(out, "mlp", iterations=K, checkpoint_every=K, log_every=LOG, seed=0, device="cpu", progress=False)
    state_k = (out / STATE_NAME).read_bytes()
    later = f"ckpt_{2 * K:07d}.safetensors"
    # the same content at a later iteration is kept as it is
    shutil.copy(reference / later, out)
    kept = (out / later).read_bytes()
    train(out, iterations=2 * K, resume=True, progress=False, device="cpu")
    assert (out / later).read_bytes() == kept
    # different weights at a later iteration: refused, and the file is untouched
    (out / STATE_NAME).write_bytes(state_k)
    shutil.copy(reference / f"ckpt_{3 * K:07d}.safetensors", out / later)
    foreign = (out / later).read_bytes()
    with pytest.raises(CheckpointError, match=f"{later}: exists with different weights"):
        train(out, iterations=2 * K, resume=True, progress=False, device="cpu")
    assert (out / later).read_bytes() == foreign
    assert load_state(out / STATE_NAME)[1]["iteration"] == K  # the state did not move past the refusal


def test_kill_9_and_resume(reference: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganeval", "train", "--model", "mlp", "--iterations", str(N), "--checkpoint-every", str(K),
           "--log-every", str(LOG), "--seed", "0", "--device", "cpu", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, env=_subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not list_checkpoints(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode() if proc.stderr else ""
    killed_at = load_state(out / STATE_NAME)[1]["iteration"]
    assert K <= killed_at < N  # the kill really interrupted the run
    code, _, err = cli(*cmd[3:-1], "--resume")  # the resume runs in-process, on one thread like the subprocess
    assert code == 0, err
    refs = list_checkpoints(out)
    assert [r.iteration for r in refs] == list(range(K, N + 1, K))
    for ref in refs:
        load_generator(ref.path)
        assert (out / f"samples_{ref.iteration:07d}.png").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert [int(r[0]) for r in _log_rows(out)] == list(range(LOG, N + 1, LOG))
    # determinism: the killed and resumed run ends with exactly the uninterrupted run's weights
    assert _tensors_equal(reference / f"ckpt_{N:07d}.safetensors", out / f"ckpt_{N:07d}.safetensors")


# --------------------------------------------------------------------------------------------- bad input


def test_cli_run_and_progress_postfix(tmp_path: Path, mnist_dir: Path, cli) -> None:
    code, out, err = cli("train", "--model", "mlp", "--iterations", "4", "--checkpoint-every", "2", "--log-every", "2",
                         "--device", "cpu", "--out", tmp_path / "r")
    assert code == 0, err
    assert "iteration 4, 2 checkpoints" in out
    assert "D loss" in err and "G loss" in err and "acc" in err


def test_cli_unknown_model(tmp_path: Path, cli) -> None:
    code, _, err = cli("train", "--model", "stylegan9", "--out", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and "unknown model 'stylegan9'" in err and "mlp" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args", [["--iterations", "0"], ["--lr", "-1"], ["--checkpoint-every", "0"], ["--device", "tpu9"]])
def test_cli_bad_numbers(tmp_path: Path, cli, args: list[str]) -> None:
    code, _, err = cli("train", "--out", tmp_path / "r", *args)
    assert code == 2 and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_cli_non_empty_out_without_resume(reference: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = _snapshot(out)
    code, _, err = cli("train", "--model", "mlp", "--iterations", "200", "--out", out)
    assert code == 2 and err.count("\n") == 1 and "not empty" in err and "--resume" in err
    assert _snapshot(out) == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "pickle", "no-metadata"])
def test_cli_corrupt_state_file(reference: Path, tmp_path: Path, cli, damage: str) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    state = out / STATE_NAME
    data = state.read_bytes()
    if damage == "truncate":
        state.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        state.write_bytes(os.urandom(4096))
    elif damage == "pickle":
        import pickle

        state.write_bytes(pickle.dumps({"iteration": 5}))
    else:
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, str(state))
    before = _snapshot(out)
    code, _, err = cli("train", "--iterations", "200", "--resume", "--out", out)
    assert code == 2 and err.count("\n") == 1 and STATE_NAME in err, err
    assert _snapshot(out) == before


def test_cli_resume_conflicts_and_missing_state(reference: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = _snapshot(out)
    for args in (["--lr", "0.001"], ["--model", "dcgan"], ["--seed", "1"], ["--batch-size", "64"]):
        code, _, err = cli("train", "--resume", "--out", out, "--iterations", "200", *args)
        assert code == 2 and err.count("\n") == 1 and "differs from the run's" in err, (args, err)
    (out / STATE_NAME).unlink()
    code, _, err = cli("train", "--resume", "--out", out)
    assert code == 2 and "cannot be resumed" in err
    before.pop(STATE_NAME)
    assert _snapshot(out) == before


def test_api_errors_are_ganeval_errors(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="unknown model"):
        train(tmp_path / "r", "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainError, match="not a folder"):
        train(tmp_path / "file")


@pytest.mark.parametrize("lr", ["inf", "1e309", "nan"])
def test_cli_lr_must_be_finite(tmp_path: Path, mnist_dir: Path, cli, lr: str) -> None:
    """--lr inf trained NaN weights, exited 0, and then --resume refused the run's own state."""
    code, _, err = cli("train", "--out", tmp_path / "r", "--lr", lr, "--iterations", "2", "--batch-size", "4",
                       "--checkpoint-every", "2", "--device", "cpu", "--no-progress")
    assert code == 2 and err.count("\n") == 1 and "--lr must be positive and finite (got" in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("seed", [str(2**64), str(-(2**63) - 1), str(10**20), "-1"])
def test_cli_seed_out_of_torch_range(tmp_path: Path, cli, seed: str) -> None:
    """torch.manual_seed raised an overflow ValueError: a traceback, exit 1."""
    code, _, err = cli("train", "--out", tmp_path / "r", f"--seed={seed}", "--iterations", "2", "--batch-size", "4",
                       "--device", "cpu", "--no-progress")
    assert code == 2 and err.count("\n") == 1 and f"--seed {seed} is out of range" in err, err
    assert not (tmp_path / "r").exists()


def test_seed_range_is_torchs_distinct_seeds() -> None:
    """Each seed accepted is a state of its own: torch takes -2**63.. too, but a negative seed is seed + 2**64's
    state (-1 and 2**64 - 1 trained bit-identical classifiers recorded under two seeds). A stored run's seed keeps
    torch's whole range (runs begun before are resumed)."""
    from ganeval.train.recipes import LEGACY_SEED_RANGE, SEED_RANGE, seed_problem

    low, high = SEED_RANGE
    with torch.random.fork_rng(devices=[]):
        for seed in (low, 1, 2**63, high - 1):
            assert seed_problem(seed) is None
            torch.manual_seed(seed)
            torch.Generator().manual_seed(seed)
        assert "out of range" in (seed_problem(-1) or "") and "out of range" in (seed_problem(high) or "")
        assert torch.Generator().manual_seed(-1).initial_seed() == torch.Generator().manual_seed(2**64 - 1).initial_seed()
        for seed in LEGACY_SEED_RANGE[0], -1:
            assert seed_problem(seed, legacy=True) is None
            torch.manual_seed(seed)
        for seed in (LEGACY_SEED_RANGE[0] - 1, high):
            assert "out of range" in (seed_problem(seed, legacy=True) or "")
            with pytest.raises((ValueError, RuntimeError, OverflowError)):
                torch.manual_seed(seed)
    assert seed_problem(True) and seed_problem(1.5)
