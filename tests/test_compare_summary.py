"""What compare.json records about the run: the N each run was scored at, the primary metric the verdict is on,
and the arm names of positional targets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from synthetic import bank_images, write_bank_checkpoint

from ganeval.comparing import compare, normalise_arms

QUICK = {"num_samples": 500, "bootstrap": 0, "device": "cpu", "progress": False, "permutations": 0}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture
def sets(tmp_path: Path) -> tuple[Path, Path]:
    """Two sample sets of real digits: 300 and 500 images."""
    imgs = ((bank_images(n=800).numpy()[:, 0] + 1) * 127.5).round().astype(np.uint8)
    np.savez(tmp_path / "a.npz", images=imgs[:300])
    np.savez(tmp_path / "b.npz", images=imgs[300:])
    return tmp_path / "a.npz", tmp_path / "b.npz"


def test_summary_and_page_state_the_n_scored(sets: tuple[Path, Path], tmp_path: Path) -> None:
    """compare.html's provenance said N = --num-samples (500) where its header and table said 300–500."""
    comp = compare(list(sets), metrics=["mnist_fd"], out=tmp_path / "o", **QUICK)
    assert comp.summary["n_scored"] == [300, 500] and comp.summary["n_samples"] == 500
    page = (tmp_path / "o" / "compare.html").read_text()
    assert "300–500 (500 asked for)" in page and "N = 300–500 per run" in page


def test_primary_metric_is_what_the_verdict_is_on(sets: tuple[Path, Path]) -> None:
    """--primary mnist_is without a Fréchet distance recorded primary_metric "mnist_fd", which was not computed."""
    comp = compare(list(sets), metrics=["mnist_is"], primary="mnist_is", **QUICK)
    assert comp.summary["primary_metric"] == "mnist_is"
    (line,) = comp.summary["verdict_lines"]
    assert line.startswith("b vs a: mnist_is ") and "no interval of the difference" in line
    assert compare(list(sets), metrics=["mnist_fd", "mnist_is"], primary="mnist_is", **QUICK).summary["primary_metric"] == "mnist_fd"


def test_dot_is_named_after_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A positional target "." was the arm ''."""
    write_bank_checkpoint(tmp_path / "gen_a", 1000)
    other = write_bank_checkpoint(tmp_path / "gen_b", 1000, noise=0.3)
    monkeypatch.chdir(tmp_path / "gen_a")
    assert list(normalise_arms([".", other])) == ["gen_a", other.stem]
    assert list(normalise_arms([Path("."), Path(os.pardir) / "gen_b"])) == ["gen_a", "gen_b"]
