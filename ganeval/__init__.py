"""ganeval: trustworthy, fast GAN evaluation."""

from ganeval.version import __version__

__all__ = ["__version__"]
