"""``ganeval score`` on synthetic checkpoint series: verdicts, bad input, caching, reports."""

from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import pandas as pd
import pytest
from synthetic import write_bank_checkpoint

from ganeval.evaluate import score

MNIST_ONLY = ("mnist_is", "mnist_fd", "modes")
FAST = {"num_samples": 400, "metrics": MNIST_ONLY, "bootstrap": 40, "device": "cpu", "progress": False}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_good_generator_scores_well(tmp_path: Path) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    df = score(tmp_path / "run", **FAST)
    row = df.iloc[0]
    assert row["status"] == "ok" and row["modes_covered"] == 10
    assert row["mnist_is"] > 8.0 and row["class_kl"] < 0.1 and not row["mode_collapse"]  # 10 splits of 40: IS biased low
    assert row["mnist_fd_ci_low"] <= row["mnist_fd"] <= row["mnist_fd_ci_high"]
    assert not {"fid", "fid_ci_low", "fid_ci_high"} & set(df.columns)  # no empty columns of metrics this run skipped


def test_single_digit_generator_is_mode_collapse(tmp_path: Path) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000, digits=(7,))
    df = score(tmp_path / "run", **FAST)
    row = df.iloc[0]
    assert row["modes_covered"] == 1 and row["mode_collapse"]
    assert row["mnist_is"] < 1.5
    summary = df.attrs["summary"]
    assert summary["mode_collapse"]["flag"] and "Mode collapse" in summary["verdict"]


def test_nan_generator_gets_inf_fd_and_status(tmp_path: Path) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    write_bank_checkpoint(tmp_path / "run", 2000, emit_nan=True)
    df = score(tmp_path / "run", **FAST)
    bad = df.iloc[1]
    assert bad["status"] == "nan_samples" and bad["mnist_fd"] == float("inf")
    assert df.iloc[0]["is_best"] and not df.attrs["failed"]


def test_late_collapse_is_flagged_with_interval(tmp_path: Path) -> None:
    for it, noise in zip((1000, 2000, 3000, 4000, 5000), (0.9, 0.5, 0.0, 0.5, 0.9), strict=True):
        write_bank_checkpoint(tmp_path / "run", it, noise=noise)
    df = score(tmp_path / "run", **FAST)
    assert df.loc[df["is_best"], "iteration"].item() == 3000
    assert list(df.sort_values("rank")["iteration"])[0] == 3000
    late = df.attrs["summary"]["late_collapse"]
    assert late["flag"] and late["best"] == "ckpt_0003000.safetensors" and late["ci_low"] > 0
    assert "went bad at the end" in df.attrs["summary"]["verdict"]


def test_late_collapse_with_a_higher_is_better_primary(tmp_path: Path) -> None:
    """Ranked by MNIST-IS, a last checkpoint collapsed onto one digit is flagged (its IS fell), judged
    on a normal interval from the two rows' mnist_is_std since IS keeps no replicates; with MNIST FD primary the
    paired interval decides, as before."""
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.5)
    write_bank_checkpoint(tmp_path / "run", 2000)
    write_bank_checkpoint(tmp_path / "run", 3000, digits=(7,))
    df = score(tmp_path / "run", **FAST, primary="mnist_is")
    late = df.attrs["summary"]["late_collapse"]
    assert late["best"] == "ckpt_0002000.safetensors" and late["last"] == "ckpt_0003000.safetensors"
    assert late["difference"] < 0 and late["relative"] > 0.5 and late["flag"], late
    assert "normal one from the two checkpoints' mnist_is_std" in late["basis"] and late["ci_high"] < 0, late
    verdict = df.attrs["summary"]["verdict"]
    assert "went bad at the end" in verdict and f"(mnist_is -{abs(late['difference']):.3g}" in verdict, verdict
    fd = score(tmp_path / "run", **FAST).attrs["summary"]["late_collapse"]
    assert fd["flag"] and fd["ci_low"] > 0 and "basis" not in fd


def test_all_nan_series_recommends_nothing(tmp_path: Path) -> None:
    for it in (1000, 2000):
        write_bank_checkpoint(tmp_path / "run", it, emit_nan=True)
    df = score(tmp_path / "run", **FAST, out=tmp_path / "rep")
    summary = df.attrs["summary"]
    assert summary["verdict"].startswith("No checkpoint has a finite mnist_fd") and "Keep" not in summary["verdict"]
    assert not summary["late_collapse"]["flag"] and "finite" in summary["late_collapse"]["reason"]
    # and no file names a best: summary.json's "best", is_best, the late-collapse judgement, the report's panel
    assert summary["best"] is None and not df["is_best"].any() and "best" not in summary["late_collapse"]
    assert "best: <code>" not in (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("primary", ["mnist_fd", "mnist_is"])
def test_last_checkpoint_with_nan_samples_is_training_gone_bad(tmp_path: Path, primary: str) -> None:
    """Diverged at the end: flagged whichever direction the primary runs, with no signed difference to misread."""
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    write_bank_checkpoint(tmp_path / "run", 2000)
    write_bank_checkpoint(tmp_path / "run", 3000, emit_nan=True)
    summary = score(tmp_path / "run", **FAST, primary=primary).attrs["summary"]
    late = summary["late_collapse"]
    assert late["flag"] and late["unmeasurable"] and late["last"] == "ckpt_0003000.safetensors", late
    assert late["best"] == "ckpt_0002000.safetensors" and late["difference"] is None
    verdict = summary["verdict"]
    assert ("the samples of the last checkpoint ckpt_0003000.safetensors hold NaN/Inf values, so its "
            f"{primary} cannot be measured") in verdict and "inf%" not in verdict and "+inf" not in verdict, verdict


def test_late_collapse_passes_over_a_last_row_without_the_primary() -> None:
    """A last checkpoint whose primary was not computed is not "training gone bad": the one before it is judged."""
    import pandas as pd

    from ganeval import ranking

    df = pd.DataFrame({"checkpoint": ["a", "b", "c"], "status": ["ok"] * 3, "mnist_fd": [3.0, 1.0, float("nan")]})
    df = ranking.add_ranks(df, "mnist_fd")
    late = ranking.late_collapse(df, "mnist_fd", {}, 0.1, 0.95)
    assert not late["flag"] and late["last"] == "b" and late["note"] == "the last file c has no mnist_fd; judging b", late


def test_improving_series_has_no_late_collapse(tmp_path: Path) -> None:
    for it, noise in zip((1000, 2000, 3000), (0.9, 0.5, 0.0), strict=True):
        write_bank_checkpoint(tmp_path / "run", it, noise=noise)
    df = score(tmp_path / "run", **FAST)
    assert df.iloc[-1]["is_best"]
    assert not df.attrs["summary"]["late_collapse"]["flag"]


def test_corrupt_checkpoint_does_not_stop_others(tmp_path: Path, cli) -> None:
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000)
    write_bank_checkpoint(run, 3000)
    good = (run / "ckpt_0003000.safetensors").read_bytes()
    (run / "ckpt_0002000.safetensors").write_bytes(good[: len(good) // 2])
    (run / "README.txt").write_text("not a checkpoint")
    code, out, err = cli("score", run, "--num-samples", 300, "--metrics", *MNIST_ONLY, "--bootstrap", 20, "--device", "cpu")
    assert code == 1
    assert err.count("ignored 1 non-checkpoint file") == 1
    assert "ckpt_0002000.safetensors" in err and "truncated" in err
    summary = json.loads((run / "report" / "summary.json").read_text())
    statuses = {r["checkpoint"]: r["status"] for r in summary["rows"]}
    assert statuses == {"ckpt_0001000.safetensors": "ok", "ckpt_0002000.safetensors": "error", "ckpt_0003000.safetensors": "ok"}
    for name in ("scores.csv", "scores.parquet", "report.html"):
        assert (run / "report" / name).stat().st_size > 0


def test_scoring_picked_files_never_replaces_the_folder_report(tmp_path: Path, cli) -> None:
    """One checkpoint (or a few) scored from a run folder get their own report folder: the run's ``report/`` stays."""
    run = tmp_path / "run"
    for it in (1000, 2000, 3000):
        write_bank_checkpoint(run, it)
    args = ("--num-samples", 300, "--metrics", "mnist_fd", "--bootstrap", 0, "--device", "cpu", "--no-progress")
    assert cli("score", run, *args)[0] == 0
    whole = (run / "report" / "summary.json").read_text()
    assert cli("score", run / "ckpt_0002000.safetensors", *args)[0] == 0
    assert cli("score", run / "ckpt_0001000.safetensors", run / "ckpt_0003000.safetensors", *args)[0] == 0
    assert cli("gate", run / "ckpt_0003000.safetensors", "--max-mnist-fd", "1e9", *args)[0] == 0
    assert (run / "report" / "summary.json").read_text() == whole
    one = json.loads((run / "report_ckpt_0002000" / "summary.json").read_text())
    assert [r["checkpoint"] for r in one["rows"]] == ["ckpt_0002000.safetensors"]
    two = json.loads((run / "report_ckpt_0001000_ckpt_0003000" / "summary.json").read_text())
    assert [r["checkpoint"] for r in two["rows"]] == ["ckpt_0001000.safetensors", "ckpt_0003000.safetensors"]
    assert (run / "report_ckpt_0003000" / "summary.json").is_file()


class _Evil:
    def __reduce__(self) -> tuple:
        import os

        return (os.system, (f"touch {_Evil.marker}",))

    marker = ""


def test_malicious_pickle_is_refused_and_never_executed(tmp_path: Path, cli) -> None:
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "pwned"
    _Evil.marker = str(marker)
    (run / "ckpt_0001000.safetensors").write_bytes(pickle.dumps(_Evil()))
    write_bank_checkpoint(run, 2000)
    code, _, err = cli("score", run, "--num-samples", 200, "--metrics", *MNIST_ONLY, "--bootstrap", 0, "--device", "cpu")
    assert code == 1 and "ckpt_0001000.safetensors" in err and "not a safetensors checkpoint" in err
    assert not marker.exists()


def test_empty_folder_is_one_line_exit_2(tmp_path: Path, cli) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = cli("score", tmp_path / "empty", "--device", "cpu")
    assert code == 2 and err.strip().count("\n") == 0 and "no checkpoints" in err


def test_rerun_uses_cache_and_rescores_changed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000, noise=0.3)
    first = score(run, **FAST)
    feats = tmp_path / "cache" / "features"
    assert len(list(feats.glob("*.npz"))) == 1
    write_bank_checkpoint(run, 2000, noise=0.1)
    second = score(run, **FAST)
    assert len(list(feats.glob("*.npz"))) == 2  # only the new checkpoint was extracted
    assert second.iloc[0]["mnist_fd"] == first.iloc[0]["mnist_fd"]
    write_bank_checkpoint(run, 1000, noise=0.6)  # same name, new content
    third = score(run, **FAST)
    assert len(list(feats.glob("*.npz"))) == 3
    assert third.iloc[0]["mnist_fd"] > first.iloc[0]["mnist_fd"]


def test_common_random_numbers_same_latents_for_all(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000)
    write_bank_checkpoint(run, 2000)
    df = score(run, **FAST)
    # identical generators sampled with the shared latent set give identical metrics
    assert df.iloc[0]["mnist_fd"] == df.iloc[1]["mnist_fd"]
    assert df.iloc[0]["mnist_fd_ci_low"] == df.iloc[1]["mnist_fd_ci_low"]


def test_json_flag_prints_summary(tmp_path: Path, cli) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, out, _ = cli("score", tmp_path / "run", "--num-samples", 200, "--metrics", *MNIST_ONLY, "--bootstrap", 10,
                       "--device", "cpu", "--json", "--out", tmp_path / "rep")
    assert code == 0
    summary = json.loads(out)
    assert summary["best"]["checkpoint"] == "ckpt_0001000.safetensors"
    assert summary["provenance"]["mnist"]["extractor"] == "mnist"
    assert (tmp_path / "rep" / "report.html").is_file()


def test_threads_option_applies_while_scoring_and_is_restored(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import ganeval.evaluate as ev

    write_bank_checkpoint(tmp_path / "run", 1000)
    seen: list[int] = []
    inner = ev._Evaluator.run_stage
    monkeypatch.setattr(ev._Evaluator, "run_stage", lambda self, *a: (seen.append(torch.get_num_threads()), inner(self, *a))[1])
    before = torch.get_num_threads()
    one = score(tmp_path / "run", threads=1, use_cache=False, **FAST)
    default = score(tmp_path / "run", use_cache=False, **FAST)
    assert seen == [1, before] and torch.get_num_threads() == before
    assert one["mnist_fd"].iloc[0] == pytest.approx(default["mnist_fd"].iloc[0], rel=1e-6)
    assert one.attrs["summary"]["options"]["threads"] == 1
    code, _, err = cli("score", tmp_path / "run", "--device", "cpu", "--threads", "0")
    assert code == 2 and "--threads must be an integer of at least 1" in err and err.strip().count("\n") == 0


def test_cached_metric_missing_a_column_is_recomputed(tmp_path: Path) -> None:
    """A metric cached before it gained a column (e.g. ``mnist_intra_digits``) is computed again, not shown as NaN."""
    import numpy as np

    write_bank_checkpoint(tmp_path / "run", 1000)
    first = score(tmp_path / "run", **FAST).iloc[0]
    entries = list((tmp_path / "cache" / "metrics").glob("*.npz"))
    stale = 0
    for path in entries:
        with np.load(path) as z:
            cols = json.loads(str(z["columns"]))
        if "mnist_confidence" in cols:  # the modes entry, as an older ganeval would have cached it
            cols.pop("mnist_confidence")
            np.savez(path, columns=np.array(json.dumps(cols)))
            stale += 1
    assert stale == 1
    again = score(tmp_path / "run", **FAST).iloc[0]
    assert again["mnist_confidence"] == pytest.approx(first["mnist_confidence"], rel=1e-12)


@pytest.mark.parametrize(("primary", "best"), [("coverage", "b"), ("recall", "b"), ("kid_mean", "a"), ("mnist_fd", "a")])
def test_rank_direction_follows_the_shared_table(primary: str, best: str) -> None:
    import pandas as pd

    from ganeval.ranking import add_ranks

    df = pd.DataFrame({"checkpoint": ["a", "b"], "status": ["ok", "ok"], "coverage": [0.2, 0.9], "recall": [0.1, 0.5],
                       "kid_mean": [0.01, 0.05], "mnist_fd": [1.0, 3.0]})
    ranked = add_ranks(df, primary)
    assert ranked.loc[ranked["is_best"], "checkpoint"].tolist() == [best]


def test_no_progress_keeps_stderr_quiet_but_for_the_notes(tmp_path: Path, cli) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    args = ("score", tmp_path / "run", "--metrics", "mnist_fd", "--num-samples", 200, "--bootstrap", 10, "--device", "cpu")
    code, _, err = cli(*args)
    assert code == 0 and "plan:" in err
    code, _, err = cli(*args, "--no-progress")
    assert code == 0 and err == ""
    # ...but not of its notes: a metric that could not be computed is said once, at the end (CI logs keep it)
    code, _, err = cli(*args, "--no-progress", "--metrics", "mnist_fd", "mnist_fd_inf")
    assert code == 0 and err.startswith("note: mnist_fd_inf unavailable") and err.count("\n") == 1, err


def test_printed_table_shows_the_metrics_asked_for(tmp_path: Path, cli) -> None:
    """Opt-in metrics appear in the printed table (and on the floor's line) without their intervals and std columns."""
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, out, err = cli("score", tmp_path / "run", "--num-samples", 300, "--metrics", "mnist_fd", "mnist_prc", "mnist_kid",
                         "--bootstrap", 0, "--device", "cpu", "--real-floor")
    assert code == 0, err
    header, floor = out.splitlines()[0].split(), next(line for line in out.splitlines() if line.startswith("real held-out"))
    assert header[:2] == ["iteration", "mnist_fd"] and header[-2:] == ["rank", "status"]
    assert sorted(header[2:-2]) == ["mnist_kid_mean", "mnist_precision", "mnist_recall"]
    assert "mnist_precision" in floor and "mnist_kid_std" not in out


@pytest.mark.parametrize("args, problem", [
    (["--num-samples", "0"], "--num-samples must be an integer of at least 2 (got 0)"),
    (["--num-samples", "1"], "--num-samples must be an integer of at least 2 (got 1)"),
    (["--num-samples=-5"], "--num-samples must be an integer of at least 2 (got -5)"),
    (["--batch-size", "0"], "--batch-size must be an integer of at least 1 (got 0)"),
    (["--bootstrap=-1"], "--bootstrap must be an integer of at least 0 (got -1)"),
    (["--late-threshold=-0.1"], "--late-threshold must be a finite 0 or more"),
    (["--late-threshold", "inf"], "--late-threshold must be a finite 0 or more"),  # a summary.json must hold it
    (["--copying-threshold", "nan"], "--copying-threshold must be a finite z-score"),
    (["--primary", "checkpoint"], "--primary 'checkpoint' is not a column of the metrics asked for"),
    (["--primary", "fid"], "choose one of: mnist_is, mnist_fd"),
    (["--primary", "mnist_is_std"], "--primary mnist_is_std: not something to rank checkpoints by"),
    (["--metrics", "mnist_fd", "mnist_dc", "--primary", "mnist_density"], "--primary mnist_density: not something to rank"),
    (["--metrics", "mnist_kid"], "no Fréchet distance (fid, sfid, mnist_fd, custom_fd) among --metrics (mnist_kid) to rank"),
])
def test_unusable_options_are_refused_before_scoring(tmp_path: Path, cli, args: list[str], problem: str) -> None:
    """One line naming the option, exit 2, nothing scored and no report folder."""
    write_bank_checkpoint(tmp_path / "run", 1000)
    metrics = [] if "--metrics" in args else ["--metrics", "mnist_is", "mnist_fd"]  # a second --metrics adds to the first
    code, out, err = cli("score", tmp_path / "run", *metrics, "--device", "cpu", *args)
    assert code == 2 and problem in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "run" / "report").exists()


@pytest.mark.parametrize("option, problem", [
    ({"ci": 95}, "--ci (the interval level) must lie between 0 and 1"),
    ({"kid_subset_size": 1}, "kid_subset_size must be an integer of at least 2 (got 1)"),
    ({"num_samples": 1e4}, "--num-samples must be an integer of at least 2 (got 10000.0)"),
])
def test_unusable_api_options_are_refused(tmp_path: Path, option: dict, problem: str) -> None:
    from ganeval.errors import GanevalError

    write_bank_checkpoint(tmp_path / "run", 1000)
    with pytest.raises(GanevalError, match=re.escape(problem)):
        score(tmp_path / "run", **{**FAST, **option})


def test_out_blocked_by_a_file_is_refused_before_scoring(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import ganeval.evaluate as ev

    write_bank_checkpoint(tmp_path / "run", 1000)
    (tmp_path / "taken").write_text("a file")
    monkeypatch.setattr(ev, "_score_series", lambda *a: pytest.fail("scored although the report could not be written"))
    for out in (tmp_path / "taken", tmp_path / "taken" / "report"):
        code, _, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd", "--device", "cpu", "--out", out)
        assert code == 2 and f"{tmp_path / 'taken'}: exists and is not a folder" in err, err
        code, _, err = cli("compare", tmp_path / "run" / "ckpt_0001000.safetensors", tmp_path / "run" / "ckpt_0001000.safetensors",
                           "--metrics", "mnist_fd", "--device", "cpu", "--out", out)
        assert code == 2 and "exists and is not a folder" in err, err


@pytest.mark.parametrize(("level", "text"), [(0.8, "80% CI"), (0.995, "99.5% CI")])
def test_the_verdict_names_the_interval_level_asked_for(tmp_path: Path, level: float, text: str) -> None:
    """The last checkpoint is the best: the best's interval is labelled at --ci (it said "95% CI" whatever the
    level, and 0.995 read "100%"), and it is the interval at that level."""
    for it, noise in ((1000, 0.6), (2000, 0.0)):
        write_bank_checkpoint(tmp_path / "run", it, noise=noise)
    df = score(tmp_path / "run", **FAST, ci=level)
    best = df[df["is_best"]].iloc[0]
    verdict = df.attrs["summary"]["verdict"]
    assert f"{text} [{best['mnist_fd_ci_low']:.3g}" in verdict and "95% CI" not in verdict, verdict


def test_rows_without_the_primary_get_no_rank_and_no_best() -> None:
    """A primary computed for no checkpoint: no rank, no is_best, and a verdict that says so (not NaN samples)."""
    import pandas as pd

    from ganeval.ranking import add_ranks
    from ganeval.summary import verdict_text

    df = pd.DataFrame({"checkpoint": ["a", "b"], "iteration": [1, 2], "status": ["ok", "ok"],
                       "mnist_intra_fd": [float("nan")] * 2, "mnist_fd": [3.0, 1.0]})
    ranked = add_ranks(df, "mnist_intra_fd")
    assert ranked["rank"].isna().all() and not ranked["is_best"].any()
    assert verdict_text(ranked, "mnist_intra_fd", {}) == ("No checkpoint has a mnist_intra_fd value: it could not be "
                                                          "computed (see the notes).")
    df.loc[1, "mnist_intra_fd"] = 5.0  # one has it: it is the best, the other is not ranked
    ranked = add_ranks(df, "mnist_intra_fd")
    assert ranked["rank"].isna().tolist() == [True, False] and ranked["rank"].iloc[1] == 1 and ranked["is_best"].tolist() == [False, True]
    ranked = add_ranks(df.assign(fid=[float("nan"), 40.0]), "fid")  # fid: rows without it still follow by MNIST FD
    assert ranked["rank"].tolist() == [2, 1]


def test_without_mnist_fd_every_checkpoint_gets_inception() -> None:
    """On a CPU the Inception metrics go to the top K by MNIST FD; without MNIST FD there is no top K (the first K
    files got them, and a checkpoint without FID could not be the best): all are scored."""
    from ganeval.distributed import DistContext
    from ganeval.evaluate import _Evaluator
    from ganeval.inputs import Series
    from ganeval.options import ScoreOptions

    for metrics, everyone in ((("fid", "modes"), True), (("fid", "mnist_fd", "modes"), False), (("fid",), True)):
        ev = _Evaluator(Series([], [], Path(".")), ScoreOptions(metrics=metrics, device="cpu"), DistContext())
        assert ev.inception_all() is everyone, metrics


def test_an_unscorable_last_file_is_not_called_the_best(tmp_path: Path) -> None:
    """The newest file could not be scored and the best is the newest scored one: the verdict says "last scored"."""
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.5)
    write_bank_checkpoint(tmp_path / "run", 2000)
    (tmp_path / "run" / "ckpt_0003000.safetensors").write_bytes(b"truncated")
    verdict = score(tmp_path / "run", **FAST).attrs["summary"]["verdict"]
    assert "The last scored checkpoint is the best one." in verdict and "could not be scored" in verdict, verdict


def test_a_cache_that_cannot_be_written_costs_time_not_results(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk or unwritable cache made every checkpoint an error row ("No checkpoint could be scored", exit 1)
    although its features were computed: a cache only saves time, so its failure is a note."""
    (tmp_path / "blocker").write_text("a file where the cache folder should be")
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "blocker" / "cache"))
    write_bank_checkpoint(tmp_path / "run", 1000)
    write_bank_checkpoint(tmp_path / "run", 2000, noise=0.5)
    df = score(tmp_path / "run", **{**FAST, "metrics": ("mnist_fd", "mnist_prc")})  # features, metrics, real features
    assert df["status"].tolist() == ["ok", "ok"] and df["mnist_fd"].notna().all()
    notes = df.attrs["summary"]["notes"]
    assert sum("cache not written" in n for n in notes) == 1, notes  # once, not once per checkpoint and metric
    code, out, err = cli("score", tmp_path / "run", "--num-samples", 400, "--metrics", "mnist_fd", "--device", "cpu",
                         "--bootstrap", 0, "--no-progress", "--out", tmp_path / "rep")
    assert code == 0 and "cache not written" in err, err


def test_iterations_stay_integers_when_a_row_has_none(tmp_path: Path, cli) -> None:
    """A row without an iteration (a name beyond 2^63 − 1: an error row) turned the column into floats: the verdict
    said "(iteration 3000.0)", and scores.csv and summary.json held 1000.0 and 3000.0."""
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000, noise=0.6)
    big = write_bank_checkpoint(run, 3000)
    (run / "ckpt_99999999999999999999.safetensors").write_bytes(big.read_bytes())
    code, out, err = cli("score", run, "--num-samples", 300, "--metrics", "mnist_fd", "--bootstrap", 0, "--device", "cpu",
                         "--no-progress")
    assert code == 1 and "(iteration 3000):" in out + err, out + err
    assert [line.split(",")[0] for line in (run / "report" / "scores.csv").read_text().splitlines()] == \
        ["iteration", "1000", "3000", ""]
    summary = json.loads((run / "report" / "summary.json").read_text())
    assert summary["best"]["iteration"] == 3000 and isinstance(summary["best"]["iteration"], int)


def test_a_file_name_that_is_not_utf8_is_scored_and_reported(tmp_path: Path, cli) -> None:
    """A checkpoint named with a Latin-1 byte (0xe9): scoring finished, then the table raised UnicodeEncodeError
    (traceback, no report); safetensors also refused the path as "corrupt or truncated"."""
    run = tmp_path / "run"
    good = write_bank_checkpoint(run, 300)
    odd = run / "ckpt_caf\udce9_300.safetensors"  # the bytes b"caf\xe9" as Python spells them on a UTF-8 system
    good.rename(odd)
    code, out, err = cli("score", odd, "--metrics", "mnist_fd", "--num-samples", 300, "--bootstrap", 0, "--device", "cpu",
                         "--no-progress", "--out", tmp_path / "rep")
    assert code == 0, err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text(encoding="utf-8"))
    assert [(r["checkpoint"], r["status"]) for r in summary["rows"]] == [("ckpt_caf\ufffd_300.safetensors", "ok")]
    assert "ckpt_caf\ufffd_300" in (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")


def _stored_digits(tmp_path: Path, n: int) -> Path:
    """A stored sample set of the first ``n`` MNIST test digits."""
    import numpy as np

    from ganeval.data import load_mnist

    path = tmp_path / f"digits{n}.npz"
    np.savez(path, images=load_mnist("test")[0][:n])
    return path


def test_knn_metrics_of_too_few_samples_are_unavailable_not_a_crash(tmp_path: Path) -> None:
    """Three stored samples (k = 3): precision/recall are reported unavailable with a note; the run and its other
    metrics go on (topk's RuntimeError used to abort it with a traceback and no report)."""
    df = score(_stored_digits(tmp_path, 3), num_samples=50, metrics=("mnist_fd", "mnist_prc"), bootstrap=0, device="cpu",
               progress=False)
    row, notes = df.iloc[0], df.attrs["summary"]["notes"]
    assert row["status"] == "ok" and row["mnist_fd"] > 0 and pd.isna(row["mnist_precision"]), row
    # the real images are drawn at the N scored (3), so both sides are short
    assert ("mnist_prc unavailable: k-NN balls with k=3 need more than 3 samples and real images (got 3 samples, "
            "3 real images)") in notes


def test_a_frechet_distance_of_one_sample_is_unavailable_not_inf(tmp_path: Path) -> None:
    """One sample has no covariance: MNIST FD is reported unavailable with a note, not inf (the value that marks
    samples holding NaN/Inf, which compare calls worse than any arm and the gate fails as diverged)."""
    import math

    import numpy as np
    import torch

    from ganeval.errors import GanevalError
    from ganeval.metrics.fd_infinity import fd_infinity
    from ganeval.metrics.fid import FIDReference

    df = score(_stored_digits(tmp_path, 1), num_samples=50, metrics=("mnist_fd", "modes"), bootstrap=10, device="cpu",
               progress=False)
    row, summary = df.iloc[0], df.attrs["summary"]
    assert row["status"] == "ok" and math.isnan(row["mnist_fd"]) and row["modes_covered"] == 1, row
    assert "mnist_fd unavailable: a Fréchet distance needs at least 2 samples (got 1)" in summary["notes"]
    assert "finite" not in summary["verdict"], summary["verdict"]
    with pytest.raises(GanevalError, match=r"needs at least 2 samples \(got 1\)"):  # 1-d features: no subset-size refusal
        fd_infinity(torch.ones(1, 1), FIDReference(np.zeros(1), np.eye(1)))


def test_inception_score_and_kid_of_too_few_samples_say_why(tmp_path: Path) -> None:
    """MNIST IS of 5 samples in 10 splits (empty splits: NaN) and KID of 1 sample are unavailable with a note saying
    why, where the column was silently empty with no note."""
    df = score(_stored_digits(tmp_path, 5), num_samples=50, metrics=("mnist_fd", "mnist_is"), bootstrap=0, device="cpu",
               progress=False)
    assert pd.isna(df.iloc[0]["mnist_is"]) and df.iloc[0]["mnist_fd"] > 0
    assert "mnist_is unavailable: an Inception Score of 10 splits needs at least 10 samples (got 5)" in df.attrs["summary"]["notes"]
    df = score(_stored_digits(tmp_path, 1), num_samples=50, metrics=("mnist_fd", "mnist_kid"), bootstrap=0, device="cpu", progress=False)
    assert pd.isna(df.iloc[0]["mnist_kid_mean"])
    # real images at the N scored: 1
    assert "mnist_kid unavailable: KID needs at least 2 samples and real images (got 1 and 1)" in df.attrs["summary"]["notes"]


def test_one_fid_ranks_nothing_so_the_rows_rank_by_mnist_fd() -> None:
    """``--inception-top-k 0`` gives the last checkpoint alone an FID: rows with FID ranked first, so the last was
    always "best" ("Keep [last]: it has the best fid", "the last checkpoint is the best one") whatever the others'
    MNIST FD. One FID compares with nothing: every row then ranks by MNIST FD; two FIDs rank as before."""
    from ganeval import ranking
    from ganeval.summary import verdict_text

    nan = float("nan")
    names = ["ckpt_0000100.safetensors", "ckpt_0000200.safetensors", "ckpt_0000300.safetensors"]
    base = {"checkpoint": names, "iteration": [100, 200, 300], "status": ["ok"] * 3}
    df = ranking.add_ranks(pd.DataFrame({**base, "fid": [nan, nan, 30.0], "mnist_fd": [2.0, 3.0, 5.0]}), "fid")
    df = df.assign(mode_collapse=False)
    assert df["rank"].tolist() == [1, 2, 3]
    late = ranking.late_collapse(df, "fid", {}, 0.1, 0.95)
    assert late["best"] == names[0] and late["metric"] == "mnist_fd" and late["flag"], late
    assert verdict_text(df, "fid", late).startswith(f"Keep {names[0]} (iteration 100): it has the best mnist_fd (2) "
                                                    "(fid not computed for it)")
    df = ranking.add_ranks(pd.DataFrame({**base, "fid": [nan, nan, 30.0], "mnist_fd": [5.0, 3.0, 2.0]}), "fid")
    df = df.assign(mode_collapse=False)
    late = ranking.late_collapse(df, "fid", {}, 0.1, 0.95)
    assert df["rank"].tolist() == [3, 2, 1] and late["metric"] == "mnist_fd" and not late["flag"]
    assert "best mnist_fd (2) (fid computed for one checkpoint alone)" in verdict_text(df, "fid", late)
    two = ranking.add_ranks(pd.DataFrame({**base, "fid": [40.0, nan, 30.0], "mnist_fd": [2.0, 3.0, 5.0]}), "fid")
    assert two["rank"].tolist() == [2, 3, 1]  # FIDs compared: the rows that have one first, by it
    one = ranking.add_ranks(pd.DataFrame({**{k: v[:1] for k, v in base.items()}, "fid": [30.0], "mnist_fd": [5.0]}), "fid")
    assert ranking.ranked_column(one.iloc[0], "fid", one) == "fid"  # one checkpoint: its FID is the ranking


def test_late_collapse_and_verdict_follow_the_checkpoint_ranked_by_mnist_fd_when_fid_is_missing() -> None:
    """FID (primary) computed only for the last checkpoint (``--inception-top-k 0``), whose samples are NaN: the best
    is the one ranked by MNIST FD, named in the verdict, and the NaN last checkpoint is flagged. The late-collapse
    check used to take the NaN checkpoint as best ("the last checkpoint is the best", no flag) and the verdict said
    no checkpoint has a finite FID."""
    import numpy as np

    from ganeval import ranking
    from ganeval.summary import verdict_text

    inf, nan = float("inf"), float("nan")
    df = pd.DataFrame({"checkpoint": ["ckpt_0000200.safetensors", "ckpt_0000400.safetensors"], "iteration": [200, 400],
                       "status": ["ok", "nan_samples"], "fid": [nan, inf], "mnist_fd": [2.07, inf]})
    df = ranking.add_ranks(df, "fid").assign(mode_collapse=False)
    late = ranking.late_collapse(df, "fid", {}, 0.1, 0.95)
    assert late["best"] == "ckpt_0000200.safetensors" == df.loc[df["is_best"], "checkpoint"].item()
    assert late["flag"] and late["unmeasurable"] and late["metric"] == "mnist_fd", late
    verdict = verdict_text(df, "fid", late)
    assert verdict.startswith("Keep ckpt_0000200.safetensors (iteration 200): it has the best mnist_fd (2.07) (fid not "
                              "computed for it).") and "ckpt_0000400.safetensors hold NaN/Inf values" in verdict, verdict
    # No FID at all, the last file unreadable: the last scored one is compared with the best on MNIST FD, paired.
    df = pd.DataFrame({"checkpoint": list("abcd"), "iteration": [1, 2, 3, 4], "status": ["ok"] * 3 + ["error"],
                       "fid": [nan] * 4, "mnist_fd": [3.0, 2.0, 2.6, nan]})
    df = ranking.add_ranks(df, "fid").assign(mode_collapse=False)
    reps = {c: {"mnist_fd": np.linspace(-0.1, 0.1, 50) + v} for c, v in zip("abc", (3.0, 2.0, 2.6), strict=True)}
    late = ranking.late_collapse(df, "fid", reps, 0.1, 0.95)
    assert (late["best"], late["last"], late["metric"]) == ("b", "c", "mnist_fd") and late["flag"], late
    assert late["difference"] == pytest.approx(0.6) and late["ci_low"] > 0 and "basis" not in late
    assert "(mnist_fd +0.6, paired CI" in verdict_text(df, "fid", late)


def test_kid_has_no_spread_when_every_subset_is_the_whole_set(tmp_path: Path) -> None:
    """At N ≤ kid_subset_size each KID "subset" is all N samples against all N real images: the 100 subsets differ only
    in order and their sd was float round-off (≈ 1e-7), printed as "± 1.6e-07". It is empty now, with a note; with
    subsets smaller than N the spread is real and stays."""
    write_bank_checkpoint(tmp_path / "run", 1000)
    opts = {**FAST, "metrics": ("mnist_fd", "mnist_kid"), "num_samples": 300, "bootstrap": 0}
    whole = score(tmp_path / "run", kid_subset_size=1000, out=tmp_path / "rep", **opts)
    assert math.isfinite(whole["mnist_kid_mean"].iloc[0]) and math.isnan(whole["mnist_kid_std"].iloc[0])
    assert any("mnist_kid_std left empty where N ≤ the KID subset size" in n for n in whole.attrs["summary"]["notes"])
    assert not re.search(r"<td class=n>[-0-9.e]+ ± ", (tmp_path / "rep" / "report.html").read_text(encoding="utf-8"))
    part = score(tmp_path / "run", kid_subset_size=200, **opts)
    assert part["mnist_kid_std"].iloc[0] > 1e-5 and not any("KID subset size" in n for n in part.attrs["summary"]["notes"])


def test_late_collapse_interval_of_sample_sets_is_not_called_paired(tmp_path: Path) -> None:
    """Stored sample sets have no shared latents: the interval of (last − best) comes from independent resamples, yet the
    verdict and the flag box called it "paired" and the animation's caption said "the same latents at every checkpoint".
    With a primary that keeps no replicates (class_kl) the verdict printed the best's interval and then "no bootstrap
    interval of class_kl": the interval missing is the difference's."""
    import numpy as np

    from ganeval.stats import dataset_images

    test = dataset_images("mnist-test")
    noisy = np.clip(test[1000:1300].astype(int) + np.random.default_rng(0).integers(-90, 90, (300, 28, 28)), 0, 255)
    sets = []
    for name, images in (("a_good", test[:300]), ("b_noisy", noisy.astype(np.uint8))):
        np.savez(tmp_path / f"{name}.npz", images=images)
        sets.append(tmp_path / f"{name}.npz")
    opts = {**FAST, "metrics": ("mnist_fd", "modes"), "num_samples": 300, "bootstrap": 30}
    df = score(sets, out=tmp_path / "rep", **opts)
    summary = df.attrs["summary"]
    late = summary["late_collapse"]
    assert late["flag"] and late["paired"] is False and summary["bootstrap"]["unpaired"] == ["a_good.npz", "b_noisy.npz"]
    assert "independent-resample CI [" in summary["verdict"] and "paired CI" not in summary["verdict"]
    page = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "95% independent-resample CI [" in page and "paired CI" not in page
    assert "the same latents" not in page and "no shared latents" in page
    kl = score(sets, primary="class_kl", **opts).attrs["summary"]
    # class_kl keeps no replicates: the difference's interval is a normal one from the two rows' own intervals
    assert "normal one from the two checkpoints' 95% intervals of class_kl" in kl["verdict"], kl["verdict"]
    assert kl["late_collapse"]["interval"] == "normal" and "paired" not in kl["late_collapse"]  # not resampled
    write_bank_checkpoint(tmp_path / "run", 1000)
    write_bank_checkpoint(tmp_path / "run", 2000, noise=0.9)
    gen = score(tmp_path / "run", **opts).attrs["summary"]
    assert gen["late_collapse"]["paired"] is True and gen["bootstrap"]["unpaired"] == []
    assert "paired CI [" in gen["verdict"]


def test_generators_of_another_latent_size_are_not_called_paired(tmp_path: Path) -> None:
    """Latents are drawn per latent size: a 32-dimensional generator beside 16-dimensional ones shares no latents with
    them, yet (last − best) was called "paired" and ``bootstrap.unpaired`` was empty; compare said "paired bootstrap"
    and decided by a paired permutation test."""
    from ganeval.comparing import compare

    a = write_bank_checkpoint(tmp_path / "a", 1000)
    b = write_bank_checkpoint(tmp_path / "b", 2000, noise=0.05)
    wide = write_bank_checkpoint(tmp_path / "w", 3000, noise=0.9, latent_dim=32)
    opts = {**FAST, "metrics": ("mnist_fd",), "num_samples": 300, "bootstrap": 30}
    summary = score([a, b, wide], out=tmp_path / "rep", **opts).attrs["summary"]
    late = summary["late_collapse"]
    assert late["flag"] and late["paired"] is False and summary["bootstrap"]["unpaired"] == [wide.name]
    assert "independent-resample CI [" in summary["verdict"]
    assert any("latent size 32" in n and "not paired" in n for n in summary["notes"]), summary["notes"]
    assert "the same latents at every checkpoint" not in (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    same = score([a, b], **opts).attrs["summary"]
    assert same["late_collapse"]["paired"] is True and same["bootstrap"]["unpaired"] == []
    comp = compare({"base": a, "wide": wide, "near": b}, **opts)
    d = comp.differences.set_index("arm")
    assert d.loc["wide", "method"].startswith("bootstrap over samples (independent resamples)"), d.loc["wide", "method"]
    assert "permutation test" in d.loc["wide", "method"] and "paired permutation" not in d.loc["wide", "method"]
    assert d.loc["near", "method"].startswith("paired bootstrap over samples")
    assert comp.members.set_index("arm")["paired"].to_dict() == {"base": True, "wide": False, "near": True}


def test_primary_modes_covered_reads_as_a_count_with_its_interval(tmp_path: Path) -> None:
    """``--primary modes_covered`` printed "the best modes_covered (10.00)" and no interval (it looked for
    ``modes_covered_ci_low``; the interval is ``modes_ci_low/high``)."""
    write_bank_checkpoint(tmp_path / "run", 1000)
    write_bank_checkpoint(tmp_path / "run", 2000, digits=(1, 7))
    df = score(tmp_path / "run", primary="modes_covered", **{**FAST, "bootstrap": 30})
    verdict = df.attrs["summary"]["verdict"]
    assert re.search(r"the best modes_covered \(10\), 95% CI \[\d+, \d+\]", verdict), verdict
