"""Warm-start experiment: continue training the shipped DCGAN's EMA generator against a fresh spectral-norm
discriminator (hinge loss, bf16 autocast on the CPU), printing MNIST-IS of the EMA generator every 500
iterations on 5,000 shared latents. Checks whether fine-tuning on the CPU can raise MNIST-IS.

Usage: python benchmarks/experiments/dcgan_warm_start.py TAG LR BATCH D_WARMUP_STEPS ITERATIONS BETA1
(docs/results.md: ``A 1e-4 64 300 20000 0.5`` and ``C 2e-4 64 300 20000 0.5``, stopped after 1,000 iterations)
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from ganeval.checkpoints import load_generator
from ganeval.data.mnist import load_mnist
from ganeval.features.mnist_classifier import MNISTClassifierExtractor
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.modes import mode_metrics
from ganeval.models.dcgan import DCGANDiscriminator
from ganeval.sampling import latents, to_uint8
from ganeval.train.losses import EMA, hinge_step


def main() -> None:
    tag, lr, bs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    dwarm, iters, beta1 = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    torch.set_num_threads(1)
    torch.manual_seed(1)
    # the checkpoint shipped until session 3: git show 906ed5c:ganeval/pretrained/dcgan/ckpt_0013000.safetensors
    g, _ = load_generator("/tmp/old_ckpt_0013000.safetensors")
    g.train()
    d = DCGANDiscriminator()
    ema = EMA(g, 0.999, 10)
    ema.model.load_state_dict(g.state_dict())
    og = torch.optim.Adam(g.parameters(), lr, betas=(beta1, 0.999))
    od = torch.optim.Adam(d.parameters(), lr, betas=(beta1, 0.999))
    data = torch.from_numpy(np.array(load_mnist("train")[0]))
    gen = torch.Generator().manual_seed(5)

    def real() -> torch.Tensor:
        return data[torch.randint(0, len(data), (bs,), generator=gen)].unsqueeze(1).float() / 127.5 - 1

    def noise() -> torch.Tensor:
        return torch.randn(bs, 128, generator=gen)

    ext, z_eval = MNISTClassifierExtractor(device="cpu"), latents(5000, 128, 0)

    def evaluate(m: torch.nn.Module) -> tuple[float, float, float]:
        m.eval()
        with torch.inference_mode():
            logits = torch.cat([ext(to_uint8(m(c)))["logits"] for c in z_eval.split(500)])
        mm = mode_metrics(logits)
        return inception_score(logits)[0], mm["class_kl"], mm["mnist_confidence"]

    print(tag, "start (IS, class KL, confidence)", evaluate(ema.model), flush=True)
    for _ in range(dwarm):  # D alone against the fixed generator
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x = real()
            with torch.no_grad():
                f = g(noise())
            od.zero_grad()
            lo = d(torch.cat([x, f]))
            loss = F.relu(1 - lo[:bs]).mean() + F.relu(1 + lo[bs:]).mean()
            loss.backward()
            od.step()
    print(tag, "D warm-up hinge loss", float(loss.detach()), flush=True)
    t = time.time()
    for it in range(1, iters + 1):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            s = hinge_step(g, d, og, od, real, noise)
        ema.update(g, 13000 + it)
        if it % 500 == 0:
            e = evaluate(ema.model)
            g.train()
            print(tag, it, f"{time.time() - t:.0f}s", "d_loss/d_acc/g_loss/g_acc", [round(v, 3) for v in s.tolist()],
                  "EMA (IS, class KL, confidence)", e, flush=True)


if __name__ == "__main__":
    main()
