"""The report's "nearest training images" panel: each shown sample above its nearest training image, with the
distances and, for scale, how far held-out real images are from theirs (ganeval.nearest)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

from ganeval.report.images import BORDER, data_uri, mosaic, png_bytes

if TYPE_CHECKING:
    from ganeval.score_result import ScoreResult

COLS = 10


def paired_rows(samples: np.ndarray, neighbours: np.ndarray, cols: int = COLS) -> np.ndarray:
    """Rows of ``cols`` samples, each followed by the row of their neighbours (short rows padded grey)."""
    k, h, w = samples.shape
    rows = -(-k // cols)
    pad = np.full((rows * cols - k, h, w), BORDER, np.uint8)
    s, n = np.concatenate([samples, pad]), np.concatenate([neighbours, pad])
    return np.concatenate([part for r in range(rows) for part in (s[r * cols:(r + 1) * cols], n[r * cols:(r + 1) * cols])])


def neighbours_section(result: ScoreResult) -> str:
    """HTML for the panel; empty when the copying test did not run or the images are not comparable."""
    if not result.neighbours:
        return ""
    scale = result.neighbour_scale
    intro = ("The samples the copying test found nearest to the training set (in the MNIST classifier's features; the "
             "most copy-like of all N), each (upper row) above its nearest training image (lower row) by Euclidean distance "
             "in pixel space with pixels in [0, 1]; 0 is an exact copy.")
    if scale is not None:
        intro += (f" For scale: the held-out real images chosen the same way (nearest to the training set) lie a median "
                  f"{scale:.2f} from their nearest training image.")
    out = [f"<h3>Nearest training images</h3><p class=muted>{intro} The copying test (table) measures this on all "
           "samples.</p>"]
    for name, nb in result.neighbours.items():
        samples = nb.samples
        rows = -(-len(samples) // COLS)
        png = png_bytes(mosaic(paired_rows(samples, nb.images), rows=2 * rows, cols=COLS, scale=3))
        d = nb.distances
        copies = int((d < 1e-6).sum())
        out.append(f'<figure><img class=px src="{data_uri(png, "image/png")}" alt="nearest training images of '
                   f'{escape(name)}"><figcaption><code>{escape(name)}</code>: median distance {np.median(d):.2f}, '
                   f"smallest {d.min():.2f}, exact copies {copies} of {len(d)}</figcaption></figure>")
    return "".join(out)
