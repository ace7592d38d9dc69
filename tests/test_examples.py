"""examples/own_trainer.py: a trainer that knows nothing of ganeval, scored and watched through --generator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own_trainer.py"


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _trainer():
    spec = importlib.util.spec_from_file_location("own_trainer_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_trainer_is_scored_and_watched(tmp_path: Path, cli, mnist_dir: Path) -> None:
    out = tmp_path / "own"
    assert _trainer().main(["--out", str(out), "--iterations", "300", "--save-every", "100", "--batch-size", "32"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{n}_{i:06d}.pt" for n in "DG" for i in (100, 200, 300)]
    gen = f"{EXAMPLE}:Generator"
    common = ["--metrics", "mnist_fd", "--num-samples", "300", "--bootstrap", "20", "--device", "cpu"]
    code, _, err = cli("score", *sorted(out.glob("G_*.pt")), "--generator", gen, "--no-progress", "--out", tmp_path / "r",
                       *common)
    assert code == 0, err
    rows = (tmp_path / "r" / "scores.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["100", "200", "300"]
    code, stdout, err = cli("watch", out, "--generator", gen, "--pattern", "G_*.pt", "--interval", "0.05", "--settle", "0",
                            "--idle-timeout", "5", "--until", "300", *common[2:])
    assert code == 0, err
    assert json.loads((out / "watch.json").read_text())["ended"] == "until"
    assert [line.split(":")[0] for line in stdout.splitlines()[:3]] == ["iteration 100", "iteration 200", "iteration 300"]


def test_own_trainer_stops_on_the_stop_file(tmp_path: Path, mnist_dir: Path) -> None:
    (tmp_path / "STOP").write_text("{}")
    out = tmp_path / "own"
    assert _trainer().main(["--out", str(out), "--iterations", "300", "--save-every", "100", "--stop-file",
                            str(tmp_path / "STOP")]) == 0
    assert sorted(p.name for p in out.glob("G_*.pt")) == ["G_000100.pt"]
