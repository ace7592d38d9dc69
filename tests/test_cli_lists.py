"""List arguments written with commas (``--metrics fid,kid``), the API's ``metrics="…"`` string, and ``score --columns``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from synthetic import write_bank_checkpoint

from ganeval.cli.arguments import split_items
from ganeval.cli.cmd_score import table_text
from ganeval.evaluate import score
from ganeval.options import ScoreOptions

FAST = ("--num-samples", 200, "--bootstrap", 0, "--device", "cpu", "--no-progress")


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_split_items_accepts_both_spellings() -> None:
    assert split_items(["fid,kid", "prc", " dc , ", ","]) == ["fid", "kid", "prc", "dc"]


def test_metrics_option_normalises_strings() -> None:
    """``tuple("fid")`` would be ``('f', 'i', 'd')``: a string is one metric or a comma list; repeats are dropped."""
    assert ScoreOptions(metrics="mnist_fd").metrics == ("mnist_fd",)
    assert ScoreOptions.from_kwargs(metrics="fid, kid,fid").metrics == ("fid", "kid")
    assert ScoreOptions(metrics=["modes", "mnist_fd"]).metrics == ("modes", "mnist_fd")


def test_api_scores_with_a_single_metric_string(tmp_path: Path) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    df = score(tmp_path / "run", num_samples=200, metrics="mnist_fd", bootstrap=0, device="cpu", progress=False)
    assert df.attrs["summary"]["options"]["metrics"] == ["mnist_fd"]
    assert math.isfinite(df["mnist_fd"].iloc[0])


def test_comma_separated_metrics_on_the_command_line(tmp_path: Path, cli) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, out, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd,modes", *FAST)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["iteration", "mnist_fd", "modes_covered", "rank", "status"]
    code, _, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd,mnist_fdd", *FAST)
    assert code == 2 and "invalid choice: 'mnist_fdd'" in err
    assert err.count("\n") == 1 and err.startswith("ganeval score: error:") and "usage:" not in err, err  # one line


def test_columns_choose_the_printed_table(tmp_path: Path, cli) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, out, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd", "modes",
                         "--columns", "checkpoint,mnist_fd", "class_kl,mnist_fd_ci_low", *FAST)
    assert code == 0, err
    # every column named, in order: the interval is empty without --bootstrap, and says so rather than vanishing
    assert out.splitlines()[0].split() == ["checkpoint", "mnist_fd", "class_kl", "mnist_fd_ci_low"]
    assert "ckpt_0001000.safetensors" in out.splitlines()[1] and out.splitlines()[1].split()[-1] == "NaN"


def test_columns_with_json_are_refused_before_scoring(tmp_path: Path, cli) -> None:
    """--json prints the summary and no table: --columns was taken, checked and ignored (exit 0, the JSON printed)."""
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, out, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd", "--columns", "iteration,mnist_fd", "--json", *FAST)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("ganeval: error: --columns chooses the printed table's columns, and --json prints the summary")
    assert not (tmp_path / "run" / "report").exists()


@pytest.mark.parametrize(("column", "message"), [
    ("fid", "--columns fid: written by metric fid, which is not in --metrics"),
    ("mnist_fid", "--columns mnist_fid: no such column"),
    # written for stored sample sets alone: a checkpoint's table printed it as an empty column
    ("n_bad_images", "--columns n_bad_images: written for stored sample sets (image folders, zips, .npz) alone, and no "
                     "target is one"),
])
def test_bad_column_is_refused_before_scoring(tmp_path: Path, cli, column: str, message: str) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, out, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd", "--columns", column, *FAST)
    assert code == 2 and out == ""
    assert err.startswith(f"ganeval: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "run" / "report").exists() and not (tmp_path / "cache").exists()


def test_table_wraps_to_a_width_and_not_without_one() -> None:
    cols = [f"metric_{i}" for i in range(12)]
    table = pd.DataFrame({c: [1.23456789, 2.5] for c in cols}).assign(empty=[None, None])
    one_line = table_text(table, [*cols, "empty", "absent"], None)
    assert one_line.splitlines()[0].split() == cols  # all-empty and unknown columns are left out
    wrapped = table_text(table, cols, 60)
    assert max(len(line) for line in wrapped.splitlines()) <= 60
    assert [w for line in wrapped.splitlines() for w in line.split() if w.startswith("metric_")] == cols


def test_metrics_command_lists_the_registry(cli) -> None:
    from ganeval.metrics.registry import DEFAULT_METRICS, METRICS

    code, out, _ = cli("metrics", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == list(METRICS)
    assert {r["name"] for r in rows if r["default"]} == set(DEFAULT_METRICS)
    fid = next(r for r in rows if r["name"] == "fid")
    assert fid["columns"] == ["fid", "fid_ci_low", "fid_ci_high"] and not fid["needs_real_images"]
    assert next(r for r in rows if r["name"] == "mnist_prc")["needs_real_images"]
    code, out, _ = cli("metrics")
    assert code == 0 and all(f"\n{name}  [" in "\n" + out for name in METRICS)


def test_docs_name_every_metric_and_column() -> None:
    """docs/scoring.md's metric table and column list cover the registry (a new metric must be documented)."""
    from ganeval.metrics.registry import METRICS, table_columns

    text = (Path(__file__).parent.parent / "docs" / "scoring.md").read_text()
    table = text[text.index("| metric (`--metrics`)"):text.index("### The real-data floor")]
    columns = text[text.index("Columns, in order"):]
    columns = columns[: columns.index("\n\n")]
    listed = columns[columns.index(": `") + 3:].split("`")[0].replace("mnist_fd_digit_0 … mnist_fd_digit_9", ", ".join(
        f"mnist_fd_digit_{d}" for d in range(10)))
    from ganeval.report.writers import COLUMNS

    assert " ".join(listed.split()).split(", ") == COLUMNS  # the documented order is the files' order
    for name, metric in METRICS.items():
        assert f"`{name}`" in table, name
        for col in table_columns(metric):
            stem = col if "digit_" not in col else "mnist_fd_digit_0"
            assert stem in columns, (name, col)


def test_an_output_that_cannot_be_written_is_one_line_exit_2(tmp_path: Path, cli) -> None:
    """A file in the way of an output folder: the path and the system's reason, not a traceback (exit 2)."""
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000)
    (tmp_path / "blocker").write_text("a file")
    for args in (("export", ckpt, "--out", tmp_path / "blocker" / "g.safetensors"),
                 ("train", "--out", tmp_path / "blocker" / "run", "--iterations", 5, "--no-progress", "--device", "cpu")):
        code, _, err = cli(*args)
        assert code == 2 and err.startswith(f"ganeval: error: {tmp_path / 'blocker'}") and err.count("\n") == 1, err
        assert "(a file where a folder is needed?)" in err


def test_printed_columns_keep_one_order_and_ci_sets_the_level(tmp_path: Path, cli) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    heads, rows = [], {}
    for metrics, ci in (("mnist_kid,mnist_fd,mnist_prc", "0.95"), ("mnist_prc,mnist_fd,mnist_kid", "0.5")):
        out_dir = tmp_path / ci
        code, out, err = cli("score", tmp_path / "run", *FAST, "--metrics", metrics, "--ci", ci, "--bootstrap", 40,
                             "--out", out_dir)
        assert code == 0, err
        heads.append(out.splitlines()[0].split())
        summary = json.loads((out_dir / "summary.json").read_text())
        assert summary["bootstrap"]["level"] == float(ci)
        rows[ci] = summary["rows"][0]
    assert heads[0] == heads[1]  # whatever the order of --metrics
    wide, narrow = rows["0.95"], rows["0.5"]
    assert wide["mnist_fd_ci_low"] < narrow["mnist_fd_ci_low"] <= narrow["mnist_fd_ci_high"] < wide["mnist_fd_ci_high"]
    code, _, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd", "--ci", "95", *FAST)
    assert code == 2 and "--ci (the interval level) must lie between 0 and 1" in err


def test_every_option_with_a_default_says_it_in_its_help() -> None:
    """A new user reads defaults in --help: --bootstrap (100), --late-threshold (0.1), --batch-size, compare's
    --sequential (10), train's --log-every (100) and others had a default the help did not name."""
    import argparse

    from ganeval.cli.app import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    silent = [f"{name} {a.option_strings[-1]}" for name, p in sub.choices.items() for a in p._actions
              if a.option_strings and a.default not in (None, False, argparse.SUPPRESS) and a.const is None
              and not isinstance(a, argparse._HelpAction | argparse._StoreFalseAction) and "default" not in (a.help or "")]
    assert silent == []


def test_the_api_table_has_the_documented_column_order(tmp_path: Path) -> None:
    """ganeval.score's DataFrame had its columns in the order they were computed (MNIST before Inception, and the
    order of --metrics): two calls asking for the same metrics in another order did not line up, nor with scores.csv."""
    run = write_bank_checkpoint(tmp_path / "run", 1000).parent
    kw = {"num_samples": 200, "bootstrap": 0, "device": "cpu", "progress": False}
    a = score(run, metrics="mnist_fd,mnist_is,modes", out=tmp_path / "a", **kw)
    b = score(run, metrics="modes,mnist_is,mnist_fd", **kw)
    assert list(a.columns) == list(b.columns) == (tmp_path / "a" / "scores.csv").read_text().splitlines()[0].split(",")
    assert list(a.columns[:3]) == ["iteration", "checkpoint", "n_samples"] and a.columns[-1] == "sha256"


def test_the_parsers_metric_names_are_the_registrys(cli) -> None:
    """``--metrics`` is listed from ganeval.names (no torch at start-up): the same names as the registry's, in its
    order, and a name it lacks is a usage error."""
    from ganeval.metrics.registry import METRICS
    from ganeval.names import METRIC_NAMES

    assert METRIC_NAMES == tuple(METRICS)
    code, _, err = cli("score", "x", "--metrics", "fid,nope")
    assert code == 2 and "nope" in err


def test_a_list_flag_given_twice_adds_up() -> None:
    """argparse kept only the last ``--metrics`` (``--metrics fid kid --metrics mnist_fd`` scored mnist_fd alone,
    silently); now each list flag's lists add up, repeats dropped, and the defaults are replaced, not added to."""
    from ganeval.cli.app import build_parser

    parse = build_parser().parse_args
    args = parse(["score", "x", "--metrics", "fid", "kid", "--metrics", "mnist_fd,fid", "--columns", "a", "--columns", "b"])
    assert (args.metrics, args.columns) == (["fid", "kid", "mnist_fd"], ["a", "b"])
    assert parse(["score", "x", "--metrics", "modes"]).metrics == ["modes"]
    assert parse(["score", "x"]).metrics == list(ScoreOptions().metrics) and parse(["score", "x"]).columns is None
    assert parse(["watch", "r", "--report-metrics", "modes", "--report-metrics", "mnist_fd"]).report_metrics == ["modes", "mnist_fd"]
    assert parse(["floors", "--extractors", "mnist", "--extractors", "inception"]).extractors == ["mnist", "inception"]
    stats = ["stats", "--dataset", "d", "--out", "o.npz", "--extractor", "inception"]
    assert parse([*stats, "--extractor", "mnist"]).extractor == ["inception", "mnist"]
    assert parse([*stats, "--extractor", "inception"]).extractor == ["inception", "inception"]  # refused by stats: twice


def test_metrics_given_twice_score_both(tmp_path: Path, cli) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, out, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd", "--metrics", "modes", *FAST, "--json")
    assert code == 0, err
    row = json.loads(out)["rows"][0]
    assert math.isfinite(row["mnist_fd"]) and row["modes_covered"] == 10
