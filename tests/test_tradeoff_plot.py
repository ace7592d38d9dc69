"""The report's fidelity/diversity plot: a panel per computed pair or banded quantity, none for one checkpoint."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_report_html import make_result

from ganeval.report.html import render_html
from ganeval.report.tradeoff_plot import tradeoff_plot


def _series(n: int = 6, **cols: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({"iteration": np.arange(1, n + 1) * 1000, "checkpoint": [f"ckpt_{i}" for i in range(n)], **cols})
    df["is_best"] = np.arange(n) == 2
    return df


def test_panels_follow_the_computed_columns() -> None:
    n = 6
    collapse = _series(n, mnist_precision=np.full(n, 0.9), mnist_recall=np.linspace(0.8, 0.2, n),
                       mnist_kid_mean=np.linspace(0.01, 0.03, n), mnist_kid_std=np.full(n, 0.002),
                       modes_covered=[10, 10, 10, 8, 5, 3], modes_ci_low=[10, 10, 9, 7, 4, 2], modes_ci_high=[10] * 6)
    res = tradeoff_plot(collapse, floor={"mnist_recall": 0.88, "mnist_precision": 0.89})
    assert res.panels == ["mnist_precision/mnist_recall", "mnist_kid_mean", "modes_covered"]
    one = tradeoff_plot(_series(n, precision=np.full(n, 0.5), recall=np.full(n, 0.4)))
    assert one.panels == ["precision/recall"]
    h3, h1 = (Image.open(io.BytesIO(r.png)).size[1] for r in (res, one))
    assert h3 > 2.5 * h1 * 0.9  # one panel's height each


def test_nothing_to_draw() -> None:
    assert tradeoff_plot(_series(4, fid=np.arange(4.0))).png is None  # distances only: the other plot has them
    assert tradeoff_plot(_series(4, precision=np.full(4, np.nan), recall=np.full(4, np.nan))).png is None
    single = tradeoff_plot(_series(1, precision=[0.5], recall=[0.4]))
    assert single.png is None and single.panels == []


def test_report_section_only_when_drawn() -> None:
    result = make_result()
    assert "Fidelity and diversity over training" in render_html(result)
    for col in ("precision", "recall", "kid_mean", "kid_std", "mnist_is", "mnist_is_std", "modes_covered"):
        result.table[col] = np.nan
    assert "Fidelity and diversity over training" not in render_html(result)


def test_digits_panel_keeps_the_floor_and_all_ten_in_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every checkpoint collapsed (1–2 digits): the panel still spans 0–10, so the real floor's level (10) is drawn
    inside the axes, not above them."""
    import ganeval.report.tradeoff_plot as tp

    seen: dict[str, list] = {}
    real_finish = tp.finish_figure

    def spy(fig: object, *args: object) -> bytes:
        seen["axes"] = fig.axes
        return real_finish(fig, *args)

    monkeypatch.setattr(tp, "finish_figure", spy)
    df = _series(3, modes_covered=pd.array([1, 1, 2], dtype="Int64"), modes_ci_low=[1.0, 1.0, 2.0],
                 modes_ci_high=[1.0, 1.0, 2.0])
    for floor in ({"modes_covered": 10}, None):
        assert tp.tradeoff_plot(df, floor=floor).panels == ["modes_covered"]
        ax = seen["axes"][0]
        lo, hi = ax.get_ylim()
        assert lo == 0 and hi == 10.5
        levels = [ln.get_ydata()[0] for ln in ax.get_lines() if "real held-out" in str(ln.get_label())]
        assert levels == ([10] if floor else [])
        assert all(lo <= v <= hi for v in levels)
