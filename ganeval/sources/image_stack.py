"""A set of same-size images decoded one at a time into one preallocated uint8 ``(N, C, H, W)`` array.

Reading a folder or zip so holds one copy of its images, plus the one being decoded: a list of decoded arrays, their
``np.stack`` and its channels-first copy were three copies at once for RGB (two for grayscale), and the memory check
(:mod:`ganeval.sources.sizing`) counts what this holds.
"""

from __future__ import annotations

import numpy as np
import torch

from ganeval.errors import GanevalError


class ImageStack:
    """Up to ``capacity`` images of one size, in the order added; grayscale (C = 1) until the first RGB image, which
    turns the images so far into 3 equal channels (a set mixing both is RGB). The array is numpy's, not
    ``torch.empty``'s, so tracemalloc sees it (tests/test_stored_samples.py); ``where`` names the set in errors."""

    def __init__(self, capacity: int, where: str) -> None:
        self.capacity, self.where = capacity, where
        self.names: list[str] = []
        self._buf: np.ndarray | None = None

    def add(self, image: np.ndarray, name: str) -> None:
        """Append a uint8 ``(H, W)`` or ``(H, W, 3)`` image; one of another size than the first is refused, naming both."""
        if self._buf is None:
            self._buf = np.empty((self.capacity, 3 if image.ndim == 3 else 1, *image.shape[:2]), np.uint8)
        first, i = self._buf.shape[2:], len(self.names)
        if image.shape[:2] != first:
            raise GanevalError(f"{self.where}: images of different sizes ({first[0]}×{first[1]} in {self.names[0]}, "
                               f"{image.shape[0]}×{image.shape[1]} in {name}); resize them to one size")
        if image.ndim == 3 and self._buf.shape[1] == 1:  # the first RGB image after gray ones: held as RGB from now
            rgb = np.empty((self.capacity, 3, *first), np.uint8)
            rgb[:i] = self._buf[:i]  # each gray image repeated over the 3 channels
            self._buf = rgb
        self._buf[i] = np.moveaxis(image, 2, 0) if image.ndim == 3 else image
        self.names.append(name)

    def images(self) -> torch.Tensor:
        """The images added as uint8 ``(n, C, H, W)``, sharing the array (the stack is left empty). Fewer than
        allocated for (unreadable files left out): the array is shrunk in place, by ``realloc``, so the unused tail
        is handed back without a copy of the images kept."""
        if self._buf is None:
            raise ValueError(f"{self.where}: no images added")
        buf, self._buf = self._buf, None
        if len(self.names) < len(buf):
            buf.resize((len(self.names), *buf.shape[1:]), refcheck=False)  # safe: no view of buf outlives add()
        return torch.from_numpy(buf)
