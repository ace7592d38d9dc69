"""``ganeval gate --baseline MODEL``: the judged checkpoint re-scored beside a baseline model, regression judged on
the paired interval of the difference (a baseline report can only use non-overlapping intervals)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_bank_checkpoint

from ganeval.errors import GanevalError
from ganeval.gating import gate

OPTS = ["--metrics", "mnist_fd", "--num-samples", "400", "--bootstrap", "60", "--device", "cpu", "--no-progress"]


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


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


class _Sigmoid(torch.nn.Module):
    """A generator whose images are in [0, 1] (``--output-range 0,1``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(64, 784)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.lin(z)).view(-1, 1, 28, 28)


def _torchscript(path: Path, seed: int, z_dim: int | None = 64) -> Path:
    torch.manual_seed(seed)
    extra = {"ganeval.json": json.dumps({"z_dim": z_dim})} if z_dim else {}
    torch.jit.save(torch.jit.script(_Sigmoid()), str(path), _extra_files=extra)
    return path


QUICK = {"metrics": ("mnist_fd",), "num_samples": 200, "bootstrap": 20, "device": "cpu", "progress": False}


def test_baseline_model_is_rescored_with_the_gates_input_hints(tmp_path: Path, cli) -> None:
    """Both sides are re-scored as the judged checkpoint was: ``output_range`` in ``extra`` (as the CLI and a report's
    options pass it) was dropped, so the criterion judged images decoded as [-1, 1] (104.7 beside the report's 371.3)."""
    a, b = _torchscript(tmp_path / "a.pt", 0), _torchscript(tmp_path / "b.pt", 1)
    res = gate(a, baseline=b, max_regression=5, extra={"output_range": "0,1"}, out=tmp_path / "o", **QUICK)
    crit = res.criteria[0]
    assert crit.value == pytest.approx(res.row["mnist_fd"], rel=1e-9) and crit.extra["difference"] != 0
    # a generator that does not store its latent size: --z-dim reaches the re-scoring (it was exit 2 after scoring)
    lin = _torchscript(tmp_path / "lin.pt", 2, z_dim=None)
    code, out, err = cli("gate", lin, "--z-dim", "64", "--output-range", "0,1", "--baseline", b, "--max-regression",
                         "1000", "--json", "--out", tmp_path / "lin", "--metrics", "mnist_fd", "--num-samples", "200",
                         "--bootstrap", "20", "--device", "cpu", "--no-progress")
    assert code == 0, err
    summary = json.loads((tmp_path / "lin" / "summary.json").read_text())
    assert json.loads(out)["criteria"][0]["value"] == pytest.approx(summary["rows"][0]["mnist_fd"], rel=1e-9)
    same = gate(lin, baseline=b, z_dim=64, output_range="0,1", max_regression=1000, out=tmp_path / "api", **QUICK)
    assert same.passed and same.criteria[0].value == pytest.approx(summary["rows"][0]["mnist_fd"], rel=1e-9)


def test_sample_sets_are_compared_at_one_n_and_not_called_paired(tmp_path: Path) -> None:
    """A set of 100 images against one of 300 at --num-samples 300 "regressed" by FD's 1/N bias alone, in a message
    that said N = 300 and a paired interval (stored samples share no latents: independent resamples)."""
    from synthetic import bank_images

    imgs = ((bank_images(n=700).numpy()[:, 0] + 1) * 127.5).round().astype(np.uint8)
    for name, part in (("a", imgs[:300]), ("b", imgs[300:600]), ("short", imgs[600:])):
        np.savez(tmp_path / f"{name}.npz", images=part)
    opts = {**QUICK, "num_samples": 300}
    with pytest.raises(GanevalError, match=r"--baseline .*a\.npz is not comparable: scored at N = 300, the judged "
                                           r"checkpoint short\.npz at N = 100"):
        gate(tmp_path / "short.npz", baseline=tmp_path / "a.npz", max_regression=10, out=tmp_path / "o1", **opts)
    crit = gate(tmp_path / "b.npz", baseline=tmp_path / "a.npz", max_regression=10, out=tmp_path / "o2", **opts).criteria[0]
    assert "N = 300" in crit.message and "paired" not in crit.message and "95% CI of the difference" in crit.message
    assert crit.extra["test"].startswith("permutation test of the difference") and "independent resamples" in crit.extra["test"]


def test_a_primary_of_the_candidates_run_is_not_asked_of_the_baseline_fd(models: dict[str, Path], tmp_path: Path,
                                                                       cli) -> None:
    """``gate --metrics mnist_fd,mnist_is --primary mnist_is --baseline MODEL``: the baseline model is re-scored on
    MNIST FD alone, and the --primary was passed along: refused there ("not a column of the metrics asked for"),
    exit 2 after the candidate had been scored and its report written."""
    code, out, err = cli("gate", models["slight"], "--baseline", models["good"], "--max-regression", "500",
                         "--primary", "mnist_is", "--out", tmp_path / "cand", *OPTS[:1], "mnist_fd,mnist_is", *OPTS[2:])
    assert code == 0 and "PASS max_regression: mnist_fd" in out, err
    summary = json.loads((tmp_path / "cand" / "summary.json").read_text())
    assert summary["primary_metric"] == "mnist_is"  # the candidate's own ranking keeps it
    # a report TARGET made with --primary, against a baseline model: the same
    res = gate(tmp_path / "cand", baseline=models["good"], max_regression=500, out=tmp_path / "b")
    assert res.passed and res.criteria[0].metric == "mnist_fd"


def test_baseline_model_on_fd_alone_drops_the_inputs_only_other_metrics_read(models: dict[str, Path], tmp_path: Path) -> None:
    """The baseline model is re-scored on one FD with the gate's own options: a --copy-train given for the copying
    test was passed along, and refused there as read by no metric, so no gate with a copying test could take a
    baseline model. So are the copying test's settings (--copy-cells, --copying-threshold), and an Inception metric's
    --resize, now that those are refused where unread too."""
    from ganeval.data import load_mnist
    from ganeval.options import without_unread

    images = load_mnist("test")[0][:600]
    np.savez(tmp_path / "train.npz", images=images[:300])
    np.savez(tmp_path / "heldout.npz", images=images[300:])
    res = gate(models["slight"], baseline=models["good"], max_regression=500, out=tmp_path / "a", copy_train=tmp_path / "train.npz",
               copy_heldout=tmp_path / "heldout.npz", copy_cells=10, copying_threshold=-2.0,
               **{**QUICK, "metrics": ("mnist_fd", "copying")})
    assert res.passed and res.criteria[0].metric == "mnist_fd" and res.criteria[0].extra["difference"] > 0
    assert res.summary["options"]["copy_cells"] == 10 and res.summary["options"]["copying_threshold"] == -2.0
    given = {"resize": "clean", "copy_cells": 10, "copying_threshold": -2.0, "seed": 3}
    assert without_unread(given, ("mnist_fd",)) == {"seed": 3}  # a baseline compared on MNIST FD alone
    assert without_unread(given, ("fid",)) == {"resize": "clean", "seed": 3}  # on FID: the resize is read
