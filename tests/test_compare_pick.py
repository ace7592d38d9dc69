"""``compare --pick``: a folder is scored as ``score`` would score it, with one plan from the CLI and the API, and
compare.json records the options the folders were scored with."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from synthetic import write_bank_checkpoint

from ganeval.comparing import compare

QUICK = {"num_samples": 20, "bootstrap": 0, "device": "cpu", "progress": False}
#: The Inception plan's top K: given only where an Inception metric and MNIST FD are asked (refused as unread elsewhere).
TOP_1 = {**QUICK, "inception_top_k": 1}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_pick_best_selects_with_one_plan_from_the_cli_and_the_api(tmp_path: Path, cli, weights) -> None:
    """On a CPU, without --inception-all, the folder gets score's plan (Inception metrics on the top-k by MNIST FD
    plus the last), from the shell as from Python; the compared runs get Inception metrics all the same."""
    run = tmp_path / "run"
    for it, noise in ((1000, 0.5), (2000, 0.0), (3000, 0.3), (4000, 0.4)):
        write_bank_checkpoint(run, it, noise=noise)
    other = write_bank_checkpoint(tmp_path / "other", 1000, noise=0.2)
    code, _, err = cli("compare", "--arm", "run", run, "--arm", "other", other, "--pick", "best",
                       "--metrics", "fid", "mnist_fd", "--num-samples", 20, "--bootstrap", 0, "--permutations", 0,
                       "--inception-top-k", 1, "--device", "cpu", "--no-progress", "--out", tmp_path / "cli")
    assert code == 0, err
    shell = json.loads((tmp_path / "cli" / "compare.json").read_text())
    api = compare({"run": run, "other": other}, pick="best", metrics=["fid", "mnist_fd"], permutations=0,
                  out=tmp_path / "api", **TOP_1)
    python = json.loads((tmp_path / "api" / "compare.json").read_text())
    for summary in (shell, python):
        (series,) = summary["series"].values()
        has_fid = [r["checkpoint"] for r in series if r["fid"] is not None and math.isfinite(r["fid"])]
        assert has_fid == ["ckpt_0002000.safetensors", "ckpt_0004000.safetensors"]  # best by MNIST FD, and the last
        assert summary["selection_options"]["inception_all"] is None and summary["selection_options"]["inception_top_k"] == 1
        assert summary["options"]["inception_all"] is True  # every compared run has its FID
        assert all(r["fid"] is not None for r in summary["rows"])
    assert shell["series"] == python["series"] and shell["arms"] == python["arms"]
    assert api.summary["selection_options"] == python["selection_options"]


def test_selection_options_are_null_when_nothing_was_picked(tmp_path: Path) -> None:
    a, b = write_bank_checkpoint(tmp_path / "a", 1000), write_bank_checkpoint(tmp_path / "b", 1000, noise=0.3)
    comp = compare([a, b], metrics=["mnist_fd"], permutations=0, **QUICK)
    assert "selection_options" in comp.summary and comp.summary["selection_options"] is None



def test_unreadable_checkpoint_of_a_picked_folder_is_named_noted_and_exit_1(tmp_path: Path, cli) -> None:
    """The folder is scored as ``score`` would score it, so a checkpoint that cannot be read is an error line naming
    the file, a note (the pick rests on the others) and exit 1; it was dropped silently, exit 0."""
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000, noise=0.5)
    write_bank_checkpoint(run, 3000, noise=0.3)
    (run / "ckpt_0002000.safetensors").write_bytes(b"truncated")
    other = write_bank_checkpoint(tmp_path / "other", 1000, noise=0.2)
    code, out, err = cli("compare", "--arm", "run", run, "--arm", "other", other, "--pick", "best", "--metrics", "mnist_fd",
                         "--num-samples", 20, "--bootstrap", 0, "--permutations", 0, "--device", "cpu", "--no-progress",
                         "--out", tmp_path / "o")
    assert code == 1 and "ganeval: error: " in err and "ckpt_0002000.safetensors" in err, err
    data = json.loads((tmp_path / "o" / "compare.json").read_text())
    assert data["arms"][0]["members"][0]["name"] == "run (best: ckpt_0003000.safetensors)"
    (note,) = [n for n in data["notes"] if "ckpt_0002000.safetensors" in n]
    assert "the best checkpoint was picked among the others" in note and data["series_errors"]
    assert "ckpt_0002000.safetensors" in (tmp_path / "o" / "compare.html").read_text()
    api = compare({"run": run, "other": other}, pick="best", metrics=["mnist_fd"], permutations=0, **QUICK)
    assert api.failed and len(api.series_errors) == 1 and (api.members["status"] == "ok").all()
