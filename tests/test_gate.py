"""``ganeval gate``: limits, baseline regression test, refusals, report errors, checkpoint choice and the
JSON / JUnit / GitHub step-summary outputs, on hand-written ``summary.json`` files (no scoring, no network)."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ganeval.errors import GanevalError
from ganeval.gating import gate, load_summary

INC_SHA, MNIST_SHA, REF_INC, REF_MNIST = "a" * 64, "b" * 64, "c" * 64, "d" * 64


def make_row(it: int, fid: Any = 20.4, ci: tuple[Any, Any] | None = (19.3, 21.6), **kw: Any) -> dict[str, Any]:
    """One checkpoint row as ``row_dict`` writes it."""
    row = {
        "iteration": it, "checkpoint": f"ckpt_{it:07d}.safetensors", "path": f"/runs/a/ckpt_{it:07d}.safetensors",
        "n_samples": 1000, "fid": fid, "fid_ci_low": ci[0] if ci else None, "fid_ci_high": ci[1] if ci else None,
        "is_mean": 2.0, "is_std": 0.05, "kid_mean": 0.012, "kid_std": 0.001, "precision": 0.7, "recall": 0.5,
        "density": 0.95, "coverage": 0.8,
        "mnist_is": 9.1, "mnist_is_std": 0.1, "mnist_fd": 3.0, "mnist_fd_ci_low": 2.8, "mnist_fd_ci_high": 3.2,
        "modes_covered": 10, "class_kl": 0.01, "mnist_confidence": 0.95, "rank": None, "is_best": False,
        "mode_collapse": False, "status": "ok", "error": None, "seconds": 1.0,
    }
    row.update(kw)
    return row


def make_summary(rows: list[dict[str, Any]], best: int = 0, **kw: Any) -> dict[str, Any]:
    """A dict shaped like ``build_summary``'s output (rows[best] is the best)."""
    rows = copy.deepcopy(rows)
    for i, r in enumerate(rows):
        r["is_best"], r["rank"] = i == best, 1 if i == best else i + 2
    summary = {
        "schema": 1, "ganeval_version": "0.1.0", "date": "2024-01-01T00:00:00Z", "primary_metric": "fid",
        "best": rows[best], "last": next((r for r in reversed(rows) if r.get("status") != "error"), None),  # newest scored
        "late_collapse": {"flag": False}, "mode_collapse": {"flag": False},
        "verdict": "Keep it.", "n_checkpoints": len(rows), "n_errors": 0, "n_samples": 1000, "seed": 0,
        "reference": "mnist-train", "precision": "fp32",
        "bootstrap": {"replicates": 100, "level": 0.95, "method": "basic bootstrap, paired sample indices"},
        "provenance": {
            "inception": {"extractor": "inception", "weights_sha256": INC_SHA, "precision": "fp32",
                          "reference": "mnist-train", "reference_sha256": REF_INC, "reference_n": 60000},
            "mnist": {"extractor": "mnist", "weights_sha256": MNIST_SHA, "precision": "fp32",
                      "reference": "mnist-train", "reference_sha256": REF_MNIST, "reference_n": 60000},
        },
        "options": {}, "notes": [], "seconds": 1.0, "world_size": 1, "rows": rows,
    }
    summary.update(kw)
    return summary


def write_report(folder: Path, summary: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    (folder / "scores.csv").write_text("iteration\n")
    return folder


@pytest.fixture
def report(tmp_path: Path) -> Path:
    """Three checkpoints: best is the second (fid 15), the last has fid 20.4 [19.3, 21.6]."""
    rows = [make_row(1000, 40.0, (38.0, 42.0)), make_row(2000, 15.0, (14.0, 16.0)), make_row(3000)]
    return write_report(tmp_path / "cand", make_summary(rows, best=1))


# -- limits -------------------------------------------------------------------------------------------
def test_pass_api_and_cli(report: Path, cli: Any) -> None:
    result = gate(report, max_fid=25, min_mnist_is=9, max_kid=0.02, min_modes=10, min_is=1.5, max_mnist_fd=5)
    assert result.passed and result.exit_code == 0 and len(result.criteria) == 6
    assert result.row["checkpoint"] == "ckpt_0003000.safetensors" and not result.scored
    code, out, _ = cli("gate", report / "summary.json", "--max-fid", "25", "--min-modes", "10")
    assert code == 0 and "PASS max_fid" in out and "gate: passed" in out


def test_package_level_gate_stays_callable(report: Path) -> None:
    import ganeval

    assert ganeval.gate(report, max_fid=30).passed and ganeval.gate(report, max_fid=10).exit_code == 1


def test_fail_message_has_value_limit_and_ci(report: Path, cli: Any) -> None:
    code, out, _ = cli("gate", report, "--max-fid", "18.5", "--min-mnist-is", "9.5", "--min-modes", "10")
    assert code == 1
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2
    fid_line = next(line for line in fails if "max_fid" in line)
    assert "fid = 20.40" in fid_line and "limit 18.50" in fid_line and "95% CI [19.30, 21.60]" in fid_line
    is_line = next(line for line in fails if "min_mnist_is" in line)
    assert "mnist_is = 9.1" in is_line and "minimum 9.5" in is_line and "± 0.1 std" in is_line
    assert "PASS min_modes" in out and "FAILED (2 of 3" in out


def test_fid_exactly_at_limit_passes_and_min_modes_fails(tmp_path: Path) -> None:
    rep = write_report(tmp_path / "r", make_summary([make_row(1, 20.0, modes_covered=7.0)]))
    result = gate(rep, max_fid=20, min_modes=8)
    assert [c.passed for c in result.criteria] == [True, False] and result.exit_code == 1


def test_min_coverage(tmp_path: Path, cli: Any) -> None:
    rep = write_report(tmp_path / "r", make_summary([make_row(1, coverage=0.62)]))
    assert gate(rep, min_coverage=0.6).passed
    code, out, _ = cli("gate", rep, "--min-coverage", "0.7")
    assert code == 1 and "coverage = 0.62 is below the minimum 0.7 (--min-coverage)" in out
    old = write_report(tmp_path / "old", make_summary([make_row(1, coverage=None, density=None)]))  # a report from before dc
    code, _, err = cli("gate", old, "--min-coverage", "0.5")
    assert code == 2 and "coverage was not computed" in err


def test_nan_samples_row_fails_max_fid(tmp_path: Path, cli: Any) -> None:
    bad = make_row(2, "inf", None, status="nan_samples", error="1000 of 1000 samples contain NaN/Inf", mnist_is=None)
    rep = write_report(tmp_path / "r", make_summary([make_row(1), bad]))
    code, out, _ = cli("gate", rep, "--max-fid", "100")
    assert code == 1 and "fid = inf" in out and "nan_samples" in out
    result = gate(rep, min_mnist_is=5)  # an unmeasurable metric of a broken generator fails, it is not "not computed"
    assert result.exit_code == 1 and result.criteria[0].value is None


def test_metric_not_computed_is_exit_2(tmp_path: Path, cli: Any) -> None:
    rep = write_report(tmp_path / "r", make_summary([make_row(1, None, None), make_row(2, None, None, kid_mean=None)]))
    code, _, err = cli("gate", rep, "--max-fid", "30")
    assert code == 2 and "fid was not computed" in err and "ckpt_0000002" in err
    code, _, err = cli("gate", rep, "--max-kid", "0.1", "--min-modes", "1")
    assert code == 2 and "kid_mean" in err


def test_not_computed_on_judged_row_hints_inception_plan(report: Path, tmp_path: Path) -> None:
    s = json.loads((report / "summary.json").read_text())
    s["rows"][0]["fid"] = s["last"]["fid"] = s["rows"][-1]["fid"] = None
    rep = write_report(tmp_path / "r", s)
    with pytest.raises(GanevalError, match="--inception-all"):
        gate(rep, max_fid=30)


def test_usage_errors_exit_2(report: Path, tmp_path: Path, cli: Any) -> None:
    code, _, err = cli("gate", report)
    assert code == 2 and "no criteria" in err
    code, _, err = cli("gate", report, "--max-regression", "5")
    assert code == 2 and "--baseline" in err
    code, _, err = cli("gate", tmp_path / "missing", "--max-fid", "10")
    assert code == 2 and "no such file" in err
    code, _, _ = cli("gate", report, "--max-fid", "ten")  # argparse
    assert code == 2


def test_error_row_is_exit_2_naming_it(tmp_path: Path, cli: Any) -> None:
    broken = make_row(2, None, None, status="error", error="ckpt_0000002.safetensors: not a safetensors file")
    rep = write_report(tmp_path / "r", make_summary([make_row(1), broken]))
    code, _, err = cli("gate", rep, "--max-fid", "30")
    assert code == 2 and "ckpt_0000002.safetensors" in err and "could not be scored" in err
    # best was picked among the others: said, and failed (it passed silently), as `compare --pick best` exits 1
    code, out, _ = cli("gate", rep, "--max-fid", "30", "--checkpoint", "best")
    assert code == 1 and "PASS max_fid" in out, out
    assert ("FAIL scored: 1 of 2 checkpoint(s) could not be scored, so the best was picked among the others: "
            "ckpt_0000002.safetensors: not a safetensors file") in out
    result = gate(rep, max_fid=30, checkpoint="ckpt_0000001.safetensors")  # named: the other file is a note
    assert result.passed and result.notes == [f"1 other checkpoint(s) of {rep / 'summary.json'} could not be scored "
                                              "(not judged here): ckpt_0000002.safetensors: not a safetensors file"]
    fine = write_report(tmp_path / "fine", make_summary([make_row(1), make_row(2)]))
    assert [c.name for c in gate(fine, max_fid=30, checkpoint="best").criteria] == ["max_fid"]  # no error row: no such line


def test_an_unscored_older_checkpoint_fails_the_last_too(tmp_path: Path, cli: Any) -> None:
    """`--checkpoint last` on a run whose older file could not be scored: the run is not whole (score exits 1)."""
    broken = make_row(1, None, None, status="error", error="ckpt_0000001.safetensors: corrupt or truncated checkpoint")
    rep = write_report(tmp_path / "r", make_summary([broken, make_row(2)], best=1))
    code, out, _ = cli("gate", rep, "--max-fid", "30", "--json")
    verdict = json.loads(out)
    assert code == 1 and not verdict["passed"] and verdict["checkpoint"]["name"] == "ckpt_0000002.safetensors"
    failed = [c for c in verdict["criteria"] if not c["passed"]]
    assert [(c["name"], c["value"], c["limit"]) for c in failed] == [("scored", 1.0, 0.0)]
    assert "so the run is not whole: ckpt_0000001.safetensors: corrupt or truncated checkpoint" in failed[0]["message"]


def test_unscorable_newest_checkpoint_is_exit_2_when_scored_here(tmp_path: Path, cli: Any) -> None:
    """A truncated newest file: `--checkpoint last` judges it (exit 2 naming it), not the newest one that scored."""
    from synthetic import write_bank_checkpoint

    for it in (1000, 2000):
        write_bank_checkpoint(tmp_path / "run", it, noise=0.3)
    newest = tmp_path / "run" / "ckpt_0003000.safetensors"
    newest.write_bytes((tmp_path / "run" / "ckpt_0002000.safetensors").read_bytes()[:5000])
    args = ["--metrics", "mnist_fd", "--max-mnist-fd", "1000", "--num-samples", "200", "--bootstrap", "0", "--device", "cpu"]
    code, out, err = cli("gate", tmp_path / "run", *args)
    assert code == 2 and "ckpt_0003000.safetensors" in err and "could not be scored" in err, (out, err)
    code, out, _ = cli("gate", tmp_path / "run" / "report", "--max-mnist-fd", "1000", "--checkpoint", "best")
    assert code == 1 and "PASS max_mnist_fd" in out and "FAIL scored: 1 of 3 checkpoint(s)" in out, out
    assert cli("gate", tmp_path / "run" / "report", "--max-mnist-fd", "1000", "--checkpoint", "ckpt_0002000.safetensors")[0] == 0


def test_missing_metric_checked_before_scoring(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ckpt_0000001.safetensors").write_bytes(b"not really")
    code, _, err = cli("gate", tmp_path / "run", "--max-fid", "10", "--metrics", "mnist_fd")
    assert code == 2 and "'fid' metric" in err
    code, _, err = cli("gate", tmp_path / "run", "--min-coverage", "0.5", "--metrics", "fid", "prc")
    assert code == 2 and "'dc' metric" in err


# -- malformed reports --------------------------------------------------------------------------------
@pytest.mark.parametrize("content, problem", [
    ("", "empty file"),
    ('{"schema": 1, "primary_metric": "fid", "rows": [{"checkpoint": "a", "fid": 2', "malformed JSON"),
    ("[1, 2, 3]", "not a ganeval summary"),
    ('{"schema": 1, "primary_metric": "fid", "rows": []}', "non-empty list"),
    ('{"schema": 1, "primary_metric": "fid", "rows": [{"checkpoint": "a", "fid": "bad"}]}', "is not a number"),
])
def test_malformed_report_exit_2(tmp_path: Path, cli: Any, content: str, problem: str) -> None:
    path = tmp_path / "summary.json"
    path.write_text(content)
    code, out, err = cli("gate", path, "--max-fid", "30")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and str(path) in err and problem in err


def test_truncated_real_shaped_report(report: Path, tmp_path: Path, cli: Any) -> None:
    text = (report / "summary.json").read_text()
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "summary.json").write_text(text[: len(text) // 2])
    code, _, err = cli("gate", tmp_path / "t", "--max-fid", "30")
    assert code == 2 and "truncated" in err


def test_report_folder_without_summary_exit_2(report: Path, cli: Any) -> None:
    (report / "summary.json").unlink()
    code, _, err = cli("gate", report, "--max-fid", "30")
    assert code == 2 and "without summary.json" in err


# -- which checkpoint ---------------------------------------------------------------------------------
def test_checkpoint_best_last_path(report: Path, cli: Any) -> None:
    assert gate(report, max_fid=18).exit_code == 1  # last: 20
    best = gate(report, max_fid=18, checkpoint="best")
    assert best.exit_code == 0 and best.row["iteration"] == 2000
    by_name = gate(report, max_fid=18, checkpoint="ckpt_0001000.safetensors")
    assert by_name.exit_code == 1 and by_name.row["iteration"] == 1000
    assert gate(report, max_fid=18, checkpoint="/runs/a/ckpt_0002000.safetensors").row["iteration"] == 2000
    assert gate(report, max_fid=18, checkpoint="elsewhere/ckpt_0002000.safetensors").row["iteration"] == 2000
    code, _, err = cli("gate", report, "--max-fid", "18", "--checkpoint", "ckpt_0009999.safetensors")
    assert code == 2 and "no checkpoint" in err and "ckpt_0001000.safetensors" in err


# -- baseline -----------------------------------------------------------------------------------------
def baseline_report(tmp_path: Path, fid: float = 15.2, ci: tuple[Any, Any] | None = (14.1, 16.3), **kw: Any) -> Path:
    return write_report(tmp_path / "main", make_summary([make_row(1000, 50.0), make_row(3000, fid, ci)], best=1, **kw))


def test_baseline_regression_fails(report: Path, tmp_path: Path, cli: Any) -> None:
    base = baseline_report(tmp_path)  # last 15.2 [14.1, 16.3]; candidate last 20.4 [19.3, 21.6]: +34%, disjoint
    code, out, _ = cli("gate", report, "--baseline", base / "summary.json", "--max-regression", "10")
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("FAIL max_regression"))
    assert "fid = 20.40 (95% CI [19.30, 21.60]) vs baseline 15.20 (95% CI [14.10, 16.30])" in line
    assert "34.21% worse" in line and "allowed regression 10%" in line and "do not overlap" in line
    result = gate(report, baseline=base, max_regression=40)
    assert result.passed  # +34% is within 40%


def test_baseline_overlapping_intervals_pass(report: Path, tmp_path: Path) -> None:
    base = baseline_report(tmp_path, 18.0, (16.0, 19.5))  # candidate 20.4 [19.3, 21.6]: +13% but overlapping
    result = gate(report, baseline=base, max_regression=5)
    c = result.criteria[0]
    assert result.passed and c.extra["meaningful"] is False and c.extra["regression_pct"] == pytest.approx(100 * 2.4 / 18)
    assert "not statistically meaningful" in c.message


def test_baseline_improvement_and_within_tolerance(report: Path, tmp_path: Path) -> None:
    assert gate(report, baseline=baseline_report(tmp_path, 25.0, (24.0, 26.0))).passed
    s = make_summary([make_row(3000, 19.5, (18.8, 19.25))])
    base = write_report(tmp_path / "near", s)  # candidate 20.4 is 4.6% worse with disjoint intervals
    assert gate(report, baseline=base, max_regression=5).passed
    assert not gate(report, baseline=base).passed  # default tolerance 0%


def test_baseline_without_intervals_uses_point_estimates(report: Path, tmp_path: Path) -> None:
    base = baseline_report(tmp_path, 15.0, None)
    result = gate(report, baseline=base, max_regression=10)
    assert not result.passed and any("point estimates only" in n for n in result.notes)
    assert result.criteria[0].extra["test"].startswith("point estimates")


def test_a_negative_baseline_puts_the_limit_on_the_worse_side(tmp_path: Path) -> None:
    """KID's unbiased estimate can be below 0. The limit printed and in --json was baseline × (1 + allowance), which
    for -0.006591 and 60 % is -0.01055: a value on the better side, while the check itself used |baseline|."""
    from ganeval.gate_baseline import regression_limit

    kid = {"fid": None, "fid_ci_low": None, "fid_ci_high": None}
    cand = write_report(tmp_path / "c", make_summary([make_row(1, **kid, kid_mean=-0.003178)], primary_metric="kid_mean"))
    base = write_report(tmp_path / "b", make_summary([make_row(1, **kid, kid_mean=-0.006591)], primary_metric="kid_mean"))
    ok, bad = gate(cand, baseline=base, max_regression=60), gate(cand, baseline=base, max_regression=40)
    assert ok.passed and not bad.passed  # 51.8 % worse, judged on point estimates
    for res, allowed in ((ok, 60), (bad, 40)):
        c = res.criteria[0]
        assert c.metric == "kid_mean" and c.limit == pytest.approx(-0.006591 + 0.006591 * allowed / 100)
        assert (c.value <= c.limit) == res.passed  # the limit is the worst value allowed, as for a positive baseline
    assert regression_limit(-2.0, 50, higher_better=True) == -3.0 and regression_limit(2.0, 50, higher_better=True) == 1.0
    assert regression_limit(2.0, 50, higher_better=False) == 3.0


def test_baseline_falls_back_to_primary_metric(tmp_path: Path) -> None:
    cand = write_report(tmp_path / "c", make_summary([make_row(1, None, None, mnist_fd=4.0, mnist_fd_ci_low=3.9,
                                                                mnist_fd_ci_high=4.1)], primary_metric="mnist_fd"))
    base = write_report(tmp_path / "b", make_summary([make_row(1, None, None)], primary_metric="mnist_fd"))
    result = gate(cand, baseline=base, max_regression=10)
    assert result.criteria[0].metric == "mnist_fd" and not result.passed


@pytest.mark.parametrize("change, named", [
    (lambda s: s["provenance"]["inception"].update(weights_sha256="e" * 64), ("e" * 64, INC_SHA)),
    (lambda s: [r.update(n_samples=5000) for r in (*s["rows"], s["best"], s["last"])], ("5000", "1000")),  # N scored
    (lambda s: s.update(reference="mnist-test"), ("mnist-test", "mnist-train")),
    (lambda s: s["provenance"]["inception"].update(reference_sha256="f" * 64), ("f" * 64, REF_INC)),
    (lambda s: s["provenance"]["mnist"].update(extractor="lenet"), ("lenet", "'mnist'")),
    (lambda s: s["provenance"]["inception"].update(resize="clean-fid clean"), ("resize", "clean-fid clean")),
    (lambda s: s.setdefault("bootstrap", {}).update(level=0.8), ("interval level (--ci)", "0.8", "0.95")),
])
def test_baseline_refused_when_not_comparable(report: Path, tmp_path: Path, cli: Any, change: Any, named: tuple) -> None:
    s = json.loads(baseline_report(tmp_path).joinpath("summary.json").read_text())
    change(s)
    base = write_report(tmp_path / "other", s)
    code, out, err = cli("gate", report, "--baseline", base, "--max-fid", "100")
    assert code == 2 and out == "" and "not comparable" in err
    assert all(v in err for v in named)


def test_baseline_made_with_the_whole_weights_file_identity_is_compared(report: Path, tmp_path: Path, cli: Any) -> None:
    """A baseline report made before the logits layer left the Inception identity, with a full weights file, carries
    that file's whole SHA-256: it was refused as "another extractor" against reports made now with the same file,
    which record that identity as ``weights_whole_sha256``. Other weights are still refused."""
    whole = "c" * 64
    s = json.loads(baseline_report(tmp_path).joinpath("summary.json").read_text())
    s["provenance"]["inception"]["weights_sha256"] = whole
    base = write_report(tmp_path / "old", s)
    code, _, err = cli("gate", report, "--baseline", base, "--max-regression", "10")
    assert code == 2 and "weights_sha256" in err  # this candidate's weights file is not that one
    cand = json.loads((report / "summary.json").read_text())
    cand["provenance"]["inception"]["weights_whole_sha256"] = whole
    write_report(report, cand)
    code, out, err = cli("gate", report, "--baseline", base, "--max-regression", "10")
    assert code == 1 and "FAIL max_regression" in out, err  # compared: +34%, intervals disjoint
    cand["provenance"]["inception"]["weights_whole_sha256"] = "d" * 64
    write_report(report, cand)
    assert cli("gate", report, "--baseline", base, "--max-regression", "10")[0] == 2


def test_baseline_n_checked_before_scoring(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("scored although the baseline cannot be compared")

    monkeypatch.setattr("ganeval.evaluate.score", never)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ckpt_0000001.safetensors").write_bytes(b"stand-in")
    code, _, err = cli("gate", tmp_path / "run", "--baseline", baseline_report(tmp_path), "--num-samples", "2000")
    assert code == 2 and "n_samples" in err and "2000" in err and "1000" in err
    code, _, err = cli("gate", tmp_path / "run", "--baseline", baseline_report(tmp_path), "--num-samples", "1000", "--ci", "0.9")
    assert code == 2 and "interval level (--ci)" in err and "0.9" in err and "0.95" in err


def test_baseline_missing_is_exit_2(report: Path, tmp_path: Path, cli: Any) -> None:
    code, _, err = cli("gate", report, "--baseline", tmp_path / "nope")
    assert code == 2 and "baseline" in err


# -- outputs ------------------------------------------------------------------------------------------
def test_json_output(report: Path, tmp_path: Path, cli: Any) -> None:
    code, out, err = cli("gate", report, "--max-fid", "18", "--min-modes", "10", "--json",
                         "--baseline", baseline_report(tmp_path), "--max-regression", "50")
    verdict = json.loads(out)
    assert code == 1 and verdict["exit_code"] == 1 and verdict["passed"] is False
    assert verdict["checkpoint"]["name"] == "ckpt_0003000.safetensors" and verdict["checkpoint"]["selector"] == "last"
    by_name = {c["name"]: c for c in verdict["criteria"]}
    assert set(by_name) == {"max_fid", "min_modes", "max_regression"}
    assert by_name["max_fid"] == {**by_name["max_fid"], "metric": "fid", "value": 20.4, "limit": 18.0, "ci": [19.3, 21.6],
                                  "passed": False}
    assert by_name["min_modes"]["passed"] and by_name["min_modes"]["ci"] is None
    assert by_name["max_regression"]["passed"] and by_name["max_regression"]["baseline"] == 15.2
    assert "FAIL max_fid" in err  # the lines go to stderr with --json


def test_json_output_on_input_error(tmp_path: Path, cli: Any) -> None:
    code, out, _ = cli("gate", tmp_path / "missing", "--max-fid", "1", "--json")
    verdict = json.loads(out)
    assert code == 2 and verdict["exit_code"] == 2 and "no such file" in verdict["error"]


def test_junit_xml(report: Path, tmp_path: Path, cli: Any) -> None:
    junit = tmp_path / "out" / "gate.xml"
    code, _, _ = cli("gate", report, "--max-fid", "18", "--min-modes", "10", "--max-kid", "0.001", "--junit", junit)
    assert code == 1
    root = ET.parse(junit).getroot()
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert [s.get("name") for s in suites] == ["ganeval-gate"]
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == ["max_fid", "max_kid", "min_modes"]
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 2 == int(suites[0].get("failures"))
    assert "fid = 20.40" in failed[0].find("failure").get("message")
    assert not list(junit.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_junit_on_input_error(tmp_path: Path, cli: Any) -> None:
    junit = tmp_path / "gate.xml"
    assert cli("gate", tmp_path / "missing", "--max-fid", "1", "--junit", junit)[0] == 2
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.find("testcase/error") is not None


def test_github_step_summary_appended(report: Path, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    step = tmp_path / "step_summary.md"
    step.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    assert cli("gate", report, "--max-fid", "18", "--min-modes", "10")[0] == 1
    text = step.read_text()
    assert text.startswith("# earlier step\n") and "| criterion |" in text and "FAILED" in text
    assert "| max_fid | fid | 20.40 | 18 | [19.30, 21.60] | **FAIL** |" in text
    assert "| min_modes | modes_covered | 10 | 10 | – | pass |" in text


def test_scoring_options_ignored_for_report(report: Path, cli: Any) -> None:
    code, out, _ = cli("gate", report, "--max-fid", "30", "--num-samples", "50")
    assert code == 0 and "scoring options ignored" in out


def test_load_summary_reads_report_subfolder(report: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write_report(run / "report", json.loads((report / "summary.json").read_text()))
    summary, path = load_summary(run, "baseline")
    assert path == run / "report" / "summary.json" and summary["n_samples"] == 1000


def test_scoring_passes_options_through(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    run = tmp_path / "run"
    run.mkdir()
    (run / "ckpt_0001000.safetensors").write_bytes(b"stand-in")
    calls: list[dict[str, Any]] = []

    def fake_score(target: Any, out: Any = None, write_report: bool = False, distributed: Any = None, **options: Any) -> Any:
        calls.append({"target": Path(target), "out": out, "write_report": write_report, "options": options})
        summary = make_summary([make_row(1000, 25.5, (24.0, 27.0))])
        summary["report"] = {"json": str(Path(out or run / "report") / "summary.json")}
        df = pd.DataFrame(summary["rows"])
        df.attrs["summary"] = summary
        return df

    monkeypatch.setattr("ganeval.evaluate.score", fake_score)
    code, out, _ = cli("gate", run, "--max-fid", "30", "--num-samples", "200", "--metrics", "fid", "mnist_fd",
                       "--seed", "3", "--no-progress")
    assert code == 0 and calls[-1]["target"] == run and calls[-1]["out"] is None and calls[-1]["write_report"]
    assert calls[-1]["options"] == {"num_samples": 200, "metrics": ["fid", "mnist_fd"], "seed": 3, "progress": False}
    assert f"from {run / 'report' / 'summary.json'}" in out
    code, out, _ = cli("gate", run / "ckpt_0001000.safetensors", "--max-fid", "25", "--out", tmp_path / "rep", "--json")
    assert code == 1 and calls[-1]["out"] == tmp_path / "rep" and calls[-1]["options"] == {}
    assert json.loads(out)["scored"] is True


# -- end to end (needs the shipped MNIST classifier) --------------------------------------------------
def _classifier_ready() -> bool:
    from ganeval.features.mnist_classifier import SHIPPED_WEIGHTS

    return SHIPPED_WEIGHTS.exists()


@pytest.mark.skipif(not _classifier_ready(), reason="the shipped MNIST classifier weights are not built yet")
def test_end_to_end_scores_a_tiny_checkpoint(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ganeval.models
    from ganeval.checkpoints import save_checkpoint

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    save_checkpoint(run / "ckpt_0001000.safetensors", ganeval.models.build_generator("mlp"),
                    {"model": "mlp", "config": {"latent_dim": 100}, "latent_dim": 100, "iteration": 1000})
    args = ["gate", run, "--metrics", "mnist_is", "mnist_fd", "modes", "--num-samples", "200", "--device", "cpu",
            "--no-progress"]
    code, out, err = cli(*args, "--min-modes", "1")
    assert code == 0, out + err
    assert (run / "report" / "summary.json").is_file()
    code, out, err = cli(*args, "--min-mnist-is", "11", "--json")
    assert code == 1, out + err
    assert json.loads(out)["criteria"][0]["name"] == "min_mnist_is"


def test_precision_recall_limits_in_both_feature_spaces(tmp_path: Path, cli: Any) -> None:
    row = make_row(1, precision=0.71, recall=0.52, mnist_precision=0.9, mnist_recall=0.4, mnist_coverage=0.35,
                   mnist_kid_mean=0.004, mnist_kid_std=0.001)
    rep = write_report(tmp_path / "r", make_summary([row]))
    assert gate(rep, min_precision=0.7, min_recall=0.5, min_mnist_precision=0.85, max_mnist_kid=0.005).passed
    code, out, _ = cli("gate", rep, "--min-mnist-recall", "0.5", "--min-mnist-coverage", "0.3", "--min-recall", "0.6")
    assert code == 1 and "mnist_recall = 0.4 is below the minimum 0.5 (--min-mnist-recall)" in out
    assert "recall = 0.52 is below the minimum 0.6 (--min-recall)" in out
    code, _, err = cli("gate", tmp_path / "r", "--max-mnist-kid", "0.001")
    assert code == 1
    old = write_report(tmp_path / "old", make_summary([make_row(1)]))  # no MNIST kNN columns
    code, _, err = cli("gate", old, "--min-mnist-precision", "0.5")
    assert code == 2 and "mnist_precision was not computed" in err


def test_mnist_knn_limits_score_what_they_need(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthetic import write_bank_checkpoint

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    write_bank_checkpoint(tmp_path / "run", 1000, digits=(3,))  # one digit: realistic, not diverse
    args = ("gate", tmp_path / "run", "--num-samples", "300", "--bootstrap", "0", "--device", "cpu", "--no-progress")
    code, _, err = cli(*args, "--min-mnist-coverage", "0.5", "--metrics", "mnist_fd", "mnist_prc")
    assert code == 2 and "'mnist_dc' metric" in err
    code, out, err = cli(*args, "--metrics", "mnist_fd", "mnist_prc", "mnist_dc", "--min-mnist-precision", "0.5",
                         "--min-mnist-coverage", "0.5")
    assert code == 1, err
    lines = out.splitlines()
    assert any("mnist_precision" in line and "PASS" in line.upper() for line in lines), out
    assert any("mnist_coverage" in line and "below the minimum 0.5" in line for line in lines), out


def test_limit_over_the_real_floor(tmp_path: Path, cli: Any) -> None:
    floor = {"name": "real held-out (mnist-test)", "n": 1000, "status": "ok", "values": {"fid": 17.0, "mnist_fd": 0.4}}
    rep = write_report(tmp_path / "r", make_summary([make_row(1, 20.4)], real_floor=floor))
    result = gate(rep, max_fid_over_floor=3.5, max_mnist_fd_over_floor=2.6)
    assert result.passed and result.criteria[0].value == pytest.approx(3.4)
    assert result.criteria[1].value == pytest.approx(3.0 - 0.4)
    code, out, _ = cli("gate", rep, "--max-fid-over-floor", "3")
    assert code == 1 and "fid − floor = 3.4 (fid 20.40, real held-out 17 at N = 1000) is above the limit 3 (--max-fid-over-floor)" in out
    bare = write_report(tmp_path / "bare", make_summary([make_row(1)]))
    code, _, err = cli("gate", bare, "--max-fid-over-floor", "3")
    assert code == 2 and "has no real-data floor; score with --real-floor" in err
    broken = write_report(tmp_path / "nan", make_summary([make_row(1, "inf", None, status="nan_samples")], real_floor=floor))
    assert not gate(broken, max_fid_over_floor=100).passed
    code, out, err = cli("gate", broken, "--max-fid-over-floor", "100", "--json")  # inf measured: strict JSON, no crash
    assert code == 1, err
    crit = json.loads(out)["criteria"][0]
    assert crit["measured"] == "inf" and crit["value"] == "inf" and not crit["passed"]


def test_compare_json_is_not_a_report(report: Path, tmp_path: Path, cli: Any) -> None:
    comp = tmp_path / "cmp" / "compare.json"
    comp.parent.mkdir()
    comp.write_text(json.dumps({**make_summary([make_row(1)]), "kind": "compare"}))  # rows and a primary metric, too
    for args in ((comp, "--max-fid", "100"), (report, "--baseline", comp)):
        code, _, err = cli("gate", *args)
        assert code == 2 and "a `ganeval compare` result, not a score summary" in err, err


def test_baseline_both_non_finite_is_no_change(tmp_path: Path) -> None:
    nan_row = make_row(1, "inf", None, status="nan_samples")
    cand = write_report(tmp_path / "c", make_summary([nan_row]))
    base = write_report(tmp_path / "b", make_summary([nan_row]))
    crit = gate(cand, baseline=base, max_regression=5).criteria[0]
    assert "no change (both non-finite)" in crit.message and "better" not in crit.message


def test_floor_limit_scores_the_floor_itself(tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthetic import write_bank_checkpoint

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    code, out, err = cli("gate", tmp_path / "run", "--num-samples", "300", "--bootstrap", "0", "--device", "cpu",
                         "--no-progress", "--metrics", "mnist_fd", "--max-mnist-fd-over-floor", "1000", "--json")
    assert code == 0, err
    data = json.loads(out)
    crit = data["criteria"][0]
    summary = json.loads((tmp_path / "run" / "report" / "summary.json").read_text())
    assert summary["real_floor"]["dataset"] == "mnist-test" and summary["real_floor"]["n"] == 300
    assert crit["value"] == pytest.approx(summary["rows"][0]["mnist_fd"] - summary["real_floor"]["values"]["mnist_fd"])
    assert crit["floor_n"] == 300 and crit["value"] > 0


def test_junit_path_that_cannot_be_written_is_refused_before_scoring(tmp_path: Path, cli: Any) -> None:
    """A file where --junit's folder should be: one line naming it, exit 2, before any checkpoint is scored (it was
    found after scoring and a printed "gate: passed", with the reason "File exists")."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ckpt_0000001.safetensors").write_bytes(b"never read")
    code, out, err = cli("gate", tmp_path / "run", "--max-mnist-fd", "30", "--metrics", "mnist_fd", "--junit",
                         tmp_path / "afile" / "x.xml")
    assert code == 2 and out == "" and f"{tmp_path / 'afile'} exists and is not a folder" in err, err
    assert not (tmp_path / "run" / "report").exists()


def test_a_misspelt_criterion_is_refused_not_ignored(report: Path) -> None:
    """``gate(REPORT, max_fid=25, min_modez=10)`` passed on max_fid alone: with a report TARGET the unknown keyword
    fell into the ignored scoring options. Refused, naming it, before anything is read or scored."""
    from ganeval.errors import OptionError

    with pytest.raises(OptionError, match=r"^unknown gate option\(s\) \['min_modez'\]: neither a criterion \(.*min_modes") as err:
        gate(report, max_fid=25, min_modez=10)
    assert isinstance(err.value, TypeError)
    with pytest.raises(OptionError, match=r"\['max_fidd'\]"):  # said "no criteria" without naming it
        gate(report, max_fidd=25)
    with pytest.raises(OptionError, match=r"\['num_sample'\]"):
        gate(report.parent / "missing", max_fid=25, num_sample=10)
    assert gate(report, max_fid=25, num_samples=10, z_dim=4, distributed=None).passed  # known: ignored with a note


def test_json_names_the_n_judged_and_close_values_are_told_apart(tmp_path: Path) -> None:
    """A sample set of 150 images asked at N = 300: gate --json said "n_samples": 300. And a value just past its
    limit printed as the limit itself ("277.32 is above the limit 277.32")."""
    report = write_report(tmp_path / "rep", make_summary([make_row(100, fid=277.318175, ci=None, n_samples=150)],
                                                         n_samples=300))
    res = gate(report, max_fid=277.318)
    d = res.to_dict()
    assert d["n_samples"] == 150 and d["n_asked"] == 300
    assert not res.passed and "fid = 277.3182 is above the limit 277.318 (--max-fid)" in res.criteria[0].message
    ok = gate(report, max_fid=300).criteria[0].message
    assert "fid = 277.32 <= limit 300 (--max-fid)" in ok, ok
