"""Bundled GAN models, registered by name."""

from ganeval.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganeval.models.dcgan_info import InfoDCGANDiscriminator, InfoDCGANGenerator
from ganeval.models.mlp import MLPDiscriminator, MLPGenerator
from ganeval.models.registry import (
    CONFIG_ERRORS,
    MODELS,
    ModelSpec,
    build_discriminator,
    build_generator,
    build_meta,
    get_model,
    register_model,
)

# check=False: their meta-device builds are tested (tests/test_checkpoints.py), not repeated at every import
register_model(ModelSpec("mlp", MLPGenerator, MLPDiscriminator, {"latent_dim": 100}), check=False)
register_model(ModelSpec("dcgan", DCGANGenerator, DCGANDiscriminator, {"latent_dim": 128, "channels": 64}, uses_ema=True),
               check=False)
register_model(ModelSpec("dcgan_info", InfoDCGANGenerator, InfoDCGANDiscriminator,
                         {"latent_dim": 128, "channels": 64, "categories": 10, "code_scale": 3.0}, uses_ema=True),
               check=False)

__all__ = [
    "CONFIG_ERRORS", "MODELS", "ModelSpec", "build_discriminator", "build_generator", "build_meta", "get_model",
    "register_model",
    "MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator", "InfoDCGANGenerator",
    "InfoDCGANDiscriminator",
]
