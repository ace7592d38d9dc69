"""The report's "least and most realistic samples" panel (realism score, Kynkäänniemi et al. 2019): what a
checkpoint's worst samples look like, beside its best ones, ranked by how deep inside the real manifold they lie."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

from ganeval.report.images import data_uri, mosaic, png_bytes

if TYPE_CHECKING:
    from ganeval.score_result import ScoreResult

COLS = 8
SPACE = {"mnist": "MNIST-classifier", "inception": "Inception"}


def _figure(images: np.ndarray, scores: np.ndarray, name: str, which: str) -> str:
    png = png_bytes(mosaic(images, rows=-(-len(images) // COLS), cols=COLS, scale=3))
    return (f'<figure><img class=px src="{data_uri(png, "image/png")}" alt="{which} realistic samples of {escape(name)}">'
            f"<figcaption>{which} realistic: R {scores.min():.2f} to {scores.max():.2f}</figcaption></figure>")


def realism_section(result: ScoreResult) -> str:
    """HTML for the panel; empty without a realism metric."""
    if not result.realism:
        return ""
    space = SPACE.get(next(iter(result.realism.values())).extractor, "")
    out = ["<h3>Least and most realistic samples</h3><p class=muted>Every sample ranked by its realism score R "
           f"(Kynkäänniemi et al. 2019) in {space} features: how far inside the real images' k-NN balls it lies, the "
           "larger half of the balls left out. R ≥ 1 is inside the real manifold; the least realistic samples show "
           "what goes wrong, row by row from the worst.</p>"]
    for name, ex in result.realism.items():
        out.append(f"<h4><code>{escape(name)}</code> (median R {ex.median:.2f})</h4>")
        out.append(_figure(ex.low, ex.low_scores, name, "least") + _figure(ex.high, ex.high_scores, name, "most"))
    return "".join(out)
