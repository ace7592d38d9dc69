"""The report's per-digit table: worst digit marked, last − best row, and the real floor's per-digit row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ganeval.metrics.intra import DIGIT_COLUMNS
from ganeval.report.digits import digits_section


def _table() -> pd.DataFrame:
    rows = []
    for i, it in enumerate((1000, 2000, 3000)):
        fds = np.linspace(1.0, 2.0, 10) + i * 0.1
        rows.append({"iteration": it, "checkpoint": f"ckpt_{it}", "status": "ok", "is_best": i == 1,
                     **dict(zip(DIGIT_COLUMNS, fds, strict=True))})
    return pd.DataFrame(rows)


def test_floor_row_only_with_floor_values() -> None:
    df = _table()
    plain = digits_section(df)
    assert "class=floor" not in plain and "<i>last − best</i>" in plain
    floor = {"name": "real held-out (mnist-test)", "values": {c: 0.3 + 0.01 * d for d, c in enumerate(DIGIT_COLUMNS)}}
    page = digits_section(df, floor)
    row = page[page.index("<tr class=floor>"):]
    assert "real held-out (mnist-test), same N" in row and "0.39" in row and "<b>" not in row  # no worst mark
    assert digits_section(df, {"name": "x", "values": {"fid": 1.0}}).count("class=floor") == 0  # no mnist_intra there


def test_empty_without_intra() -> None:
    assert digits_section(pd.DataFrame({"checkpoint": ["a"], "fid": [1.0]})) == ""
