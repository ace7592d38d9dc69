"""An InfoGAN-style DCGAN: the generator reads a discrete code from its Gaussian latent, and the discriminator has
a head that recovers the code (Chen et al. 2016).

Why: an unconditional generator with a connected latent space must pass *between* the ten digit classes, and the
samples there are the ambiguous ones that hold MNIST-IS down. A discrete code gives the generator a place to jump.
The code is ``argmax`` of the first ``categories`` latent dimensions (uniform over the categories for
N(0, I) latents), so the generator still takes plain Gaussian latents and every scorer samples it unchanged.
No labels are used: the code is learned by maximising its mutual information with the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganeval.models.dcgan import DCGANDiscriminator, DCGANGenerator


class InfoDCGANGenerator(DCGANGenerator):
    """DCGAN generator whose first ``categories`` latent dimensions become a one-hot code."""

    def __init__(self, latent_dim: int = 128, channels: int = 64, categories: int = 10,
                 code_scale: float = 3.0) -> None:
        # neither changes a tensor's shape, so a checkpoint's header cannot catch a bad one: checked here, at load
        if isinstance(categories, bool) or not isinstance(categories, int) or not 1 < categories < latent_dim:
            raise ValueError(f"categories must be an integer between 2 and latent_dim - 1 (got {categories!r})")
        if (isinstance(code_scale, bool) or not isinstance(code_scale, (int, float))
                or not abs(code_scale) <= torch.finfo(torch.float32).max):
            raise ValueError(f"code_scale must be a finite float32 number (got {code_scale!r})")
        super().__init__(latent_dim, channels)
        self.categories = categories
        # The one-hot code is multiplied by code_scale so that it changes the image from the first step (the code
        # head cannot learn a code the image does not show). 3 came out of CPU screening runs; sqrt(118), the norm
        # of the continuous part, let the code swamp it and the samples collapsed to blobs (docs/results.md).
        self.code_scale = float(code_scale)

    def code(self, z: torch.Tensor) -> torch.Tensor:
        """The discrete code (class index) that latent ``z`` selects."""
        return z[:, : self.categories].argmax(dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(self.code(z), self.categories).to(z.dtype) * self.code_scale
        return super().forward(torch.cat([onehot, z[:, self.categories:]], dim=1))


class InfoDCGANDiscriminator(DCGANDiscriminator):
    """The DCGAN discriminator plus a code head ``Q`` on its last feature map."""

    def __init__(self, channels: int = 64, categories: int = 10) -> None:
        super().__init__(channels)
        c = channels
        # No spectral norm here: the code head is not part of the critic whose Lipschitz constant matters.
        self.q = nn.Sequential(nn.Linear(4 * c * 7 * 7, 128), nn.LeakyReLU(0.1, inplace=True), nn.Linear(128, categories))

    def forward_with_code(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(real/fake logit, code logits) from one pass through the shared trunk."""
        h = self.net[:-1](x)
        return self.net[-1](h).squeeze(1), self.q(h)
