"""benchmarks/bench_vs_cleanfid.py times what it says: ganeval's timed ``score`` gets an explicit weights file, so no
round converts the Inception weights in its fresh cache (clean-fid's side is faked here: only ganeval's is checked)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
CHECKPOINT = Path(__file__).resolve().parents[1] / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"


def test_timed_score_never_converts_the_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Each round's fresh GANEVAL_CACHE_DIR and no weights file made every timed score() convert fid-helper's
    TorchScript into an 87 MB weights file again (0.6-2.5 s of a ~23 s round, counted against ganeval)."""
    pytest.importorskip("cleanfid")
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no torch-fidelity file: the offline copy
    monkeypatch.delitem(sys.modules, "bench_vs_cleanfid", raising=False)
    import bench_vs_cleanfid

    import ganeval.evaluate

    calls: list[dict[str, Any]] = []
    real_score = ganeval.evaluate.score

    def spy(*args: Any, **kwargs: Any) -> Any:
        df = real_score(*args, **kwargs)
        round_cache = Path(os.environ["GANEVAL_CACHE_DIR"])
        calls.append({"weights": kwargs.get("inception_weights"), "converted": (round_cache / "weights").exists()})
        return df

    monkeypatch.setattr(ganeval.evaluate, "score", spy)
    monkeypatch.setattr(bench_vs_cleanfid, "run_cleanfid", lambda *a: {"fid": 1.0, "n": 8})
    code = bench_vs_cleanfid.main(["--checkpoint", str(CHECKPOINT), "--num-samples", "8", "--rounds", "1",
                                   "--cleanfid-workers", "0", "--json", str(tmp_path / "out.json")])
    assert code == 0
    assert len(calls) == 1 and calls[0]["weights"] and not calls[0]["converted"], calls
    results = json.loads((tmp_path / "out.json").read_text())
    assert "not the one-off weights conversion" in results["timed"] and results["ganeval_weights"]
    assert "timed:" in capsys.readouterr().out
