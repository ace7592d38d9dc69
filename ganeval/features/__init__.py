"""Feature extractors, registered by name: ``inception`` (FID/IS network; ``inception-spatial``: its mixed_6/conv
features for sFID; ``-clean``: clean-fid's resize), ``mnist`` (domain classifier) and ``custom`` (your own feature
network, ``--feature-network MODULE:NAME``)."""

from ganeval.features import custom as _custom  # noqa: F401  (registers "custom")
from ganeval.features import inception as _inception  # noqa: F401  (registers "inception")
from ganeval.features import mnist_classifier as _mnist_classifier  # noqa: F401
from ganeval.features.base import EXTRACTORS, FeatureExtractor, get_extractor, register_extractor, resolve_device

__all__ = ["EXTRACTORS", "FeatureExtractor", "get_extractor", "register_extractor", "resolve_device"]
