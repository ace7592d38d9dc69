"""Sample grids: a fixed set of latents rendered as a PNG (3 rows × 10 digits, like the seed's figures)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganeval.atomic import atomic_path

GRID_ROWS, GRID_COLS = 3, 10


def images_to_grid(images: torch.Tensor | np.ndarray, rows: int = GRID_ROWS, cols: int = GRID_COLS, pad: int = 2,
                   scale: int = 2) -> np.ndarray:
    """``(N, 1, H, W)`` or ``(N, H, W)`` images in [-1, 1] → one uint8 ``(rows·(H+pad)+pad, ...)`` mosaic, upscaled."""
    arr = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    if arr.ndim == 4:
        arr = arr[:, 0]
    n, h, w = arr.shape
    if n < rows * cols:
        raise ValueError(f"need {rows * cols} images for a {rows}×{cols} grid, got {n}")
    arr = np.nan_to_num(arr, nan=-1.0)  # a diverged run's NaN pixels black (a cast of NaN is undefined), ±inf clipped
    pix = np.clip(np.rint((arr + 1.0) * 127.5), 0, 255).astype(np.uint8)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 128, np.uint8)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = pix[i]
    return np.kron(grid, np.ones((scale, scale), np.uint8)) if scale > 1 else grid


def save_grid(images: torch.Tensor | np.ndarray, path: str | os.PathLike[str], **kwargs: int) -> Path:
    """Write :func:`images_to_grid` of ``images`` as a grayscale PNG, atomically."""
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(images_to_grid(images, **kwargs)).save(tmp, format="PNG")
    return path


@torch.no_grad()
def sample_grid(generator: nn.Module, latents: torch.Tensor, path: str | os.PathLike[str]) -> Path:
    """Render ``generator(latents)`` in eval mode (restoring its mode) and save the grid PNG."""
    was_training = generator.training
    generator.eval()
    try:
        device = next(generator.parameters()).device
        images = generator(latents.to(device))
    finally:
        generator.train(was_training)
    return save_grid(images, path)
