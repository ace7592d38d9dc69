"""clean-fid's "clean" resize (Parmar et al. 2022): each channel resized to 299×299 by PIL's bicubic filter on float32
values, without quantizing, clipped to 0..255. It is the resize behind clean-fid's published numbers, and, unlike the
TF-1.x bilinear resize (no antialiasing), it does not alias when images are made smaller."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

CLEAN_RESIZE_MODE = "clean-fid clean: PIL bicubic on float32, per channel, to 299x299, clipped to 0..255"


def clean_resize(images: torch.Tensor, size: int = 299) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` → float32 ``(B, C, size, size)`` in 0..255, as clean-fid's ``make_resizer("PIL", False,
    "bicubic", (size, size))`` resizes each image (a grayscale image: its one channel, which clean-fid would tile)."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError(f"clean_resize expects uint8 (B, C, H, W), got {images.dtype} {tuple(images.shape)}")
    src = images.cpu().numpy().astype(np.float32)
    out = np.empty((*src.shape[:2], size, size), dtype=np.float32)
    for i in range(src.shape[0]):
        for c in range(src.shape[1]):
            plane = Image.fromarray(src[i, c]).resize((size, size), resample=Image.Resampling.BICUBIC)
            out[i, c] = np.asarray(plane)
    return torch.from_numpy(np.clip(out, 0, 255, out=out))
