"""``ganeval compare``: differences between models with intervals (paired bootstrap, Welch over runs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from synthetic import bank_images, write_bank_checkpoint

from ganeval.comparing import compare
from ganeval.errors import GanevalError
from ganeval.evaluate import score
from ganeval.metrics.interval import bootstrap_interval

FAST = {"num_samples": 400, "metrics": ("mnist_fd", "modes"), "bootstrap": 60, "device": "cpu", "progress": False}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints: clean digits, noisy digits, and two digit classes only."""
    root = tmp_path_factory.mktemp("runs")
    return {"good": write_bank_checkpoint(root / "good", 1000), "noisy": write_bank_checkpoint(root / "noisy", 1000, noise=0.5),
            "two": write_bank_checkpoint(root / "two", 1000, digits=(1, 7)),
            "good2": write_bank_checkpoint(root / "good2", 2000, bank_size=480)}


def test_worse_models_are_found_worse_with_intervals(runs: dict[str, Path], tmp_path: Path) -> None:
    comp = compare({"good": runs["good"], "noisy": runs["noisy"], "two": runs["two"]}, out=tmp_path / "out", **FAST)
    d = comp.differences.set_index("arm")
    assert list(d.index) == ["noisy", "two"] and (d["baseline"] == "good").all()
    for arm in ("noisy", "two"):
        r = d.loc[arm]
        assert r["verdict"] == "worse" and r["significant"] and 0 < r["ci_low"] <= r["difference"] <= r["ci_high"]
        assert r["method"] == "paired bootstrap over samples; verdict by a paired permutation test (1000 of 1000 re-labellings)"
        assert r["p_value"] == pytest.approx(1 / 1001) and r["relabellings"] == 1000  # none as extreme: all drawn
    assert comp.arms.set_index("arm").loc["two", "mode_collapse_sure"]
    assert "two is worse" in comp.summary["verdict"] and "Flagged for mode collapse beyond noise: noisy, two" in comp.summary["verdict"]
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert files == {"members.csv", "members.parquet", "arms.csv", "differences.csv", "compare.json", "compare.html", "compare.md"}
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert data["kind"] == "compare" and data["baseline"] == "good" and data["provenance"]["mnist"]["weights_sha256"]
    html = (tmp_path / "out" / "compare.html").read_text()
    assert "Differences from the baseline" in html and "data:image/png;base64" in html


def test_difference_interval_is_the_paired_bootstrap_of_the_two_series(runs: dict[str, Path]) -> None:
    """The interval equals the one built from the very replicates ``score`` gives each checkpoint."""
    comp = compare([runs["good"], runs["noisy"]], **FAST)
    reps = comp.result.replicates
    names = comp.arm_members
    (base,), (other,) = names.values()
    d = comp.differences.iloc[0]
    va, vb = (float(comp.members.set_index("checkpoint").loc[n, "mnist_fd"]) for n in (other, base))
    lo, hi = bootstrap_interval(va - vb, reps[other]["mnist_fd"] - reps[base]["mnist_fd"], 0.95)
    assert d["difference"] == pytest.approx(va - vb) and (d["ci_low"], d["ci_high"]) == pytest.approx((lo, hi))
    # … and the values equal a plain ``score`` of each checkpoint (same latents, same reference)
    alone = score(runs["noisy"], **FAST).iloc[0]
    assert va == pytest.approx(float(alone["mnist_fd"]), rel=1e-9)


def test_same_model_twice_is_no_difference(runs: dict[str, Path]) -> None:
    import ganeval

    comp = ganeval.compare({"a": runs["good"], "b": runs["good"]}, **FAST)
    r = comp.differences.iloc[0]
    assert r["difference"] == 0 and r["ci_low"] == 0 == r["ci_high"] and not r["significant"]
    assert r["verdict"] == "no detectable difference" and "no difference detectable at N = 400" in comp.summary["verdict"]
    # every re-labelling of identical sets is as extreme as 0: the sequential test stops at the 10th, p = 10 / 10
    assert r["p_value"] == 1 and r["relabellings"] == 10
    assert r["method"].endswith("permutation test (10 of 1000 re-labellings, stopped at 10 as extreme)")
    assert comp.summary["permutation_test"] == {"permutations": 1000, "sequential": 10}


def test_unseen_real_digits_are_not_told_apart(tmp_path: Path) -> None:
    """Two disjoint sets of real test digits are the same distribution: the interval must cover 0."""
    imgs = ((bank_images(n=2400).numpy()[:, 0] + 1) * 127.5).round().astype(np.uint8)
    np.savez(tmp_path / "a.npz", images=imgs[:1200])
    np.savez(tmp_path / "b.npz", images=imgs[1200:])
    comp = compare([tmp_path / "a.npz", tmp_path / "b.npz"], **{**FAST, "num_samples": 1200})
    r = comp.differences.iloc[0]
    assert not r["significant"] and r["ci_low"] < 0 < r["ci_high"]
    assert r["method"] == ("bootstrap over samples (independent resamples); verdict by a permutation test "
                           f"({r['relabellings']} of 1000 re-labellings, stopped at 10 as extreme)")
    assert r["p_value"] > 0.05 and r["p_value"] == 10 / r["relabellings"] and r["relabellings"] < 1000


def test_several_runs_per_arm_use_welch_over_runs(runs: dict[str, Path]) -> None:
    comp = compare({"clean": [runs["good"], runs["good2"]], "bad": [runs["noisy"], runs["two"]]}, **FAST)
    r = comp.differences.iloc[0]
    m = comp.members.set_index("checkpoint")["mnist_fd"]
    clean = [m[n] for n in comp.arm_members["clean"]]
    bad = [m[n] for n in comp.arm_members["bad"]]
    ref = stats.ttest_ind(bad, clean, equal_var=False)
    assert r["method"] == "Welch t-interval over runs" and r["p_value"] == pytest.approx(ref.pvalue)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert r["difference"] == pytest.approx(np.mean(bad) - np.mean(clean))
    arms = comp.arms.set_index("arm")
    assert arms.loc["bad", "mnist_fd_sd"] == pytest.approx(np.std(bad, ddof=1))


def test_one_run_against_several_says_seed_variation_is_left_out(runs: dict[str, Path]) -> None:
    comp = compare({"one": runs["good"], "many": [runs["good2"], runs["noisy"]]}, **FAST)
    r = comp.differences.iloc[0]
    assert "run-to-run variation not included" in r["method"]
    assert any("one: a single run" in n for n in comp.summary["notes"])


def test_bad_run_is_reported_and_the_others_compared(runs: dict[str, Path], tmp_path: Path, cli) -> None:
    broken = tmp_path / "broken" / "ckpt_0001000.safetensors"
    broken.parent.mkdir()
    broken.write_bytes(b"not a checkpoint")
    code, out, err = cli("compare", "--arm", "good", runs["good"], "--arm", "mixed", runs["two"], broken, "--arm", "bad", broken,
                         "--metrics", "mnist_fd", "--num-samples", 300, "--bootstrap", 30, "--device", "cpu",
                         "--out", tmp_path / "out")
    assert code == 1 and "ganeval: error:" in err and "broken" in err
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    by_arm = {d["arm"]: d for d in data["differences"]}
    assert by_arm["mixed"]["verdict"] == "worse" and by_arm["mixed"]["runs"] == 1
    assert by_arm["bad"]["method"] == "not computed in both arms"
    good = next(r for r in data["rows"] if r["arm"] == "good")
    assert by_arm["bad"]["baseline_value"] == good["mnist_fd"] and by_arm["bad"]["value"] is None  # NaN → null
    assert data["n_errors"] == 2


def test_cli_positional_and_json(runs: dict[str, Path], tmp_path: Path, cli) -> None:
    code, out, err = cli("compare", runs["good"], runs["noisy"], "--metrics", "mnist_fd", "--num-samples", 300,
                         "--bootstrap", 30, "--device", "cpu", "--out", tmp_path / "o", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [a["arm"] for a in data["arms"]] == ["good/ckpt_0001000", "noisy/ckpt_0001000"]
    assert data["differences"][0]["verdict"] == "worse"


def test_cli_sequential_says_how_many_relabellings_were_drawn(runs: dict[str, Path], tmp_path: Path, cli) -> None:
    for h, drawn in (("4", 4), ("0", 1000)):  # one model against itself: every re-labelling is as extreme
        code, out, err = cli("compare", "--arm", "a", runs["good"], "--arm", "b", runs["good"], "--metrics", "mnist_fd",
                             "--num-samples", 300, "--bootstrap", 30, "--device", "cpu", "--sequential", h,
                             "--out", tmp_path / h, "--json")
        assert code == 0, err
        row = json.loads(out)["differences"][0]
        assert row["relabellings"] == drawn and row["p_value"] == 1
        assert f"({drawn} of 1000 re-labellings" in row["method"] and ("stopped at 4" in row["method"]) == (h == "4")
        assert pd.read_csv(tmp_path / h / "differences.csv")["relabellings"].tolist() == [drawn]


def test_no_progress_still_prints_the_scoring_notes(runs: dict[str, Path], tmp_path: Path, cli) -> None:
    """`--no-progress` says the notes are printed once scoring ends: compare printed none (score and gate do)."""
    code, _, err = cli("compare", runs["good"], runs["noisy"], "--metrics", "mnist_fd", "mnist_fd_inf", "--num-samples", 200,
                       "--bootstrap", 10, "--device", "cpu", "--no-progress", "--out", tmp_path / "o")
    assert code == 0 and err.startswith("note: mnist_fd_inf unavailable") and err.count("note: mnist_fd_inf") == 1, err
    assert "no native bf16" not in err


def test_bf16_on_a_cpu_that_emulates_it_is_noted_once(runs: dict[str, Path], tmp_path: Path, cli,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """compare scores every arm: the emulated-bf16 note of its scoring is printed once, not once per arm."""
    import ganeval.devices as devices

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    for progress in ([], ["--no-progress"]):
        code, _, err = cli("compare", runs["good"], runs["noisy"], "--metrics", "mnist_fd", "--num-samples", 100,
                           "--bootstrap", 10, "--device", "cpu", "--precision", "bf16", "--out", tmp_path / "o", *progress)
        assert code == 0 and err.count("note: --precision bf16: this CPU has no native bf16") == 1, err


def test_relabellings_are_a_count_beside_rows_without_a_test(runs: dict[str, Path], tmp_path: Path) -> None:
    """A path-length row (decided by its interval) beside the FD's permutation test made the column float:
    differences.csv said "1000.0" re-labellings; it is a count, empty where no test was drawn."""
    comp = compare({"a": runs["good"], "b": runs["noisy"]}, **{**FAST, "metrics": ("mnist_fd", "mnist_ppl"),
                                                              "num_samples": 200, "bootstrap": 20}, out=tmp_path / "o")
    assert comp.differences["relabellings"].tolist()[0] == 1000 and pd.isna(comp.differences["relabellings"].iloc[1])
    lines = (tmp_path / "o" / "differences.csv").read_text().splitlines()
    assert ",1000,1,1," in lines[1] and "1000.0" not in lines[1], lines


@pytest.mark.parametrize(("argv", "problem"), [
    (["X"], "at least two models"),
    (["X", "--arm", "a", "X"], "not both"),
    (["--arm", "a", "X", "--arm", "a", "X"], "given twice"),
    (["--arm", "a", "X", "--arm", "b", "X", "--baseline", "c"], "baseline 'c' is not one of the arms"),
    (["--arm", "a", "X", "--arm", "b", "FOLDER"], "holds 2 checkpoints"),
    (["--arm", "a", "X", "X", "--arm", "b", "X"], "is given twice; an arm's runs must be different runs"),
    (["X", "X", "--permutations", "18"], "--permutations 18 cannot find any difference at --ci 0.95"),
    (["X", "X", "--permutations", "98", "--ci", "0.99"], "give at least 99, or 0 to decide by the interval"),
])
def test_usage_errors_exit_2(runs: dict[str, Path], tmp_path: Path, cli, argv: list[str], problem: str) -> None:
    folder = tmp_path / "two_ckpts"
    write_bank_checkpoint(folder, 1000)
    write_bank_checkpoint(folder, 2000)
    argv = [str(runs["good"]) if a == "X" else str(folder) if a == "FOLDER" else a for a in argv]
    code, out, err = cli("compare", *argv, "--metrics", "mnist_fd", "--num-samples", 100, "--device", "cpu")
    assert code == 2 and problem in err and err.count("\n") == 1, err


def test_nan_samples_arm_is_worse_without_an_interval(runs: dict[str, Path], tmp_path: Path) -> None:
    nan = write_bank_checkpoint(tmp_path / "nan", 1000, emit_nan=True)
    comp = compare({"good": runs["good"], "nan": nan}, **FAST)
    r = comp.differences.iloc[0]
    assert r["verdict"] == "worse" and r["difference"] == float("inf") and r["method"].startswith("non-finite")
    assert comp.members.set_index("arm").loc["nan", "status"] == "nan_samples" and not comp.failed


def test_pick_best_and_last_from_a_checkpoint_folder(runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000, noise=0.5)
    write_bank_checkpoint(run, 2000)
    write_bank_checkpoint(run, 3000, noise=0.3)
    best = compare({"ref": runs["two"], "run": run}, pick="best", out=tmp_path / "o", **FAST)
    (name,) = best.arm_members["run"]
    assert name == "run (best: ckpt_0002000.safetensors)" and best.summary["seed"] == 1 and best.summary["selection_seed"] == 0
    assert any("winner's curse" in n for n in best.summary["notes"])
    curve = best.curves[name]
    assert curve["iteration"].tolist() == [1000, 2000, 3000] and curve["picked"].tolist() == [False, True, False]
    assert best.differences.iloc[0]["verdict"] == "better"
    # the compared value is a fresh-seed score of the picked checkpoint
    fresh = score(run / "ckpt_0002000.safetensors", **{**FAST, "seed": 1}).iloc[0]
    assert best.members.set_index("arm").loc["run", "mnist_fd"] == pytest.approx(float(fresh["mnist_fd"]), rel=1e-9)
    assert "Over training" in (tmp_path / "o" / "compare.html").read_text()
    last = compare({"ref": runs["two"], "run": run}, pick="last", **FAST)
    assert last.arm_members["run"] == ["run (last: ckpt_0003000.safetensors)"] and last.summary["seed"] == 0


def test_pick_from_a_folder_whose_newest_file_or_every_file_fails(runs: dict[str, Path], tmp_path: Path, cli) -> None:
    """--pick last is the newest file even when it cannot be read (as gate's --checkpoint last), and a folder where
    nothing scores is a failed run: exit 1, its error printed, the other runs still compared (not exit 2)."""
    run, dead = tmp_path / "run", tmp_path / "dead"
    write_bank_checkpoint(run, 1000)
    for folder in (run, dead):
        folder.mkdir(exist_ok=True)
        (folder / "ckpt_0002000.safetensors").write_bytes(b"truncated")
    (dead / "ckpt_0003000.safetensors").write_bytes(b"")
    last = compare({"ref": runs["good"], "run": run}, pick="last", **FAST)
    row = last.members.set_index("arm").loc["run"]
    assert last.failed and row["status"] == "error" and "ckpt_0002000.safetensors" in row["error"]
    assert last.arm_members["run"] == ["run (last: ckpt_0002000.safetensors)"]
    code, out, err = cli("compare", "--arm", "ref", runs["good"], "--arm", "dead", dead, "--arm", "two", runs["two"],
                         "--pick", "best", "--metrics", "mnist_fd", "--num-samples", 300, "--bootstrap", 30,
                         "--device", "cpu", "--no-progress", "--out", tmp_path / "o")
    assert code == 1 and "dead: no checkpoint could be scored to pick the best one" in err, err
    assert "ckpt_0003000.safetensors: " in err and "two vs ref: MNIST FD" in out and "two is worse" in out
    data = json.loads((tmp_path / "o" / "compare.json").read_text())
    assert {d["arm"]: d["method"] for d in data["differences"]}["dead"] == "not computed in both arms"
    assert [m["name"] for a in data["arms"] if a["arm"] == "dead" for m in a["members"]] == ["dead (best: none scored)"]


def test_two_arms_with_nan_samples_are_not_measurable(tmp_path: Path) -> None:
    a = write_bank_checkpoint(tmp_path / "a", 1000, emit_nan=True)
    b = write_bank_checkpoint(tmp_path / "b", 1000, emit_nan=True)
    comp = compare({"a": a, "b": b}, **FAST)
    r = comp.differences.iloc[0]
    assert r["verdict"] == "not measurable" and not r["significant"], r
    assert "b vs a: MNIST FD not measurable in either (samples with NaN/Inf values)." in comp.summary["verdict"]


def test_markdown_escapes_what_users_name(runs: dict[str, Path]) -> None:
    from ganeval.report.comparison import markdown

    comp = compare({"a | `x`": runs["good"], "b|<i>": runs["noisy"]}, **{**FAST, "bootstrap": 0})
    text = markdown(comp)
    row = next(line for line in text.splitlines() if line.startswith("| b"))
    assert row.startswith(r"| b\|\<i\> | MNIST FD |") and row.count(" | ") == 6, row  # seven cells, as the header
    assert "baseline `` a | `x` ``, N = 400" in text  # a longer fence, padded: CommonMark strips one space each side


def test_folder_without_pick_names_the_flag(tmp_path: Path, runs: dict[str, Path]) -> None:
    from ganeval.errors import GanevalError

    write_bank_checkpoint(tmp_path / "run", 1000)
    write_bank_checkpoint(tmp_path / "run", 2000)
    with pytest.raises(GanevalError, match="holds 2 checkpoints.*--pick best"):
        compare({"a": runs["good"], "b": tmp_path / "run"}, **FAST)


def test_without_bootstrap_nothing_is_claimed(runs: dict[str, Path]) -> None:
    comp = compare({"good": runs["good"], "noisy": runs["noisy"]}, **{**FAST, "bootstrap": 0})
    r = comp.differences.iloc[0]
    assert r["verdict"] == "not tested" and not r["significant"] and r["difference"] > 0
    assert "not tested (no interval: --bootstrap 0" in comp.summary["verdict"]


def test_permutation_p_equals_the_test_on_the_same_features_and_can_be_turned_off(runs: dict[str, Path]) -> None:
    from ganeval.metrics.permutation import fd_difference_test

    comp = compare({"good": runs["good"], "noisy": runs["noisy"]}, **FAST, permutations=99)
    r = comp.differences.iloc[0]
    assert r["method"].endswith("verdict by a paired permutation test (99 of 99 re-labellings)")
    # the same features scored alone, tested by hand: the same p
    fa = ganeval_features(runs["noisy"])
    fb = ganeval_features(runs["good"])
    from ganeval.metrics.fid import FIDReference
    from ganeval.stats import SHIPPED_DIR, load_stats

    st = load_stats(SHIPPED_DIR / "mnist-train_mnist.npz")
    ref = FIDReference(st.mu, st.sigma)
    test = fd_difference_test(fa, fb, ref, paired=True, permutations=99)
    assert r["p_value"] == test.p_value and test.difference == pytest.approx(r["difference"], rel=1e-6)
    # the same pair against itself stops early; in compare as by hand, and sequential=0 draws all 99
    for h, drawn in ((3, 3), (0, 99)):
        same = compare({"a": runs["noisy"], "b": runs["noisy"]}, **FAST, permutations=99, sequential=h).differences.iloc[0]
        by_hand = fd_difference_test(fa, fa.clone(), ref, paired=True, permutations=99, sequential=h)
        assert same["relabellings"] == by_hand.drawn == drawn and same["p_value"] == by_hand.p_value == 1
    off = compare({"good": runs["good"], "noisy": runs["noisy"]}, **FAST, permutations=0).differences.iloc[0]
    assert off["method"] == "paired bootstrap over samples" and pd.isna(off["p_value"])
    with pytest.raises(GanevalError, match="--permutations"):
        compare({"good": runs["good"], "noisy": runs["noisy"]}, **FAST, permutations=-1)
    with pytest.raises(GanevalError, match="--sequential"):
        compare({"good": runs["good"], "noisy": runs["noisy"]}, **FAST, sequential=-1)


def ganeval_features(ckpt: Path) -> torch.Tensor:
    """MNIST-classifier features of the checkpoint's N samples on the shared latent set (seed 0), as score takes them."""
    from ganeval.distributed import DistContext
    from ganeval.extraction import extract
    from ganeval.features.mnist_classifier import MNISTClassifierExtractor
    from ganeval.inputs import resolve_target

    src = resolve_target(ckpt).sources[0]
    got = extract(src, [MNISTClassifierExtractor(device="cpu")], FAST["num_samples"], 0, 100, torch.device("cpu"),
                  DistContext(), False)
    return got.pool["mnist"]


def test_markdown_and_github_step_summary(runs: dict[str, Path], tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, err = cli("compare", "--arm", "good", runs["good"], "--arm", "noisy", runs["noisy"], "--metrics", "mnist_fd",
                       "--num-samples", 300, "--bootstrap", 30, "--device", "cpu", "--no-progress", "--out", tmp_path / "o")
    assert code == 0, err
    text = summary.read_text()
    assert text.startswith("# earlier step\n### ganeval compare — baseline `good`, N = 300")
    assert "| noisy | MNIST FD |" in text and "| worse |" in text and "noisy is worse" in text
    assert (tmp_path / "o" / "compare.md").read_text() == text[len("# earlier step\n"):]


def test_real_floor_is_shown_beside_the_arms_and_changes_no_difference(runs: dict[str, Path], tmp_path: Path, cli) -> None:
    args = ("compare", runs["good"], runs["noisy"], "--metrics", "mnist_fd", "--num-samples", 300, "--bootstrap", 30,
            "--device", "cpu", "--no-progress", "--permutations", 0)
    code, out, err = cli(*args, "--out", tmp_path / "plain", "--json")
    assert code == 0, err
    plain = json.loads(out)
    code, out, err = cli(*args, "--out", tmp_path / "floor", "--json", "--real-floor")
    assert code == 0, err
    data = json.loads(out)
    floor = data["real_floor"]["values"]["mnist_fd"]
    assert plain["real_floor"] is None and data["differences"] == plain["differences"]
    assert data["verdict_lines"][-1] == f"Real held-out images score mnist_fd {floor:.3g} at this N (the floor; not an arm)."
    assert len(data["rows"]) == 2 and 0 < floor < min(r["mnist_fd"] for r in data["rows"])
    page = (tmp_path / "floor" / "compare.html").read_text()
    assert page.count("<tr class=floor>") == 1


def test_fewest_permutations_can_still_find_a_difference(runs: dict[str, Path]) -> None:
    """The least P accepted (19 at 95 %) can decide "worse": its smallest p, 1 / 20, is below 1 − level as the verdict
    compares them; 18 is refused (above, exit 2), as was nothing before, which then said "no difference detectable"."""
    from ganeval.compare_tests import min_permutations

    assert [min_permutations(level) for level in (0.5, 0.9, 0.95, 0.99)] == [2, 10, 19, 99]
    r = compare([runs["good"], runs["noisy"]], permutations=19, **FAST).differences.iloc[0]
    assert r["verdict"] == "worse" and r["p_value"] == 1 / 20 and r["relabellings"] == 19


def test_generator_class_from_python_is_named_in_the_reports(tmp_path: Path) -> None:
    """``generator=<a class>`` (docs/inputs.md) once broke JSON after six of seven report files were written."""
    from synthetic import BankGenerator

    from ganeval.report.comparison import write_comparison

    kwargs = {"latent_dim": 16, "bank_size": 500, "noise": 0.0}
    for name, digits in (("a", None), ("c", (1, 7))):
        g = BankGenerator(**kwargs)
        g.bank.copy_(bank_images(digits, 500))
        torch.save(g.state_dict(), tmp_path / f"{name}.pt")
    common = {**FAST, "metrics": ("mnist_fd",), "num_samples": 300, "generator": BankGenerator, "generator_kwargs": kwargs,
              "z_dim": 16}
    comp = compare({"a": tmp_path / "a.pt", "c": tmp_path / "c.pt"}, out=tmp_path / "out", **common)
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert data["options"]["extra"]["generator"] == "synthetic:BankGenerator" and data["differences"][0]["verdict"] == "worse"
    assert len(list((tmp_path / "out").iterdir())) == 7
    score(tmp_path / "c.pt", out=tmp_path / "score", **common)
    summary = json.loads((tmp_path / "score" / "summary.json").read_text())
    assert summary["options"]["extra"]["generator"] == "synthetic:BankGenerator"
    comp.summary["unencodable"] = object()  # a report that cannot be encoded writes no file at all
    with pytest.raises(TypeError):
        write_comparison(comp, tmp_path / "half")
    assert not (tmp_path / "half").exists() or not any((tmp_path / "half").iterdir())


def test_mnist_space_metrics_get_arm_means(runs: dict[str, Path], tmp_path: Path, cli) -> None:
    """KID, precision/recall and density/coverage in MNIST features are per-arm readings like Inception's."""
    wanted = ["mnist_kid_mean", "mnist_precision", "mnist_recall", "mnist_density", "mnist_coverage"]
    comp = compare({"clean": [runs["good"], runs["good2"]], "noisy": runs["noisy"]}, out=tmp_path / "o",
                   **{**FAST, "metrics": ("mnist_fd", "mnist_kid", "mnist_prc", "mnist_dc"), "kid_subsets": 10,
                      "kid_subset_size": 100})
    arms = comp.arms.set_index("arm")
    m = comp.members.set_index("checkpoint")
    for col in wanted:
        assert arms.loc["noisy", col] == pytest.approx(m.loc["noisy", col])
        clean = [m.loc[n, col] for n in comp.arm_members["clean"]]
        assert arms.loc["clean", col] == pytest.approx(np.mean(clean))
        assert arms.loc["clean", f"{col}_sd"] == pytest.approx(np.std(clean, ddof=1))
    assert set(wanted) <= set(pd.read_csv(tmp_path / "o" / "arms.csv").columns)
    assert set(wanted) <= set(json.loads((tmp_path / "o" / "compare.json").read_text())["arm_means"][0])
    assert all(f"<th>{c}</th>" in (tmp_path / "o" / "compare.html").read_text() for c in wanted)
    code, out, err = cli("compare", runs["good"], runs["noisy"], "--metrics", "mnist_fd,mnist_prc,mnist_dc", "--num-samples", 300,
                         "--bootstrap", 30, "--device", "cpu", "--no-progress", "--out", tmp_path / "cli")
    assert code == 0 and "mnist_precision" in out and "mnist_recall" in out, err
    header = out.splitlines()[0].split()  # not a terminal: one line per arm, however wide (logs stay greppable)
    assert header[0] == "arm" and {"mnist_fd", "mnist_precision", "mnist_recall", "mnist_coverage"} <= set(header), out


def test_verdict_states_the_n_scored_not_the_n_asked(tmp_path: Path) -> None:
    """Sample sets of 300 images compared at --num-samples 500 are compared at N = 300."""
    imgs = ((bank_images(n=600).numpy()[:, 0] + 1) * 127.5).round().astype(np.uint8)
    np.savez(tmp_path / "a.npz", images=imgs[:300])
    np.savez(tmp_path / "b.npz", images=imgs[300:])
    comp = compare([tmp_path / "a.npz", tmp_path / "b.npz"], **{**FAST, "num_samples": 500})
    assert comp.differences.iloc[0]["verdict"] == "no detectable difference"
    assert "no difference detectable at N = 300;" in comp.summary["verdict"], comp.summary["verdict"]
    from ganeval.compare_tests import n_text

    assert (n_text([300, 500, 500]), n_text([10_000]), n_text([])) == ("300–500", "10,000", "?")


def test_untested_flags_of_an_arm_are_not_no(runs: dict[str, Path], tmp_path: Path) -> None:
    """Without modes (or copying) no run of an arm was tested for mode collapse or data copying: arms.csv, compare.json
    and compare.html say "not tested" (empty, null), not False, which read as "tested, none found"."""
    comp = compare({"good": runs["good"], "two": runs["two"]}, out=tmp_path / "out",
                   **{**FAST, "metrics": ("mnist_fd",), "permutations": 0})
    arms = comp.arms.set_index("arm")
    assert arms["mode_collapse_sure"].isna().all() and arms["data_copying"].isna().all()
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert all(a["mode_collapse_sure"] is None for a in data["arm_means"]), data["arm_means"]
    assert pd.read_csv(tmp_path / "out" / "arms.csv")["mode_collapse_sure"].isna().all()
    assert "not tested" in (tmp_path / "out" / "compare.html").read_text()
    tested = compare({"good": runs["good"], "two": runs["two"]}, **{**FAST, "permutations": 0}).arms.set_index("arm")
    assert tested["mode_collapse_sure"].tolist() == [False, True]  # tested: a real no, and a yes


def test_stored_sets_of_other_sizes_get_the_permutation_test(tmp_path: Path) -> None:
    """Two sample sets of 250 and 150 images: the permutation test was skipped without a word (p empty, the verdict
    from the interval alone) though --permutations was given; the pool is now split back at the sets' sizes."""
    from ganeval.data import load_mnist

    images = load_mnist("test")[0]
    np.savez(tmp_path / "a.npz", images=images[5000:5250])
    np.savez(tmp_path / "b.npz", images=images[6000:6150])
    comp = compare([tmp_path / "a.npz", tmp_path / "b.npz"], metrics=("mnist_fd",), num_samples=300, bootstrap=40,
                   permutations=100, device="cpu", progress=False)
    row = comp.differences.iloc[0]
    assert "permutation test" in row["method"] and 0.05 < row["p_value"] <= 1 and row["relabellings"] > 0, row.to_dict()
