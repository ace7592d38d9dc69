"""The Python API takes ``pathlib.Path`` wherever the CLI takes a path string, and writes its JSON reports with them
(a Path ``reference`` once made every report fail at ``summary.json``, after the other files were written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ganeval
from ganeval.stats import SHIPPED_DIR, dataset_images

OPTS = {"num_samples": 200, "metrics": ("mnist_fd",), "device": "cpu", "progress": False}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_score_compare_and_gate_with_path_arguments(tmp_path: Path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, images=dataset_images("mnist-test")[:200])
    np.savez(b, images=dataset_images("mnist-test")[200:400])
    ref = SHIPPED_DIR / "mnist-train_mnist.npz"
    df = ganeval.score(a, out=tmp_path / "report", reference=ref, bootstrap=0, **OPTS)
    written = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert written["reference"] == str(ref) == written["options"]["reference"]
    assert written["best"] and df.iloc[0]["status"] == "ok"
    ganeval.compare({"a": a, "b": b}, out=tmp_path / "cmp", reference=ref, bootstrap=20, **OPTS)
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["reference"] == str(ref)
    assert ganeval.gate(a, reference=ref, bootstrap=0, max_mnist_fd=100.0, **OPTS).passed


def test_a_report_that_cannot_be_written_leaves_no_file(tmp_path: Path) -> None:
    from ganeval.evaluate import score_series
    from ganeval.inputs import resolve_target
    from ganeval.options import ScoreOptions
    from ganeval.report import write_reports

    np.savez(tmp_path / "a.npz", images=dataset_images("mnist-test")[:200])
    result = score_series(resolve_target(tmp_path / "a.npz"), ScoreOptions.from_kwargs(bootstrap=0, **OPTS), None)
    result.summary["bad"] = object()  # not JSON: refused before anything is written
    with pytest.raises(TypeError):
        write_reports(result, tmp_path / "out")
    assert not (tmp_path / "out").exists()
