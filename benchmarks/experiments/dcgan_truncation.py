"""Does the truncation trick (latents scaled by psi < 1) raise a DCGAN checkpoint's MNIST-IS? MNIST-IS, the
metrics of ``ganeval.metrics.modes`` (modes covered, class KL, mean confidence) at N = 10,000 shared latents
(seed 0), scaled by each psi.

Usage: python benchmarks/experiments/dcgan_truncation.py CKPT [PSI ...]   (default psi: 1.0 0.9 0.8 0.7 0.6 0.5)
"""

from __future__ import annotations

import sys

import torch

from ganeval.checkpoints import load_generator
from ganeval.features.mnist_classifier import MNISTClassifierExtractor
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.modes import mode_metrics
from ganeval.sampling import latents, to_uint8

N = 10_000


def main(path: str, psis: list[float]) -> None:
    ext = MNISTClassifierExtractor(device="cpu")
    g, _ = load_generator(path)
    z0 = latents(N, int(g.latent_dim), 0)
    with torch.inference_mode():
        for psi in psis:
            logits = torch.cat([ext(to_uint8(g(c * psi)))["logits"] for c in z0.split(500)])
            m = mode_metrics(logits)
            print(f"psi {psi:.2f}: MNIST-IS {inception_score(logits)[0]:.3f} | class KL {m['class_kl']:.4f} | "
                  f"modes {m['modes_covered']} | mean confidence {m['mnist_confidence']:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [float(a) for a in sys.argv[2:]] or [1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
