"""The InfoGAN-style DCGAN (``dcgan_info``): the discrete code read from Gaussian latents, the code head, and
the code loss of the hinge step actually teaching D to recover G's code."""

from __future__ import annotations

from pathlib import Path

import torch

from ganeval import load_generator
from ganeval.checkpoints import read_metadata
from ganeval.data.mnist import load_mnist
from ganeval.models import MODELS, InfoDCGANGenerator, build_discriminator, build_generator
from ganeval.train import train
from ganeval.train.losses import STEPS
from ganeval.train.recipes import get_recipe


def test_code_is_uniform_and_changes_the_image() -> None:
    g = build_generator("dcgan_info", {"channels": 4}).eval()
    z = torch.randn(20_000, g.latent_dim, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(g.code(z), minlength=10).double() / len(z)
    assert torch.all((counts - 0.1).abs() < 0.01), counts  # argmax of 10 iid normals: uniform
    a = torch.zeros(1, g.latent_dim)
    a[0, 3] = 1.0
    b = a.clone()
    b[0, 3], b[0, 7] = 0.0, 1.0  # same continuous part, another code
    with torch.no_grad():
        assert not torch.allclose(g(a), g(b))
        a2 = a.clone()
        a2[0, 3] = 5.0  # only the argmax counts, not the value
        assert torch.equal(g(a), g(a2))


def test_discriminator_heads_share_the_trunk() -> None:
    d = build_discriminator("dcgan_info", {"channels": 4}).eval()
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    logits, q = d.forward_with_code(x)
    assert q.shape == (5, 10) and torch.allclose(logits, d(x))


def test_code_loss_teaches_d_to_recover_the_code(mnist_dir: Path) -> None:
    assert MODELS["dcgan_info"].uses_ema and get_recipe("dcgan_info").loss == "info_hinge"
    torch.manual_seed(0)
    digits = torch.from_numpy(load_mnist("train", mnist_dir)[0][:2000].copy()).float().div(127.5).sub(1).unsqueeze(1)
    # A loud code (scale sqrt(118)) so that 100 steps of a tiny model suffice; the mechanism is what is tested.
    cfg = {"channels": 8, "code_scale": 118 ** 0.5}
    g, d = build_generator("dcgan_info", cfg), build_discriminator("dcgan_info", cfg)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999)) for m in (g, d))
    real = lambda: digits[torch.randint(0, len(digits), (64,))]  # noqa: E731
    noise = lambda: torch.randn(64, g.latent_dim)  # noqa: E731

    def code_accuracy() -> float:
        z = torch.randn(512, g.latent_dim, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            return float((d.forward_with_code(g(z))[1].argmax(1) == g.code(z)).double().mean())

    before = code_accuracy()
    for _ in range(100):
        STEPS["info_hinge"](g, d, opt_g, opt_d, real, noise)
    after = code_accuracy()
    assert before < 0.2 and after > 0.5, (before, after)  # chance is 0.1


def test_trained_checkpoint_loads_with_its_code_scale(tmp_path: Path, mnist_dir: Path) -> None:
    run = train(tmp_path / "run", "dcgan_info", iterations=2, checkpoint_every=2, log_every=1, device="cpu",
                progress=False, config={"channels": 4, "code_scale": 2.5})
    g, meta = load_generator(run.checkpoints[-1])
    assert isinstance(g, InfoDCGANGenerator) and g.code_scale == 2.5 and meta["model"] == "dcgan_info"
    default = train(tmp_path / "default", "dcgan_info", iterations=1, checkpoint_every=1, log_every=1, device="cpu",
                    progress=False, config={"channels": 4})
    assert read_metadata(default.checkpoints[-1])["config"]["code_scale"] == 3.0  # the default is recorded
