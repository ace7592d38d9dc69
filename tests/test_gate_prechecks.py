"""``gate``: what is settled before anything is scored (the checkpoint judged, a baseline model that is one model, a
baseline report's N and reference statistics, the input hints), and a baseline report compared on the N its rows
were scored at, its reference statistics by content and its own metric's extractor. Hand-written summaries and
stand-in checkpoint files: a call that reaches scoring is caught there, nothing is scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_gate import make_row, make_summary, write_report

from ganeval.atomic import sha256_file
from ganeval.errors import GanevalError
from ganeval.gating import gate


class Scored(Exception):
    """Raised by the stand-in ``score``: the gate got past every check made before scoring."""


@pytest.fixture
def scoring(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``ganeval.evaluate.score`` replaced: records its keyword options, then raises ``Scored``."""
    calls: list[dict[str, Any]] = []

    def score(target: Any, out: Any = None, write_report: bool = False, distributed: Any = None, **options: Any) -> Any:
        calls.append(options)
        raise Scored(str(target))

    monkeypatch.setattr("ganeval.evaluate.score", score)
    return calls


def stand_in_run(folder: Path, *iterations: int) -> Path:
    folder.mkdir(parents=True)
    for it in iterations:
        (folder / f"ckpt_{it:07d}.safetensors").write_bytes(b"stand-in: never read")
    return folder


def test_checkpoint_that_matches_nothing_is_refused_before_scoring(tmp_path: Path, scoring: list, cli: Any) -> None:
    """A typo in --checkpoint was found only after every checkpoint was scored and the run's report replaced."""
    run = stand_in_run(tmp_path / "run", 200, 400)
    with pytest.raises(GanevalError, match=r"no checkpoint matches --checkpoint 'ckpt_0000800.safetensors' \(checkpoints: "
                                           r"ckpt_0000200.safetensors, ckpt_0000400.safetensors\)"):
        gate(run, max_mnist_fd=300, checkpoint="ckpt_0000800.safetensors", metrics=("mnist_fd",))
    code, out, err = cli("gate", run, "--max-mnist-fd", "300", "--checkpoint", "median", "--metrics", "mnist_fd")
    assert code == 2 and out == "" and "no checkpoint matches --checkpoint 'median'" in err, err
    assert not scoring
    with pytest.raises(Scored):  # a name that matches goes on to scoring
        gate(run, max_mnist_fd=300, checkpoint=run / "ckpt_0000200.safetensors", metrics=("mnist_fd",))


def test_an_inception_limit_on_a_named_checkpoint_the_cpu_plan_may_skip_is_refused_before_scoring(
        tmp_path: Path, scoring: list, cli: Any) -> None:
    """On a CPU, Inception metrics cover the top-k checkpoints by MNIST FD and the last: ``--checkpoint`` naming
    another one with ``--max-fid`` scored the whole run (Inception included) and then stopped, exit 2, because that
    checkpoint had no FID. Now refused first; where the plan covers it (the last, --inception-all, a top-k that takes
    every checkpoint, no MNIST FD to pick by) it goes on to scoring."""
    run = stand_in_run(tmp_path / "run", 200, 400, 600)
    mid = "ckpt_0000400.safetensors"
    args = ("gate", run, "--checkpoint", mid, "--max-fid", "30", "--metrics", "mnist_fd,fid", "--inception-top-k", "1",
            "--device", "cpu")
    code, out, err = cli(*args)
    want = (f"--checkpoint {mid}: on a CPU, fid is computed only for the top 1 checkpoints by MNIST FD and the last, "
            f"so {mid} may get none; give --inception-all")
    assert code == 2 and out == "" and want in err and err.count("\n") == 1, err
    with pytest.raises(GanevalError, match="may get none"):  # a floor limit on Inception too
        gate(run, checkpoint=mid, max_fid_over_floor=3, metrics=("mnist_fd", "fid"), inception_top_k=0, device="cpu")
    with pytest.raises(GanevalError, match="--checkpoint best: on a CPU, fid is computed only for the top 0 checkpoints"):
        gate(run, checkpoint="best", max_fid=30, metrics=("mnist_fd", "fid"), inception_top_k=0, device="cpu")
    assert not scoring
    for given in ({"checkpoint": "ckpt_0000600.safetensors"}, {"inception_all": True, "inception_top_k": None},
                  {"inception_top_k": 2}, {"metrics": ("fid",), "inception_top_k": None}, {"checkpoint": "best"},
                  {"max_fid": None, "max_mnist_fd": 30}):
        kw = {"checkpoint": mid, "max_fid": 30, "metrics": ("mnist_fd", "fid"), "inception_top_k": 1, "device": "cpu",
              **given}
        with pytest.raises(Scored):
            gate(run, **{k: v for k, v in kw.items() if v is not None})
    assert len(scoring) == 6


def test_baseline_model_folder_of_several_checkpoints_is_refused_before_scoring(tmp_path: Path, scoring: list) -> None:
    """It was scored first, then refused in compare's words (suggesting --pick, which gate does not have)."""
    cand = stand_in_run(tmp_path / "cand", 1)
    base = stand_in_run(tmp_path / "base", 1, 2, 3)
    with pytest.raises(GanevalError, match=r"--baseline .*base holds 3 checkpoints or generators; a baseline model is one: "
                                           r"name one \(e\.g\. .*ckpt_0000003\.safetensors\), or give the report folder"):
        gate(cand, baseline=base, max_regression=5, metrics=("mnist_fd",))
    assert not scoring


def test_input_hint_keywords_are_taken_as_score_takes_them(tmp_path: Path, scoring: list) -> None:
    """``score`` takes ``z_dim=``, ``output_range=``…; gate refused them as unknown score options. (A TorchScript
    file, which reads them: with ganeval checkpoints alone they are refused as read by nothing.)"""
    gen = tmp_path / "gen.pt"
    gen.write_bytes(b"stand-in: never read")
    with pytest.raises(Scored):
        gate(gen, max_mnist_fd=300, z_dim=100, output_range="0,1", z_type=None, extra={"z_type": "uniform"})
    assert scoring[-1]["extra"] == {"z_type": "uniform", "z_dim": 100, "output_range": "0,1"}
    with pytest.raises(Scored):
        gate(gen, max_mnist_fd=300, extra={"z_dim": 7}, z_dim=None)  # None: not given, extra's hint stays
    assert scoring[-1]["extra"] == {"z_dim": 7}
    with pytest.raises(GanevalError, match="--z-dim is read only by generators"):
        gate(stand_in_run(tmp_path / "run", 1), max_mnist_fd=300, z_dim=100)
    assert len(scoring) == 2


@pytest.mark.parametrize("options", [{"extra": {"zdim": 100}}, {"extra": {"z_dim": 100, "outputrange": "0,1"}}])
def test_unknown_key_in_extra_is_refused(tmp_path: Path, scoring: list, options: dict[str, Any]) -> None:
    """A typo in ``extra`` was ignored: the generator was read without the hint it was meant to get."""
    run = stand_in_run(tmp_path / "run", 1)
    with pytest.raises(GanevalError, match=r"extra: unknown input hint\(s\) '(zdim|outputrange)'; known: z_dim, "):
        gate(run, max_mnist_fd=300, **options)
    report = write_report(tmp_path / "rep", make_summary([make_row(1)]))
    with pytest.raises(GanevalError, match="unknown input hint"):  # refused for a report TARGET too, not ignored
        gate(report, max_fid=30, **options)
    assert not scoring


# -- a baseline report: N --------------------------------------------------------------------------------
def rows_at(n: int) -> Any:
    """A change to a summary: every row (best and last too) scored at ``n`` samples."""
    return lambda s: [r.update(n_samples=n) for r in (*s["rows"], s["best"], s["last"])]


def summary_with(change: Any) -> dict[str, Any]:
    s = make_summary([make_row(1000, 50.0), make_row(3000, 15.2, (14.1, 16.3))], best=1)
    change(s)
    return s


def test_report_baseline_compares_the_n_its_rows_were_scored_at(tmp_path: Path) -> None:
    """--num-samples 1000 on both, but the candidate was a set of 200 images: FD's 1/N bias, not a regression."""
    cand = write_report(tmp_path / "c", summary_with(rows_at(200)))
    base = write_report(tmp_path / "b", summary_with(lambda s: None))
    with pytest.raises(GanevalError, match=r"another N \(n_samples scored\) \(1000 in the baseline, 200 in "):
        gate(cand, baseline=base, max_regression=10)
    with pytest.raises(GanevalError, match=r"\(200 in the baseline, 1000 in "):  # and the other way round
        gate(base, baseline=cand, max_regression=10)
    old = write_report(tmp_path / "old", summary_with(lambda s: [r.pop("n_samples", None) for r in (*s["rows"], s["best"], s["last"])]))
    assert gate(old, baseline=base, max_regression=10).passed  # rows without n_samples (older reports): the N asked


def test_report_baseline_n_is_checked_before_scoring_against_what_its_rows_were_scored_at(tmp_path: Path,
                                                                                          scoring: list) -> None:
    run = stand_in_run(tmp_path / "run", 1)  # a checkpoint: scored at exactly --num-samples
    short = write_report(tmp_path / "short", summary_with(rows_at(200)))  # 1000 asked, a set of 200 scored
    with pytest.raises(GanevalError, match=r"another N \(n_samples\) \(200 in the baseline, 1000 in these options\)"):
        gate(run, baseline=short, num_samples=1000)
    assert not scoring
    with pytest.raises(Scored):  # the N it was really scored at: comparable
        gate(run, baseline=short, num_samples=200)


# -- a baseline report: reference statistics ---------------------------------------------------------------
@pytest.fixture
def myref(tmp_path: Path) -> Path:
    """A folder holding a copy of the shipped mnist-train statistics in MNIST-classifier features."""
    from ganeval.reference import reference_path

    shipped = reference_path("mnist-train", "mnist")
    folder = tmp_path / "myref"
    folder.mkdir()
    for f in (shipped, shipped.with_suffix(".json")):
        shutil.copy(f, folder / f.name)
    return folder


def on_reference(reference: str, sha: str) -> dict[str, Any]:
    """An MNIST-FD report against ``reference``, whose mnist statistics had SHA-256 ``sha``."""
    s = make_summary([make_row(1, None, None)], primary_metric="mnist_fd", reference=reference)
    s["provenance"] = {"mnist": {**s["provenance"]["mnist"], "reference_sha256": sha}}
    return s


def test_reference_spelled_another_way_is_the_same_reference(tmp_path: Path, myref: Path, scoring: list,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``myref``, ``./myref``, an absolute path or a copy of the shipped files: one set of statistics (their
    SHA-256), not refused as "another reference"."""
    monkeypatch.chdir(tmp_path)
    sha = sha256_file(next(myref.glob("*_mnist.npz")))
    base = write_report(tmp_path / "b", on_reference("myref", sha))
    for spelling in ("./myref", str(myref)):
        crit = gate(write_report(tmp_path / "c", on_reference(spelling, sha)), baseline=base, max_regression=10).criteria[0]
        assert crit.passed and crit.metric == "mnist_fd"
    other = write_report(tmp_path / "o", on_reference("./myref", "9" * 64))
    with pytest.raises(GanevalError, match=r"another mnist reference statistics \(reference_sha256\)"):
        gate(other, baseline=base, max_regression=10)
    builtin = write_report(tmp_path / "t", on_reference("mnist-test", sha))  # two built-in names are never one
    with pytest.raises(GanevalError, match=r"another reference \('mnist-train' in the baseline, 'mnist-test' in"):
        gate(builtin, baseline=write_report(tmp_path / "tr", on_reference("mnist-train", sha)), max_regression=10)
    run = stand_in_run(tmp_path / "run", 1)  # before scoring: the files the options name, by their SHA-256
    for spelling in ("./myref", str(myref), "mnist-train"):
        with pytest.raises(Scored):
            gate(run, baseline=base, reference=spelling, metrics=("mnist_fd",), num_samples=1000)
    with pytest.raises(GanevalError, match=r"another mnist reference statistics \(reference_sha256\)"):
        gate(run, baseline=base, reference="mnist-test", metrics=("mnist_fd",), num_samples=1000)
    assert len(scoring) == 3


def test_custom_fd_baseline_needs_the_custom_extractors_provenance_not_mnists(tmp_path: Path) -> None:
    """A report pair on ``custom_fd`` alone (no FID, no MNIST metric) was refused for lack of "mnist" provenance."""
    custom = {"extractor": "custom", "weights_sha256": "1" * 64, "reference": "custom-set", "reference_sha256": "2" * 64}

    def only_custom(value: float) -> dict[str, Any]:
        row = make_row(1, None, None, mnist_fd=None, custom_fd=value, custom_fd_ci_low=value - 0.1,
                       custom_fd_ci_high=value + 0.1)
        return make_summary([row], primary_metric="custom_fd", reference="refs/custom", provenance={"custom": custom})

    base = write_report(tmp_path / "b", only_custom(2.0))
    result = gate(write_report(tmp_path / "c", only_custom(3.0)), baseline=base, max_regression=10)
    crit = result.criteria[0]
    assert crit.metric == "custom_fd" and not crit.passed and crit.extra["meaningful"]
    changed = only_custom(3.0)
    changed["provenance"]["custom"] = {**custom, "weights_sha256": "3" * 64}
    with pytest.raises(GanevalError, match=r"another custom extractor weights"):
        gate(write_report(tmp_path / "w", changed), baseline=base, max_regression=10)


def test_written_reports_are_untouched_by_a_refused_gate(tmp_path: Path, scoring: list) -> None:
    """The run's own report (another N, other metrics) survives a refused --checkpoint."""
    run = stand_in_run(tmp_path / "run", 1, 2)
    write_report(run / "report", make_summary([make_row(1), make_row(2)]))
    before = (run / "report" / "summary.json").read_text()
    with pytest.raises(GanevalError, match="no checkpoint matches"):
        gate(run / "ckpt_0000001.safetensors", max_fid=30, checkpoint="ckpt_0000002.safetensors")
    assert (run / "report" / "summary.json").read_text() == before and json.loads(before)["rows"]


def test_a_folder_holding_both_a_report_and_checkpoints_is_refused(tmp_path: Path, scoring: list, cli: Any) -> None:
    """``score RUN --out RUN`` then a newer checkpoint: the gate passed on the old summary.json and never looked at the
    new file. Such a folder is refused, as target and as baseline; its summary.json, named, is still judged."""
    run = stand_in_run(tmp_path / "run", 50, 100)
    write_report(run, make_summary([make_row(50), make_row(100)]))
    (run / "ckpt_0000900.safetensors").write_bytes(b"stand-in: never read")
    code, out, err = cli("gate", run, "--max-fid", "30")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"{run}: holds both a report (summary.json) and checkpoints" in err and str(run / "summary.json") in err
    with pytest.raises(GanevalError, match="holds both a report"):
        gate(write_report(tmp_path / "rep", make_summary([make_row(100)])), max_regression=10, baseline=run)
    code, out, err = cli("gate", run / "summary.json", "--max-fid", "30")
    assert code == 0 and "gate: passed" in out, err
    own = tmp_path / "own"  # weight files of your own generator beside a report: the same
    write_report(own, make_summary([make_row(100)]))
    (own / "G_000100.pt").write_bytes(b"stand-in: never read")
    with pytest.raises(GanevalError, match="holds both a report .* \\(G_000100.pt …\\)"):
        gate(own, max_fid=30)
    fresh = stand_in_run(tmp_path / "fresh", 100)  # and gate RUN --out RUN, which would make such a folder
    code, out, err = cli("gate", fresh, "--max-mnist-fd", "30", "--metrics", "mnist_fd", "--out", fresh)
    assert code == 2 and "is the folder being judged" in err, err
    assert not scoring


def test_a_python_generator_given_to_gate_is_one_clear_error(tmp_path: Path, scoring: list) -> None:
    """gate(generator_object) raised pathlib's TypeError (expected str, bytes or os.PathLike object)."""
    from torch import nn

    with pytest.raises(GanevalError, match="gate's target must be a path .* not Linear: score a Python generator"):
        gate(nn.Linear(2, 784), max_mnist_fd=300)
    report = write_report(tmp_path / "rep", make_summary([make_row(100)]))
    with pytest.raises(GanevalError, match="gate's baseline must be a path"):
        gate(report, baseline=nn.Linear(2, 784), max_regression=5)
    assert not scoring
