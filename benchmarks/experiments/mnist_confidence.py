"""Where MNIST-IS is lost: the distribution of the MNIST classifier's per-sample top-class probability and entropy
for generated samples (N = 10,000 shared latents, seed 0) next to the real test digits.

Usage: python benchmarks/experiments/mnist_confidence.py CKPT [CKPT ...]
"""

from __future__ import annotations

import math
import sys

import torch

from ganeval.checkpoints import load_generator
from ganeval.data.mnist import load_mnist
from ganeval.features.mnist_classifier import MNISTClassifierExtractor
from ganeval.metrics.inception_score import inception_score
from ganeval.sampling import latents, to_uint8

N = 10_000


def describe(name: str, logits: torch.Tensor) -> None:
    """One line: MNIST-IS, class KL, mean entropy, and how much of the entropy the least confident samples hold."""
    p = logits.double().softmax(1)
    ent = -(p * p.clamp_min(1e-30).log()).sum(1)
    top = p.max(1).values
    marg = p.mean(0)
    kl = float((marg * (marg * 10).log()).sum())
    share = {k: float(ent.sort(descending=True).values[: int(k * len(ent))].sum() / ent.sum()) for k in (0.01, 0.05, 0.10)}
    frac = {t: float((top < t).double().mean()) for t in (0.5, 0.9, 0.99)}
    print(f"{name}: MNIST-IS {inception_score(logits)[0]:.3f} | class KL {kl:.4f} | mean entropy {float(ent.mean()):.4f} "
          f"(IS cap at this balance {math.exp(math.log(10) - kl):.2f}) | top-prob < 0.5/0.9/0.99: "
          f"{frac[0.5]:.3f}/{frac[0.9]:.3f}/{frac[0.99]:.3f} | entropy share of least confident 1/5/10%: "
          f"{share[0.01]:.2f}/{share[0.05]:.2f}/{share[0.10]:.2f}")


def main(paths: list[str]) -> None:
    ext = MNISTClassifierExtractor(device="cpu")
    real = torch.from_numpy(load_mnist("test")[0][:N]).unsqueeze(1)
    with torch.inference_mode():
        describe("real test digits", torch.cat([ext(c)["logits"] for c in real.split(500)]))
        for path in paths:
            g, _ = load_generator(path)
            z = latents(N, int(g.latent_dim), 0)
            describe(path, torch.cat([ext(to_uint8(g(c)))["logits"] for c in z.split(500)]))


if __name__ == "__main__":
    main(sys.argv[1:])
