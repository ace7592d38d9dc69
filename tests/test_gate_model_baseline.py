"""``ganeval gate --baseline MODEL``: the judged checkpoint re-scored beside a baseline model, regression judged on
the paired interval of the difference (a baseline report can only use non-overlapping intervals)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic import write_bank_checkpoint

from ganeval.gating import gate

OPTS = ["--metrics", "mnist_fd", "--num-samples", "400", "--bootstrap", "60", "--device", "cpu", "--no-progress"]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Clean digits, and the same digits with a little (0.05) and more (0.3) noise."""
    root = tmp_path_factory.mktemp("models")
    return {"good": write_bank_checkpoint(root / "good", 1000), "slight": write_bank_checkpoint(root / "slight", 1000, noise=0.05),
            "bad": write_bank_checkpoint(root / "bad", 1000, noise=0.3)}


def test_small_real_regression_fails_on_the_paired_test_only(models: dict[str, Path], tmp_path: Path, cli) -> None:
    """0.05 noise: MNIST FD ≈ 30 % worse; the two checkpoints' own intervals overlap, the paired one excludes 0."""
    code, out, err = cli("gate", models["slight"], "--baseline", models["good"], "--max-regression", "10", "--json",
                         "--out", tmp_path / "cand", *OPTS)
    assert code == 1, err
    crit = json.loads(out)["criteria"][0]
    assert crit["name"] == "max_regression" and not crit["passed"] and crit["meaningful"]
    assert crit["test"].startswith("paired permutation test of the difference") and crit["p_value"] < 0.05
    assert crit["relabellings"] == 1000  # sequential stop (default 10): no re-labelling as extreme, so all drawn
    lo, hi = crit["difference_ci"]
    assert 0 < lo <= crit["difference"] <= hi and crit["regression_pct"] > 10
    assert "re-scored together, N = 400" in crit["message"] and "permutation test p = " in crit["message"]
    # The stored-report test on the same two checkpoints cannot see it: their intervals overlap.
    code, _, err = cli("score", models["good"], "--out", tmp_path / "base_report", *OPTS)
    assert code == 0, err
    code, out, err = cli("gate", tmp_path / "cand", "--baseline", tmp_path / "base_report", "--max-regression", "10", "--json")
    crit = json.loads(out)["criteria"][0]
    assert code == 0 and crit["passed"] and crit["test"] == "non-overlapping bootstrap intervals" and crit["regression_pct"] > 10


def test_improvement_and_same_model_pass(models: dict[str, Path], tmp_path: Path) -> None:
    better = gate(models["good"], baseline=models["bad"], out=tmp_path / "a", metrics=("mnist_fd",), num_samples=400,
                  bootstrap=60, device="cpu", progress=False)
    c = better.criteria[0]
    assert better.passed and c.value < c.extra["baseline"] and "better" in c.message
    same = gate(models["good"], baseline=models["good"], out=tmp_path / "b", metrics=("mnist_fd",), num_samples=400,
                bootstrap=60, device="cpu", progress=False)
    assert same.passed and same.criteria[0].extra["difference"] == 0 and "no change" in same.criteria[0].message


def test_within_allowance_passes_even_when_beyond_noise(models: dict[str, Path], tmp_path: Path) -> None:
    res = gate(models["slight"], baseline=models["good"], max_regression=500, out=tmp_path / "a", metrics=("mnist_fd",),
               num_samples=400, bootstrap=60, device="cpu", progress=False)
    assert res.passed and res.criteria[0].extra["meaningful"]


def test_existing_report_is_rescored_with_its_own_options(models: dict[str, Path], tmp_path: Path, cli) -> None:
    code, _, err = cli("score", models["bad"], "--out", tmp_path / "rep", *OPTS)
    assert code == 0, err
    code, out, err = cli("gate", tmp_path / "rep", "--baseline", models["good"], "--json")
    crit = json.loads(out)["criteria"][0]
    assert code == 1 and not crit["passed"] and "N = 400" in crit["message"]


def test_run_folder_with_a_report_is_still_a_report_baseline(models: dict[str, Path], tmp_path: Path, cli) -> None:
    run = models["good"].parent
    code, _, err = cli("score", run, *OPTS)
    assert code == 0, err
    code, out, err = cli("gate", models["bad"], "--baseline", run, "--out", tmp_path / "c", "--json", *OPTS)
    assert json.loads(out)["criteria"][0]["test"] == "non-overlapping bootstrap intervals"


def test_unscorable_baseline_model_is_exit_2(models: dict[str, Path], tmp_path: Path, cli) -> None:
    broken = tmp_path / "b" / "ckpt_0001000.safetensors"
    broken.parent.mkdir()
    broken.write_bytes(b"junk")
    code, out, err = cli("gate", models["good"], "--baseline", broken, "--out", tmp_path / "c", *OPTS)
    assert code == 2 and "could not be scored" in err and str(broken) in err and err.count("\n") == 1
