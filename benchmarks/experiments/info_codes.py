"""How the discrete code of a ``dcgan_info`` generator lines up with MNIST digits: for each code, the share of its
samples the MNIST classifier puts in each digit, and their mean classifier entropy (N = 10,000 shared latents,
seed 0). A code that holds one digit adds almost no entropy; a code that mixes two digits is where MNIST-IS is lost.

Usage: python benchmarks/experiments/info_codes.py CKPT [CKPT ...]
"""

from __future__ import annotations

import sys

import torch

from ganeval.checkpoints import load_generator
from ganeval.features.mnist_classifier import MNISTClassifierExtractor
from ganeval.sampling import latents, to_uint8

N = 10_000


def describe(path: str, ext: MNISTClassifierExtractor) -> None:
    """Print the digit frequencies and one line per code."""
    g, _ = load_generator(path)
    z = latents(N, int(g.latent_dim), 0)
    with torch.inference_mode():
        p = torch.cat([ext(to_uint8(g(c)))["logits"] for c in z.split(500)]).double().softmax(1)
    ent = -(p * p.clamp_min(1e-30).log()).sum(1)
    pred, code = p.argmax(1), g.code(z)
    print(f"{path}\n  digit shares: " + " ".join(f"{d}:{float((pred == d).double().mean()):.3f}" for d in range(10)))
    for c in range(int(g.categories)):
        m = code == c
        share = torch.bincount(pred[m], minlength=10).double() / m.sum()
        top = share.argsort(descending=True)[:3]
        mix = ", ".join(f"{int(d)}: {float(share[d]):.2f}" for d in top if share[d] >= 0.01)
        print(f"  code {c:2d} ({int(m.sum()):5d} samples): {mix:<30} mean entropy {float(ent[m].mean()):.3f}")


def main(paths: list[str]) -> None:
    ext = MNISTClassifierExtractor(device="cpu")
    for path in paths:
        describe(path, ext)


if __name__ == "__main__":
    main(sys.argv[1:])
