"""Metrics that compare with no reference (Inception Scores, modes, path lengths): a feature space whose requested
metrics are only these reads no reference statistics, a run of them alone names none (and refuses a --reference it
would not read), and a gate compares such a run with a report that read some."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_bank_checkpoint

import ganeval
from ganeval.errors import GanevalError

NET_PY = """
import torch
from torch import nn


class Pooled(nn.Module):
    '''A small random conv net: 32-d features.'''

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())

    def forward(self, x):
        return self.conv(x).mean((2, 3))
"""

COMMON = {"num_samples": 200, "device": "cpu", "progress": False}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_path_lengths_read_no_reference_statistics(tmp_path: Path, mnist_dir: Path) -> None:
    """A path length is a distance between the generator's own samples' features, yet the statistics were read: a
    custom network's custom_ppl was refused until statistics were made with it (as custom_is was)."""
    (tmp_path / "nets.py").write_text(NET_PY)
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    # the default reference, mnist-train, has no statistics made with this network: reading them would fail
    df = ganeval.score(ckpt, metrics=("custom_ppl", "mnist_ppl"), primary="custom_ppl", bootstrap=0,
                       feature_network=f"{tmp_path / 'nets.py'}:Pooled", out=tmp_path / "a", **COMMON)
    row, prov = df.iloc[0], df.attrs["summary"]["provenance"]
    assert row["status"] == "ok" and np.isfinite(row["custom_ppl"]) and np.isfinite(row["mnist_ppl"])
    assert "reference" not in prov["custom"] and "reference" not in prov["mnist"]


@pytest.mark.parametrize("baseline_metrics, candidate_metrics", [
    (("mnist_fd", "mnist_is"), ("mnist_is",)),  # the baseline read the MNIST statistics, the candidate none
    (("mnist_is",), ("mnist_fd", "mnist_is")),  # and the other way round
])
def test_gate_compares_a_run_that_read_no_reference(tmp_path: Path, mnist_dir: Path, cli, baseline_metrics: tuple[str, ...],
                                                    candidate_metrics: tuple[str, ...]) -> None:
    """An IS-only run names no reference in its provenance; the gate read that as another reference dataset (None)
    and refused a baseline that had the same checkpoint's IS beside an FD."""
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    base = tmp_path / "base"
    ganeval.score(ckpt, metrics=baseline_metrics, primary="mnist_is", bootstrap=10, out=base, **COMMON)
    code, out, err = cli("gate", ckpt, "--metrics", *candidate_metrics, "--primary", "mnist_is", "--num-samples", "200",
                         "--bootstrap", "10", "--device", "cpu", "--no-progress", "--baseline", base,
                         "--max-regression", "10", "--out", tmp_path / "cand", "--json")
    assert code == 0, err
    verdict = json.loads(out)
    assert verdict["passed"] and any("mnist_is" in json.dumps(c) for c in verdict["criteria"]), verdict


def test_the_fid_at_small_n_note_only_where_fid_was_asked(tmp_path: Path, mnist_dir: Path) -> None:
    """"N=… is below the Inception feature dimension: FID is unreliable" was printed for any Inception metric, an IS
    or a KID alone included, where no FID was computed."""
    from ganeval.data import load_mnist

    np.savez(tmp_path / "s.npz", images=load_mnist("test")[0][:64])
    for metrics, primary, said in ((("kid",), "kid_mean", False), (("fid",), None, True)):
        notes = ganeval.score(tmp_path / "s.npz", metrics=metrics, primary=primary, num_samples=64, bootstrap=0,
                              device="cpu", progress=False).attrs["summary"]["notes"]
        assert any("below the Inception feature dimension" in n for n in notes) == said, (metrics, notes)


IS_ONLY = ("--metrics", "mnist_is", "--primary", "mnist_is", "--num-samples", 200, "--bootstrap", 10, "--device", "cpu",
           "--no-progress")


@pytest.mark.parametrize("command", ["score", "gate", "compare"])
def test_a_reference_no_asked_metric_reads_is_refused(tmp_path: Path, mnist_dir: Path, cli, command: str) -> None:
    """--reference with reference-free metrics alone was taken and ignored (exit 0), and summary.json, compare.json and
    the report named it as the run's reference, a path that does not exist too: one line, exit 2, nothing written, as
    for --copy-train or --feature-network; the API too."""
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    other = write_bank_checkpoint(tmp_path / "run2", 1000, noise=0.1)
    argv = {"score": ("score", ckpt), "gate": ("gate", ckpt, "--min-mnist-is", 1), "compare": ("compare", ckpt, other)}
    want = "--reference is read only by --real-floor and the metrics that compare with reference statistics"
    for reference in ("mnist-test", tmp_path / "nowhere"):
        code, out, err = cli(*argv[command], *IS_ONLY, "--reference", reference, "--out", tmp_path / "out")
        assert code == 2 and out == "" and want in err and "--metrics (mnist_is) has none" in err, err
        assert err.strip().count("\n") == 0 and not (tmp_path / "out").exists()
    api = {"score": lambda **o: ganeval.score(ckpt, **o), "gate": lambda **o: ganeval.gate(ckpt, min_mnist_is=1, **o),
           "compare": lambda **o: ganeval.compare([ckpt, other], **o)}[command]
    with pytest.raises(GanevalError, match=want):
        api(metrics=("mnist_is",), primary="mnist_is", reference="mnist-test", out=tmp_path / "out", **COMMON)


def test_a_run_that_reads_no_reference_names_none(tmp_path: Path, mnist_dir: Path, cli) -> None:
    """The default reference is never refused, and a run that read none says so (summary.json, compare.json, the
    report: null, not "mnist-train"); --real-floor reads the reference (its held-out set is the other split), so
    there it is taken and named."""
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    other = write_bank_checkpoint(tmp_path / "run2", 1000, noise=0.1)
    code, _, err = cli("score", ckpt, *IS_ONLY, "--out", tmp_path / "a")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert code == 0 and summary["reference"] is None and summary["options"]["reference"] == "mnist-train", err
    provenance = (tmp_path / "a" / "report.html").read_text().split("<h3>Options</h3>")[0]  # the options: as given
    assert "<tr><th>reference</th>" not in provenance and "mnist-train" not in provenance
    code, _, err = cli("compare", ckpt, other, *IS_ONLY, "--out", tmp_path / "c")
    assert code == 0 and json.loads((tmp_path / "c" / "compare.json").read_text())["reference"] is None, err
    code, _, err = cli("score", ckpt, *IS_ONLY, "--reference", "mnist-test", "--real-floor", "--out", tmp_path / "f")
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert code == 0 and summary["reference"] == "mnist-test", err
    assert summary["real_floor"]["status"] == "ok" and "mnist-train" in summary["real_floor"]["name"]
    comp = ganeval.compare([ckpt, other], metrics=("mnist_is",), primary="mnist_is", reference="mnist-test",
                           real_floor="auto", **COMMON)  # the floor reads it; picking a folder's run would not
    assert comp.summary["reference"] == "mnist-test" and comp.summary["real_floor"]["status"] == "ok"


@pytest.mark.parametrize("baseline_metrics", [("mnist_fd", "mnist_is"), ("mnist_is",)])
def test_gate_on_a_reference_free_metric_takes_a_baseline_of_other_statistics(tmp_path: Path, mnist_dir: Path, cli,
                                                                              baseline_metrics: tuple[str, ...]) -> None:
    """A gate compared on mnist_is refused a baseline made with another reference ('another reference (mnist-test in
    the baseline, mnist-train in these options)'), although mnist_is depends on none; where the compared metric reads
    the reference (mnist_fd), another reference is still refused."""
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    base = tmp_path / "base"
    if "mnist_fd" in baseline_metrics:
        ganeval.score(ckpt, metrics=baseline_metrics, primary="mnist_is", reference="mnist-test", bootstrap=10, out=base,
                      **COMMON)
    else:  # mnist_is alone with --reference mnist-test is refused now: a report an older ganeval made so
        ganeval.score(ckpt, metrics=baseline_metrics, primary="mnist_is", bootstrap=10, out=base, **COMMON)
        summary = json.loads((base / "summary.json").read_text())
        (base / "summary.json").write_text(json.dumps({**summary, "reference": "mnist-test"}))
    for flags in (("--metrics", "mnist_is"), ("--metrics", "mnist_fd", "mnist_is", "--reference", "mnist-train")):
        code, out, err = cli("gate", ckpt, *flags, "--primary", "mnist_is", "--num-samples", 200, "--bootstrap", 10,
                             "--device", "cpu", "--no-progress", "--baseline", base, "--max-regression", 10,
                             "--out", tmp_path / "cand", "--json")
        assert code == 0, err
        assert json.loads(out)["criteria"][0]["metric"] == "mnist_is"
    ganeval.score(ckpt, metrics=("mnist_fd",), reference="mnist-test", bootstrap=10, out=tmp_path / "fd", **COMMON)
    code, out, err = cli("gate", ckpt, "--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 10, "--device", "cpu",
                         "--no-progress", "--baseline", tmp_path / "fd", "--max-regression", 10, "--out", tmp_path / "cand")
    assert code == 2 and "another reference ('mnist-test' in the baseline, 'mnist-train' in these options)" in err, err
