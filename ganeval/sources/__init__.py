"""Input kinds behind ``ganeval.inputs``: opened sample sources, generator files and stored samples."""

from ganeval.sources.base import GeneratorSamples, ImageSamples, InputHints, Samples

__all__ = ["GeneratorSamples", "ImageSamples", "InputHints", "Samples"]
