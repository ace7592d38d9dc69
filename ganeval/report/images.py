"""Sample-grid images for the HTML report: mosaics, PNG/GIF encoding and data URIs.

Everything is encoded in memory and embedded as ``data:`` URIs so the report stays one self-contained file.
The static grids are upscaled ×3 (nearest neighbour) in the PNG itself; the animation is stored at ×1 with
32 grey levels and enlarged by the browser (``image-rendering: pixelated``), which keeps a 30-frame GIF near
150 KB instead of ~800 KB at ×3.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GRID_ROWS, GRID_COLS = 3, 10
PAD = 2
BORDER = 128  # grey between digits, like ganeval.train.grid


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for embedding ``data`` in ``src`` attributes."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


#: RGB → grey for the grids: ITU-R 601 luma, what the MNIST classifier sees (its first channel alone showed green or
#: blue digits as black squares).
LUMA = np.array([0.299, 0.587, 0.114])


def _as_images(samples: np.ndarray) -> np.ndarray:
    """Any of ``(N, H, W)``, ``(N, 1|3, H, W)``, ``(N, H, W, 1|3)`` uint8-ish samples → uint8 ``(N, H, W)``; RGB as
    its luma."""
    arr = np.asarray(samples)
    if arr.ndim == 4:
        channels_first = arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3)
        arr = np.moveaxis(arr, 1, -1) if channels_first else arr
        if arr.shape[-1] == 3:
            arr = np.nan_to_num(arr.astype(np.float64)) @ LUMA
        else:
            arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"expected (N, H, W) samples, got shape {np.asarray(samples).shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).round().astype(np.uint8)
    return arr


def mosaic(samples: np.ndarray, rows: int = GRID_ROWS, cols: int = GRID_COLS, scale: int = 2) -> np.ndarray:
    """The first ``rows × cols`` samples as one uint8 mosaic, upscaled ×``scale`` (nearest neighbour).

    Missing samples (fewer than ``rows × cols``) are left as the grey background instead of failing.
    """
    imgs = _as_images(samples)
    _, h, w = imgs.shape
    grid = np.full((rows * (h + PAD) + PAD, cols * (w + PAD) + PAD), BORDER, np.uint8)
    for i in range(min(rows * cols, len(imgs))):
        r, c = divmod(i, cols)
        y, x = PAD + r * (h + PAD), PAD + c * (w + PAD)
        grid[y:y + h, x:x + w] = imgs[i]
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1) if scale > 1 else grid


def png_bytes(image: np.ndarray) -> bytes:
    """A grayscale uint8 array as optimised PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _label_strip(text: str, width: int, height: int = 14) -> np.ndarray:
    strip = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default()
    max_chars = max(4, width // 6)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    try:
        draw.text((3, 1), text, fill=0, font=font)
    except UnicodeEncodeError:  # bitmap default fonts of old Pillow versions are latin-1 only
        draw.text((3, 1), text.encode("ascii", "replace").decode("ascii"), fill=0, font=font)
    return np.asarray(strip, dtype=np.uint8)


def quantize(image: np.ndarray, levels: int) -> np.ndarray:
    """Round a uint8 image to ``levels`` evenly spaced grey levels (smaller GIFs, no visible change at 32)."""
    if levels >= 256:
        return image
    step = 255 / (levels - 1)
    return (np.round(image / step) * step).round().astype(np.uint8)


def animated_gif(grids: Sequence[tuple[str, np.ndarray]], scale: int = 1, duration_ms: int = 600, levels: int = 32) -> bytes:
    """An animated GIF of the sample mosaics in the given order, each frame labelled with its name.

    One frame per grid (the label keeps consecutive frames distinct, so Pillow never merges them);
    the last frame is held longer so the end of training is easy to see.
    """
    if not grids:
        raise ValueError("no grids to animate")
    frames = []
    for label, samples in grids:
        tile = quantize(mosaic(samples, scale=scale), levels)
        frames.append(Image.fromarray(np.vstack([_label_strip(label, tile.shape[1]), tile])))
    size = max(f.size[0] for f in frames), max(f.size[1] for f in frames)
    frames = [f if f.size == size else _paste(f, size) for f in frames]
    durations = [duration_ms] * (len(frames) - 1) + [duration_ms * 3]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=False, disposal=1)
    return buf.getvalue()


def _paste(frame: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("L", size, BORDER)
    canvas.paste(frame, (0, 0))
    return canvas
