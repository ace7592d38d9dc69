"""Settings that change nothing for the metrics asked for are refused, as the unread inputs are (test_option_checks):
the Inception plan (``--inception-all``, ``--inception-top-k``) without an Inception metric or a top K to pick, the
mode-collapse limits without ``modes``, the KID subsets without a KID, ``compare --permutations``/``--sequential``
where no permutation test runs, ``watch --report-metrics`` without ``--report``. One line, exit 2
(``GanevalError`` from the API), before any work; the defaults given explicitly are taken, and what ganeval sets
itself (compare's and gate's plans, early stopping's test) is never refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from synthetic import write_bank_checkpoint

import ganeval
from ganeval.comparing import compare
from ganeval.errors import GanevalError
from ganeval.gating import gate

FAST: dict[str, Any] = {"num_samples": 200, "bootstrap": 0, "device": "cpu", "progress": False}
SCORING = ("--num-samples", 200, "--bootstrap", 0, "--device", "cpu", "--no-progress")


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A one-checkpoint run folder."""
    write_bank_checkpoint(tmp_path / "run", 1000)
    return tmp_path / "run"


def _argv(command: str, run: Path) -> tuple[Any, ...]:
    one = run / "ckpt_0001000.safetensors"
    return {"score": ("score", run), "gate": ("gate", run, "--max-mnist-fd", 1000), "compare": ("compare", one, one)}[command]


PLAN = [  # (flags, --metrics, the refusal)
    (("--inception-all",), ("mnist_fd",), "--inception-all is read only by an Inception metric, and --metrics (mnist_fd) has none"),
    (("--inception-top-k", 1), ("mnist_fd",), "--inception-top-k is read only by an Inception metric beside mnist_fd"),
    (("--inception-top-k", 1), ("fid", "kid"), "--inception-top-k is read only by an Inception metric beside mnist_fd (the K "
                                               "best by MNIST FD get the Inception metrics; without mnist_fd every checkpoint "
                                               "does), and --metrics (fid, kid) has none"),
]


@pytest.mark.parametrize(("flags", "metrics", "want"), PLAN)
@pytest.mark.parametrize("command", ["score", "gate", "compare"])
def test_the_inception_plan_without_a_plan_to_change_is_refused(run: Path, tmp_path: Path, cli, command: str,
                                                                flags: tuple, metrics: tuple[str, ...], want: str) -> None:
    """--inception-all with MNIST metrics alone, --inception-top-k where no top K is picked (no Inception metric, or no
    MNIST FD to pick by: every checkpoint gets them) were taken and ignored, exit 0: one line, exit 2, nothing written."""
    code, out, err = cli(*_argv(command, run), *SCORING, "--metrics", *metrics, *flags, "--out", tmp_path / "out")
    assert code == 2 and out == "" and want in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out").exists() and not (run / "report").exists()
    kwargs = {"inception_all": True} if flags[0] == "--inception-all" else {"inception_top_k": flags[1]}
    with pytest.raises(GanevalError, match=re.escape(want)):
        ganeval.score(run, **{**FAST, "metrics": metrics, **kwargs})


def test_the_api_refuses_a_top_k_beside_inception_all(run: Path) -> None:
    """The CLI makes the two flags exclusive; the API took both, and inception_all=True left the K unread."""
    with pytest.raises(GanevalError, match="--inception-top-k picks the checkpoints that get Inception metrics, and "
                                           "inception_all=True gives them to every one: leave one out"):
        ganeval.score(run, **{**FAST, "metrics": ("fid", "mnist_fd")}, inception_all=True, inception_top_k=1)


def test_compare_refuses_a_top_k_without_pick(run: Path, tmp_path: Path, cli) -> None:
    """compare gives every compared run the Inception metrics itself: --inception-top-k is read only by --pick's
    scoring of a folder, and without it was taken in silence."""
    one = run / "ckpt_0001000.safetensors"
    code, out, err = cli("compare", one, one, *SCORING, "--metrics", "fid", "mnist_fd", "--inception-top-k", 1,
                         "--out", tmp_path / "out")
    want = "--inception-top-k picks the checkpoints of a run's folder that get Inception metrics (--pick)"
    assert code == 2 and out == "" and want in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out").exists()
    with pytest.raises(GanevalError, match=re.escape(want)):
        compare([one, one], **{**FAST, "metrics": ("fid", "mnist_fd")}, inception_top_k=1)


@pytest.mark.parametrize(("option", "value", "reader", "metric"), [
    ("min_modes", 11, "the modes metric (its mode-collapse flag)", "modes"),
    ("max_class_kl", 0.5, "the modes metric (its mode-collapse flag)", "modes"),
    ("mode_min_share", 0.05, "the modes metric (its mode-collapse flag)", "modes"),
    ("kid_subsets", 10, "a KID metric (kid, mnist_kid, custom_kid)", "mnist_kid"),
    ("kid_subset_size", 100, "a KID metric (kid, mnist_kid, custom_kid)", "mnist_kid"),
])
def test_metric_settings_without_their_metric_are_refused(run: Path, tmp_path: Path, option: str, value: Any,
                                                          reader: str, metric: str) -> None:
    """The mode-collapse limits without modes and the KID subsets without a KID were recorded in summary.json's
    options and used by nothing: refused, in score and compare. With their metric they are taken (min_modes 11 of
    10 digits flags every checkpoint as collapsed)."""
    want = f"{option} is read only by {reader}, and --metrics (mnist_fd) has none"
    with pytest.raises(GanevalError, match=re.escape(want)):
        ganeval.score(run, **{**FAST, "metrics": ("mnist_fd",), option: value})
    one = run / "ckpt_0001000.safetensors"
    with pytest.raises(GanevalError, match=re.escape(want)):
        compare([one, one], **{**FAST, "metrics": ("mnist_fd",), option: value}, permutations=0)
    df = ganeval.score(run, **{**FAST, "metrics": ("mnist_fd", metric), option: value})
    assert df.attrs["summary"]["options"][option] == value and (df["status"] == "ok").all()
    if option == "min_modes":
        assert bool(df["mode_collapse"].iloc[0])


def test_the_defaults_given_explicitly_are_taken(run: Path) -> None:
    """A default is never refused: the plan's, the mode limits' and the KID subsets' among them."""
    df = ganeval.score(run, **{**FAST, "metrics": ("mnist_fd",)}, inception_all=None, inception_top_k=3, min_modes=10,
                       max_class_kl=0.1, mode_min_share=0.02, kid_subsets=100, kid_subset_size=1000)
    assert (df["status"] == "ok").all()


def test_without_unread_drops_the_plan_and_the_metric_settings() -> None:
    """What gate --baseline MODEL and watch --report use to re-score the user's options on other metrics."""
    from ganeval.options import without_unread

    given = {"inception_all": True, "inception_top_k": 1, "min_modes": 5, "kid_subsets": 10, "seed": 3}
    assert without_unread(given, ("mnist_fd",)) == {"seed": 3}
    assert without_unread(given, ("fid",)) == {"inception_all": True, "seed": 3}  # every checkpoint: no K to pick
    assert without_unread({**given, "inception_all": None}, ("fid", "mnist_fd")) == {"inception_all": None,
                                                                                    "inception_top_k": 1, "seed": 3}


def test_a_baseline_model_on_mnist_fd_is_rescored_without_ganevals_own_plan(tmp_path: Path) -> None:
    """gate --baseline MODEL re-scores on one FD with inception_all=True (its plan, not the user's), and compare set
    inception_all itself: both are left out where the FD is MNIST's, and so are the user's KID and mode settings."""
    good = write_bank_checkpoint(tmp_path / "good", 1000)
    slight = write_bank_checkpoint(tmp_path / "slight", 1000, noise=0.05)
    res = gate(slight, baseline=good, max_regression=500, out=tmp_path / "a", kid_subsets=10, kid_subset_size=100,
               max_class_kl=0.5, **{**FAST, "metrics": ("mnist_fd", "mnist_kid", "modes")})
    assert res.passed and res.criteria[0].metric == "mnist_fd" and res.criteria[0].extra["difference"] > 0
    assert res.summary["options"]["kid_subsets"] == 10 and res.summary["options"]["max_class_kl"] == 0.5


def test_sequential_without_a_permutation_test_is_refused(run: Path, tmp_path: Path, cli) -> None:
    """--sequential stops the permutation test early; --permutations 0 runs none, and the flag was taken in silence."""
    from ganeval.early_stop import EarlyStopper
    from ganeval.train.recipes import TrainError

    one = run / "ckpt_0001000.safetensors"
    code, out, err = cli("compare", one, one, *SCORING, "--metrics", "mnist_fd", "--permutations", 0, "--sequential", 5,
                         "--out", tmp_path / "out")
    want = "--sequential 5 stops the permutation test early, and --permutations 0 runs none: leave one out"
    assert code == 2 and out == "" and want in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out").exists()
    with pytest.raises(GanevalError, match=re.escape(want)):
        compare([one, one], **{**FAST, "metrics": ("mnist_fd",)}, permutations=0, sequential=5)
    with pytest.raises(TrainError, match="sequential 5 stops the permutation test early"):  # at construction, not
        EarlyStopper(num_samples=200, bootstrap=0, device="cpu", permutations=0, sequential=5)  # at the first judgement
    code, _, err = cli("compare", one, one, *SCORING, "--metrics", "mnist_fd", "--permutations", 0, "--sequential", 10,
                       "--out", tmp_path / "default")
    assert code == 0, err


@pytest.mark.parametrize(("argv", "why"), [
    (("--metrics", "fid", "--bootstrap", 30), "decides mnist_fd and custom_fd differences, and --metrics (fid) has neither"),
    (("--metrics", "mnist_fd", "--bootstrap", 0),
     "decides beside the bootstrap interval of the difference, and --bootstrap 0 computes none"),
    (("--metrics", "mnist_fd", "--bootstrap", 30, "--arm", "a", "A", "B", "--arm", "b", "B", "A"),
     "compares one run with one, and every arm here is compared with the baseline over several runs (Welch)"),
])
@pytest.mark.parametrize("flag", [("--permutations", 500), ("--sequential", 3)])
def test_permutation_settings_no_test_reads_are_refused(tmp_path: Path, cli, argv: tuple, why: str, flag: tuple) -> None:
    """The permutation test decides MNIST FD and custom_fd differences (FID's 2048 dimensions are beyond it), beside a
    bootstrap interval, of one run against one: elsewhere --permutations and --sequential were taken in silence."""
    a = write_bank_checkpoint(tmp_path / "a", 1000)
    b = write_bank_checkpoint(tmp_path / "b", 1000, noise=0.1)
    argv = tuple({"A": a, "B": b}.get(v, v) if isinstance(v, str) else v for v in argv)
    targets = () if "--arm" in argv else (a, b)
    code, out, err = cli("compare", *targets, *argv, "--num-samples", 200, "--device", "cpu", "--no-progress", *flag,
                         "--out", tmp_path / "out")
    want = f"{flag[0]} {flag[1]}: the permutation test {why}: leave it out"
    assert code == 2 and out == "" and want in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out").exists()


def test_early_stopping_refuses_test_settings_no_judgement_reads() -> None:
    """EarlyStopper's own default (200 re-labellings) is taken with FID, whose judgements run no test; one given is not."""
    from ganeval.early_stop import EarlyStopper
    from ganeval.train.recipes import TrainError

    assert EarlyStopper(metric="fid", num_samples=200, device="cpu")._test() == {"permutations": 0}
    assert EarlyStopper(num_samples=200, device="cpu")._test() == {"permutations": 200, "sequential": 10}
    with pytest.raises(TrainError, match="--permutations 500: the permutation test decides mnist_fd and custom_fd"):
        EarlyStopper(metric="fid", num_samples=200, device="cpu", permutations=500)


def test_watch_report_metrics_without_report_is_refused(run: Path, tmp_path: Path, cli) -> None:
    """--report-metrics names the metrics of --report's report; without --report the watch judged on --stop-metric and
    the metrics named were taken in silence."""
    code, out, err = cli("watch", run, "--report-metrics", "mnist_fd", "modes", "--idle-timeout", 1, "--settle", 0,
                         "--interval", 0.1, "--num-samples", 200, "--bootstrap", 2, "--device", "cpu",
                         "--out", tmp_path / "out")
    assert code == 2 and out == "" and "--report-metrics goes with --report" in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out").exists() and not (run / "watch.json").exists()
