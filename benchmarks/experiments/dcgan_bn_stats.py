"""MNIST-IS of the shipped DCGAN with its stored BatchNorm statistics, with batch statistics, and with
statistics re-estimated over 20,000 fresh latents (N = 10,000 shared latents, seed 0)."""

from __future__ import annotations

import torch

from ganeval.checkpoints import load_generator
from ganeval.features.mnist_classifier import MNISTClassifierExtractor
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.modes import mode_metrics
from ganeval.sampling import latents, to_uint8

# The checkpoint shipped until session 3; restore it with
#   git show 906ed5c:ganeval/pretrained/dcgan/ckpt_0013000.safetensors > /tmp/old_ckpt_0013000.safetensors
CKPT = "/tmp/old_ckpt_0013000.safetensors"


def mnist_is(g: torch.nn.Module, ext: MNISTClassifierExtractor, z: torch.Tensor) -> tuple[float, dict[str, float]]:
    with torch.inference_mode():
        logits = torch.cat([ext(to_uint8(g(c)))["logits"] for c in z.split(500)])
    return inception_score(logits)[0], mode_metrics(logits)


def main() -> None:
    ext, z = MNISTClassifierExtractor(device="cpu"), latents(10000, 128, 0)
    g, _ = load_generator(CKPT)
    print("stored running statistics", mnist_is(g, ext, z))
    print("batch statistics (train mode)", mnist_is(load_generator(CKPT)[0].train(), ext, z))
    g, _ = load_generator(CKPT)
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    g.train()
    with torch.no_grad():
        for c in torch.randn(20000, 128, generator=torch.Generator().manual_seed(123)).split(500):
            g(c)
    print("re-estimated statistics", mnist_is(g.eval(), ext, z))


if __name__ == "__main__":
    main()
