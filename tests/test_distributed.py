"""A 2-process gloo run under torchrun gives the single-process result; a dying rank fails cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_bank_checkpoint

from ganeval.stats import load_stats

ARGS = ["--num-samples", "300", "--batch-size", "50", "--metrics", "mnist_is", "mnist_fd", "modes", "--bootstrap", "20",
        "--device", "cpu", "--no-cache"]


def _run(cmd: list[str], *, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` with output captured as text, in its own process group, all of which is killed on timeout
    (torchrun's workers would otherwise outlive a hung test and hold the cores for the rest of the suite)."""
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "GANEVAL_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    return env


def _torchrun(tmp_path: Path, run: Path, out: Path, *more: str, **extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganeval_test_entry",
           "score", str(run), "--distributed", "--out", str(out), *ARGS, *more]
    return _run(cmd, env=_env(tmp_path, **extra), timeout=600)


def _same_rows(one: Path, two: Path, cols: tuple[str, ...]) -> tuple[dict, dict]:
    """Both reports' summaries, after checking that their rows agree on ``cols`` to 1e-9 relative."""
    a = json.loads((one / "summary.json").read_text())
    b = json.loads((two / "summary.json").read_text())
    for ra, rb in zip(a["rows"], b["rows"], strict=True):
        for col in cols:
            assert rb[col] == pytest.approx(ra[col], rel=1e-9, abs=0), col
    return a, b


@pytest.fixture
def series(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    for it, noise in zip((1000, 2000, 3000), (0.8, 0.0, 0.5), strict=True):
        write_bank_checkpoint(run, it, noise=noise)
    return run


def test_two_process_gloo_equals_single_process(tmp_path: Path, series: Path) -> None:
    single = _run([sys.executable, "-m", "ganeval_test_entry", "score", str(series), "--out", str(tmp_path / "r1"), *ARGS,
                   "--real-floor"], env=_env(tmp_path), timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    multi = _torchrun(tmp_path, series, tmp_path / "r2", "--real-floor")
    assert multi.returncode == 0, multi.stderr[-3000:]
    a = json.loads((tmp_path / "r1" / "summary.json").read_text())
    b = json.loads((tmp_path / "r2" / "summary.json").read_text())
    assert b["world_size"] == 2 and a["world_size"] == 1
    for ra, rb in zip(a["rows"], b["rows"], strict=True):
        assert ra["checkpoint"] == rb["checkpoint"] and ra["rank"] == rb["rank"]
        for col in ("mnist_fd", "mnist_is", "class_kl", "mnist_fd_ci_low", "mnist_fd_ci_high"):
            assert rb[col] == pytest.approx(ra[col], rel=1e-9, abs=0), col
    assert a["verdict"] == b["verdict"] and a["best"]["checkpoint"] == b["best"]["checkpoint"]
    fa, fb = a["real_floor"]["values"], b["real_floor"]["values"]  # the floor's batches are split over the ranks too
    for col in ("mnist_fd", "mnist_is", "mnist_fd_ci_low"):
        assert fb[col] == pytest.approx(fa[col], rel=1e-9, abs=0), col
    # rank 1 wrote nothing: the cache folder holds no feature files from the --no-cache run, and one report exists
    assert sorted(p.name for p in (tmp_path / "r2").iterdir()) == ["report.html", "scores.csv", "scores.parquet", "summary.json"]


def test_two_process_copying_test_equals_single_process(tmp_path: Path, series: Path) -> None:
    """The copying test under torchrun: every rank computes it from the gathered features, rank 0 alone builds the
    nearest-images panel, and the numbers and flags equal a single process's. The bank generators draw the first 500
    MNIST test digits, so with those digits as the "training set" the noise-free checkpoint is a copier."""
    from ganeval.stats import dataset_images

    test_px = dataset_images("mnist-test")
    np.savez(tmp_path / "train.npz", images=test_px[:500])
    np.savez(tmp_path / "held.npz", images=test_px[500:1000])
    args = [*ARGS[: ARGS.index("--metrics")], "--metrics", "mnist_fd", "copying", *ARGS[ARGS.index("--bootstrap"):],
            "--copy-train", str(tmp_path / "train.npz"), "--copy-heldout", str(tmp_path / "held.npz"), "--copy-cells", "3"]
    single = _run([sys.executable, "-m", "ganeval_test_entry", "score", str(series), "--out", str(tmp_path / "c1"),
                   *args], env=_env(tmp_path), timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganeval_test_entry",
           "score", str(series), "--distributed", "--out", str(tmp_path / "c2"), *args]
    multi = _run(cmd, env=_env(tmp_path), timeout=600)
    assert multi.returncode == 0, multi.stderr[-3000:]
    a, b = _same_rows(tmp_path / "c1", tmp_path / "c2", ("copying_ct", "copy_share", "copying_cells", "data_copying"))
    flagged = {r["iteration"]: r["data_copying"] for r in a["rows"]}
    assert flagged == {1000: False, 2000: True, 3000: False}, a["rows"]
    assert a["data_copying"]["checkpoints"] == b["data_copying"]["checkpoints"] == ["ckpt_0002000.safetensors"]
    assert "Nearest training images" in (tmp_path / "c2" / "report.html").read_text(encoding="utf-8")


def test_dying_rank_fails_cleanly_without_report(tmp_path: Path, series: Path) -> None:
    res = _torchrun(tmp_path, series, tmp_path / "r3", GANEVAL_FAULT_RANK="1")
    assert res.returncode != 0
    assert "rank" in (res.stderr + res.stdout).lower()
    assert not (tmp_path / "r3" / "summary.json").exists()


STATS = ["stats", "--dataset", "mnist-test", "--extractor", "mnist", "--limit", "1000", "--batch-size", "64", "--device", "cpu",
         "--no-progress"]


def _stats(tmp_path: Path, tag: str, procs: int, **extra: str) -> subprocess.CompletedProcess[str]:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1
              else [sys.executable])
    cmd = [*launch, "-m", "ganeval_test_entry", *STATS, "--out", str(tmp_path / f"{tag}.npz"),
           "--save-features", str(tmp_path / f"{tag}_feats.npy")]
    return _run(cmd, env=_env(tmp_path, **extra), timeout=600)


def test_two_process_stats_equal_single_process(tmp_path: Path) -> None:
    single, multi = _stats(tmp_path, "one", 1), _stats(tmp_path, "two", 2)
    assert single.returncode == 0, single.stderr[-2000:]
    assert multi.returncode == 0, multi.stderr[-3000:]
    a, b = load_stats(tmp_path / "one.npz"), load_stats(tmp_path / "two.npz")
    assert (a.meta["world_size"], b.meta["world_size"]) == (1, 2)
    assert a.meta["n"] == b.meta["n"] == 1000 and a.meta["dataset_sha256"] == b.meta["dataset_sha256"]
    # 16 batches (the last one partial) split over two ranks: the float64 sums differ only in summation order
    np.testing.assert_allclose(b.mu, a.mu, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.sigma, a.sigma, rtol=1e-6, atol=1e-12)  # sigma is stored as float32
    # per-image features come back in dataset order, bit for bit, on rank 0 alone
    fa, fb = np.load(tmp_path / "one_feats.npy"), np.load(tmp_path / "two_feats.npy")
    assert fa.shape == (1000, a.mu.size) and np.array_equal(fa, fb)
    assert np.allclose(fb.astype(np.float64).mean(0), b.mu, rtol=1e-5, atol=1e-6)
    assert "2 process(es)" in multi.stdout and multi.stdout.count("wrote ") == 1


def test_two_process_stats_of_a_streamed_folder_equal_single_process(tmp_path: Path) -> None:
    """A folder is read batch by batch, each rank decoding every image to know the batches' bounds: with truncated
    files (fewer images than the headers promise, a short last batch on rank 1) both runs give one set of
    statistics, pixel SHA-256 and saved features."""
    from PIL import Image

    from ganeval.stats import dataset_images

    folder = tmp_path / "digits"
    folder.mkdir()
    for i, im in enumerate(dataset_images("mnist-test")[:300]):
        Image.fromarray(im).save(folder / f"{i:04d}.png")
    for i in (7, 150, 299):
        (folder / f"{i:04d}.png").write_bytes((folder / f"{i:04d}.png").read_bytes()[:50])
    runs = {}
    for tag, procs in (("one", 1), ("two", 2)):
        launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1
                  else [sys.executable])
        res = _run([*launch, "-m", "ganeval_test_entry", "stats", "--dataset", str(folder), "--extractor", "mnist",
                    "--batch-size", "32", "--device", "cpu", "--no-progress", "--out", str(tmp_path / f"{tag}_mnist.npz"),
                    "--save-features", str(tmp_path / f"{tag}.npy")], env=_env(tmp_path), timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        assert res.stderr.count("3 unreadable or truncated image(s) left out") == 1, res.stderr[-2000:]
        runs[tag] = load_stats(tmp_path / f"{tag}_mnist.npz"), np.load(tmp_path / f"{tag}.npy")
    (a, fa), (b, fb) = runs["one"], runs["two"]
    assert a.meta["n"] == b.meta["n"] == 297 and a.meta["dataset_sha256"] == b.meta["dataset_sha256"]
    np.testing.assert_allclose(b.mu, a.mu, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.sigma, a.sigma, rtol=1e-6, atol=1e-12)
    assert fa.shape == (297, a.mu.size) and np.array_equal(fa, fb)


def test_two_process_scores_of_a_streamed_sample_folder_equal_single_process_held(tmp_path: Path) -> None:
    """A folder of samples streamed (GANEVAL_HOLD_IMAGES_MB=0: each rank decodes every image, keeping its own
    batches) under torchrun scores as the folder held whole in one process: unreadable files, a short last batch."""
    from PIL import Image

    from ganeval.stats import dataset_images

    folder = tmp_path / "samples"
    folder.mkdir()
    for i, im in enumerate(dataset_images("mnist-test")[:300]):
        Image.fromarray(im).save(folder / f"{i:04d}.png")
    for i in (7, 150):
        (folder / f"{i:04d}.png").write_bytes((folder / f"{i:04d}.png").read_bytes()[:50])
    args = ["--num-samples", "290", "--batch-size", "50", "--metrics", "mnist_is", "mnist_fd", "modes", "--bootstrap", "20",
            "--device", "cpu", "--no-cache"]
    single = _run([sys.executable, "-m", "ganeval_test_entry", "score", str(folder), "--out", str(tmp_path / "r1"), *args],
                  env=_env(tmp_path), timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganeval_test_entry",
           "score", str(folder), "--distributed", "--out", str(tmp_path / "r2"), *args]
    multi = _run(cmd, env=_env(tmp_path, GANEVAL_HOLD_IMAGES_MB="0"), timeout=600)
    assert multi.returncode == 0, multi.stderr[-3000:]
    a, b = _same_rows(tmp_path / "r1", tmp_path / "r2", ("mnist_fd", "mnist_is", "class_kl", "mnist_fd_ci_low"))
    assert b["world_size"] == 2 and a["rows"][0]["n_bad_images"] == b["rows"][0]["n_bad_images"] == 2
    assert a["rows"][0]["sha256"] == b["rows"][0]["sha256"] and a["notes"] == b["notes"]


def test_stats_dying_rank_writes_nothing(tmp_path: Path) -> None:
    res = _stats(tmp_path, "dead", 2, GANEVAL_FAULT_RANK="1")
    assert res.returncode != 0
    # rank 1 exits 3 (the fault); rank 0 meets the lost peer (exit 1: a run that failed, not the input error's 2,
    # which it was) or torchrun's SIGTERM first
    assert "exitcode  : 2" not in res.stderr, res.stderr[-3000:]
    assert not (tmp_path / "dead.npz").exists() and not (tmp_path / "dead.json").exists()
    assert not (tmp_path / "dead_feats.npy").exists()


FEATURES_SCRIPT = """
import sys
import numpy as np
from ganeval.distributed import from_env, leave_together
from ganeval.features import get_extractor
from ganeval.reference import dataset_features
dist = from_env(True)
feats = dataset_features(sys.argv[1], get_extractor("mnist", device="cpu"), 500, write_cache=False, dist=dist)
if dist.is_main:
    np.save(sys.argv[2], feats.numpy())
leave_together(0)  # leave the group before exit, as the CLI does: else gloo's threads can abort a rank (SIGABRT)
"""


def test_real_set_features_are_split_over_ranks(tmp_path: Path) -> None:
    """A real image set's features (the copying test's training set, a reference's first N images) computed by two
    ranks, four batches between them, equal one process's bit for bit."""
    from ganeval.features import get_extractor
    from ganeval.reference import dataset_features
    from ganeval.stats import dataset_images

    np.savez(tmp_path / "set.npz", images=dataset_images("mnist-test")[:1900])
    (tmp_path / "feats.py").write_text(FEATURES_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(tmp_path / "feats.py"),
           str(tmp_path / "set.npz"), str(tmp_path / "two.npy")]
    res = _run(cmd, env=_env(tmp_path), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    one = dataset_features(tmp_path / "set.npz", get_extractor("mnist", device="cpu"), 500, write_cache=False)
    two = np.load(tmp_path / "two.npy")
    assert two.shape == (1900, 128) and np.array_equal(two, one.numpy())


def test_two_process_compare_equals_single_process(tmp_path: Path, series: Path) -> None:
    """``ganeval compare`` under torchrun: the same differences, intervals and verdicts as one process, one report."""
    args = ["compare", "--arm", "a", str(series / "ckpt_0002000.safetensors"), "--arm", "b", str(series / "ckpt_0003000.safetensors"),
            *ARGS[: ARGS.index("--metrics")], "--metrics", "mnist_fd", *ARGS[ARGS.index("--bootstrap"):]]
    single = _run([sys.executable, "-m", "ganeval_test_entry", *args, "--out", str(tmp_path / "k1")],
                  env=_env(tmp_path), timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganeval_test_entry",
           *args, "--distributed", "--out", str(tmp_path / "k2")]
    multi = _run(cmd, env=_env(tmp_path), timeout=600)
    assert multi.returncode == 0, multi.stderr[-3000:]
    a = json.loads((tmp_path / "k1" / "compare.json").read_text())
    b = json.loads((tmp_path / "k2" / "compare.json").read_text())
    (da,), (db,) = a["differences"], b["differences"]
    for key in ("value", "baseline_value", "difference", "ci_low", "ci_high"):
        assert db[key] == pytest.approx(da[key], rel=1e-9, abs=0), key
    assert da["verdict"] == db["verdict"] == "worse" and a["verdict"] == b["verdict"]
    assert multi.stdout.count("report:") == 1


def test_your_own_generator_and_feature_network_under_torchrun(tmp_path: Path) -> None:
    """--generator weight files and a --feature-network (imported on every rank): the single-process numbers."""
    import pandas as pd
    import torch
    from synthetic import BankGenerator, bank_images

    (tmp_path / "nets.py").write_text("import torch\nfrom torch import nn\n\n\nclass Pooled(nn.Module):\n"
                                      "    def __init__(self):\n        super().__init__()\n        torch.manual_seed(0)\n"
                                      "        self.conv = nn.Conv2d(1, 8, 3, 2)\n\n"
                                      "    def forward(self, x):\n        return self.conv(x).relu().mean((2, 3))\n")
    net = ["--feature-network", f"{tmp_path / 'nets.py'}:Pooled"]
    stats = ["stats", "--dataset", "mnist-test", "--limit", "600", "--extractor", "custom", "--device", "cpu",
             "--batch-size", "100", "--no-progress", *net]
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganeval_test_entry"]
    one = [sys.executable, "-m", "ganeval_test_entry"]
    for launch, ref in ((one, "ref1"), (two, "ref2")):
        res = _run([*launch, *stats, "--out", str(tmp_path / ref / "t_custom.npz")], env=_env(tmp_path),
                   timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
    np.testing.assert_allclose(load_stats(tmp_path / "ref2" / "t_custom.npz").mu, load_stats(tmp_path / "ref1" / "t_custom.npz").mu,
                               rtol=1e-12, atol=1e-15)
    # one batch for two ranks: the idle rank still sizes its sums by the network's width
    res = _run([*two, *stats, "--limit", "50", "--out", str(tmp_path / "ref3" / "t_custom.npz")], env=_env(tmp_path),
               timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert load_stats(tmp_path / "ref3" / "t_custom.npz").meta["n"] == 50
    weights = tmp_path / "weights"
    weights.mkdir()
    clean = bank_images(None, 500)
    pattern = torch.rand(clean.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for it, n in ((1000, 0.8), (2000, 0.0)):
        gen = BankGenerator()
        gen.bank.copy_((clean + n * pattern).clamp(-1, 1))
        torch.save({"G": gen.state_dict()}, weights / f"G_{it}.pt")
    cfg = "{}"
    score = ["score", str(weights), "--generator", "synthetic:BankGenerator", "--generator-kwargs", cfg, "--metrics",
             "custom_fd", "--reference", str(tmp_path / "ref1"), "--num-samples", "300", "--batch-size", "50",
             "--bootstrap", "20", "--device", "cpu", "--no-cache", "--no-progress", *net]
    for launch, out in ((one, "s1"), (two, "s2")):
        res = _run([*launch, *score, "--out", str(tmp_path / out)] + (["--distributed"] if launch is two else []),
                   env=_env(tmp_path), timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
    for out in ("s1", "s2"):
        summary = json.loads((tmp_path / out / "summary.json").read_text())
        assert summary["primary_metric"] == "custom_fd" and summary["best"]["checkpoint"] == "G_2000.pt"
    fa, fb = pd.read_csv(tmp_path / "s1" / "scores.csv"), pd.read_csv(tmp_path / "s2" / "scores.csv")
    assert list(fa.columns) == list(fb.columns) and fa["custom_fd"].iloc[0] > fa["custom_fd"].iloc[1]
    np.testing.assert_allclose(fb["custom_fd"], fa["custom_fd"], rtol=1e-6)
    np.testing.assert_allclose(fb["custom_fd_ci_low"], fa["custom_fd_ci_low"], rtol=1e-6)


FLAKY = """import os

import torch
from synthetic import BankGenerator


class Flaky(BankGenerator):
    \"\"\"A bank generator that runs out of memory on rank 1 only, for the weights whose bank is empty; it logs how
    many latents each rank asks of it.\"\"\"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if os.environ.get("RANK") == "1" and not self.bank.any():
            raise RuntimeError("CUDA out of memory (simulated)")
        with open(os.environ["FLAKY_LOG"], "a") as log:
            log.write(f"{os.environ.get('RANK', '-')} {len(z)}\\n")
        return super().forward(z)
"""


def test_path_lengths_split_over_ranks_and_a_rank_failing_one_checkpoint(tmp_path: Path) -> None:
    """Path lengths under torchrun: each rank computes half the pair batches and every rank gets the single-process
    lengths (so the same PPL and interval). A generator that fails on one rank only fails that checkpoint on every
    rank, with its message, within seconds (no rank left waiting in a gather), and the other checkpoints are scored."""
    import pandas as pd
    import torch
    from synthetic import bank_images

    (tmp_path / "flaky.py").write_text(FLAKY)
    weights = tmp_path / "weights"
    weights.mkdir()
    clean = bank_images(None, 500)
    for it, scale in ((1000, 1.0), (2000, 0.5), (3000, 0.0)):  # 3000: an empty bank, which rank 1 cannot generate
        state = {"bank": clean * scale, "proj": torch.randn(16, 784, generator=torch.Generator().manual_seed(0))}
        torch.save(state, weights / f"G_{it}.pt")
    score = ["score", str(weights), "--generator", "flaky:Flaky", "--generator-kwargs", '{"noise": 0.3}', "--metrics",
             "mnist_fd", "mnist_ppl", "--num-samples", "600", "--batch-size", "50", "--bootstrap", "20", "--device", "cpu",
             "--no-cache", "--no-progress"]
    env = _env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    env["FLAKY_LOG"] = str(tmp_path / "calls.txt")
    one = _run([sys.executable, "-m", "ganeval_test_entry", *score, "--out", str(tmp_path / "p1")], env=env,
               timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                "ganeval_test_entry", *score, "--distributed", "--out", str(tmp_path / "p2")], env=env,
               timeout=300)
    # the path-length pairs of one checkpoint (600, in batches of 250: 1,200 latents) are split over the ranks, three
    # batches for two ranks, so per scored checkpoint rank 0 generates 500 + 200 latents and rank 1 generates 500
    calls = [line.split() for line in (tmp_path / "calls.txt").read_text().splitlines()]
    pairs = {r: sum(int(k) for rank, k in calls if rank == r and int(k) > 50) for r in ("-", "0", "1")}
    assert pairs == {"-": 3 * 1200, "0": 2 * 700, "1": 2 * 500}, pairs
    assert two.returncode == 1, two.stderr[-3000:]  # EXIT_FAILED: a checkpoint could not be scored
    # rank 1 returned first: it waited for rank 0's whole report (torchrun would have stopped rank 0 mid-write)
    assert (tmp_path / "p2" / "summary.json").is_file() and (tmp_path / "p2" / "report.html").is_file()
    a = pd.read_csv(tmp_path / "p1" / "scores.csv").set_index("checkpoint")
    b = pd.read_csv(tmp_path / "p2" / "scores.csv").set_index("checkpoint")
    assert (a["status"] == "ok").all()
    assert list(b["status"]) == ["ok", "ok", "error"]
    assert b.loc["G_3000.pt", "error"] == "G_3000.pt: RuntimeError: CUDA out of memory (simulated) (on rank 1)"
    ok = ["G_1000.pt", "G_2000.pt"]
    assert a.loc[ok, "mnist_ppl"].min() > 1 and a.loc["G_1000.pt", "mnist_ppl"] != a.loc["G_2000.pt", "mnist_ppl"]
    for col in ("mnist_ppl", "mnist_ppl_ci_low", "mnist_ppl_ci_high", "mnist_fd"):
        np.testing.assert_allclose(b.loc[ok, col], a.loc[ok, col], rtol=1e-9, err_msg=col)


NODE_CACHE_ENTRY = """import os
import sys

os.environ["GANEVAL_CACHE_DIR"] = os.environ["GANEVAL_CACHE_DIR"] + os.environ["RANK"]  # a cache folder per "node"
import synthetic  # noqa: E402,F401

from ganeval.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
"""


def test_a_rank_without_rank_0s_cache_files_does_not_hang(tmp_path: Path, series: Path) -> None:
    """Two nodes with their own cache folders: rank 0's holds the features and metric values of an earlier run, rank
    1's is empty. Every rank then computes its share again (a cache hit is used only when all ranks hit), so the run
    ends, with the single-process numbers, instead of rank 1 waiting in a gather that rank 0 skipped."""
    args = ["score", str(series), "--num-samples", "600", "--batch-size", "50", "--metrics", "mnist_fd", "mnist_ppl",
            "--bootstrap", "20", "--device", "cpu", "--no-progress"]
    env = _env(tmp_path, GANEVAL_CACHE_DIR=str(tmp_path / "cache"))
    one = _run([sys.executable, "-m", "ganeval_test_entry", *args, "--out", str(tmp_path / "n1")],
               env={**env, "GANEVAL_CACHE_DIR": str(tmp_path / "cache0")}, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    assert any((tmp_path / "cache0").rglob("*.npz")) and not (tmp_path / "cache1").exists()
    (tmp_path / "entry.py").write_text(NODE_CACHE_ENTRY)
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                str(tmp_path / "entry.py"), *args, "--distributed", "--out", str(tmp_path / "n2")], env=env,
               timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    _same_rows(tmp_path / "n1", tmp_path / "n2", ("mnist_fd", "mnist_fd_ci_low", "mnist_ppl", "mnist_ppl_ci_high"))
    assert not any((tmp_path / "cache1").rglob("*.npz"))  # rank 1 computed, but only rank 0 writes the cache


FLAKY_NET = """import os

import torch
from torch import nn


class Pooled(nn.Module):
    \"\"\"A small feature network that runs out of memory on rank 1 once it has seen more than ``after`` batches.\"\"\"

    def __init__(self, after: int = 0):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 8, 3, 2)
        self.after, self.seen = after, 0

    def forward(self, x):
        self.seen += 1
        if os.environ.get("RANK") == "1" and self.seen > self.after:
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.conv(x).relu().mean((2, 3))
"""


@pytest.mark.parametrize("after", [0, 2])
def test_stats_rank_failing_its_share_fails_every_rank_at_once(tmp_path: Path, after: int) -> None:
    """A feature network that fails on rank 1 (at its first image, while sizing the sums; or mid-pass): every rank
    stops with that rank's message and exit code 1 within seconds, instead of rank 0 waiting in the sum, and no
    statistics file is written."""
    (tmp_path / "flakynet.py").write_text(FLAKY_NET)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganeval_test_entry",
           "stats", "--dataset", "mnist-test", "--limit", "600", "--extractor", "custom", "--device", "cpu", "--batch-size",
           "50", "--no-progress", "--feature-network", f"{tmp_path / 'flakynet.py'}:Pooled",
           "--feature-network-kwargs", json.dumps({"after": after}), "--out", str(tmp_path / "t_custom.npz")]
    res = _run(cmd, env=_env(tmp_path), timeout=300)
    assert res.returncode != 0 and not (tmp_path / "t_custom.npz").exists()
    assert "RuntimeError: CUDA out of memory (simulated) (on rank 1)" in res.stderr, res.stderr[-3000:]
    assert "exitcode  : 1" in res.stderr and "peer rank died" not in res.stderr, res.stderr[-3000:]


def test_a_cached_rerun_with_realism_examples_and_the_gate_print_once(tmp_path: Path, series: Path) -> None:
    """A second run that finds every value cached: rank 0 alone draws the realism examples (real features by
    itself, no collective its peers are not in), so it exits 0 with its report; gate prints its verdict once."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganeval_test_entry"]
    opts = ["--num-samples", "200", "--batch-size", "50", "--metrics", "mnist_fd", "mnist_realism", "--bootstrap", "0",
            "--device", "cpu", "--no-progress", "--distributed"]
    for out in ("c1", "c2"):
        res = _run([*cmd, "score", str(series), "--out", str(tmp_path / out), *opts], env=_env(tmp_path), timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "most realistic" in (tmp_path / out / "report.html").read_text().lower()
    res = _run([*cmd, "gate", str(series), "--max-mnist-fd", "1000", "--out", str(tmp_path / "g"), *opts],
               env=_env(tmp_path), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("gate: passed") == 1 and res.stdout.count("PASS max_mnist_fd") == 1, res.stdout


LEAVE = """import os, sys, time
from pathlib import Path
import torch.distributed as dist
from ganeval.distributed import leave_together
dist.init_process_group("gloo")
mark = Path(sys.argv[1])
if dist.get_rank() == 0:
    time.sleep(2)  # rank 0 still writing its report
    mark.write_text("done")
    print("code", leave_together(1))
else:  # returned at once (its share failed a checkpoint too): it must not leave before rank 0 is done
    code = leave_together(1)
    print("code", code, "after rank 0" if mark.exists() else "before rank 0")
"""


def test_every_rank_waits_for_rank_0_before_exiting(tmp_path: Path) -> None:
    """A rank that returned first waits for rank 0 (exiting first had torchrun stop rank 0 with half a report
    written) and exits 0: rank 0's exit code is the run's."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    (tmp_path / "leave.py").write_text(LEAVE)
    procs = []
    for rank in (0, 1):
        env = {**_env(tmp_path), "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        procs.append(subprocess.Popen([sys.executable, str(tmp_path / "leave.py"), str(tmp_path / "mark")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=120) for p in procs]
    assert outs[0][0].strip() == "code 1", outs[0]
    assert outs[1][0].strip() == "code 0 after rank 0", outs[1]


def _feature_stats_rank(rank: int, store: str, rows: np.ndarray, splits: list[int], out: str) -> None:
    """One gloo rank of ``test_feature_stats_merge_over_ranks``: accumulate its share, all-reduce, save mean/cov."""
    import torch
    import torch.distributed as dist

    from ganeval.distributed import DistContext
    from ganeval.feature_stats import FeatureStats

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        for i, split in enumerate(splits):
            acc = FeatureStats(rows.shape[1])
            for chunk in np.array_split(rows[:split] if rank == 0 else rows[split:], 3):
                if len(chunk):
                    acc.update(torch.from_numpy(chunk))
            acc.all_reduce(DistContext(rank, 2, "gloo").all_reduce_sum)
            np.savez(f"{out}_{rank}_{i}.npz", n=acc.n, mean=acc.mean, cov=acc.cov)
    finally:
        dist.destroy_process_group()


def test_feature_stats_merge_over_ranks(tmp_path: Path) -> None:
    """Two gloo ranks, each summing about its own shift (its first batch's mean), agree on one and give every rank
    the statistics of all rows: numpy's to ~1e-10 for features of mean 1e6 (sd ~1), also when a rank had no rows."""
    import torch.multiprocessing as mp

    rng = np.random.default_rng(9)
    rows = rng.normal(size=(900, 12)) + 1e6 + np.arange(12) * 10.0
    splits = [400, 900]  # rank 1 holds 500 rows, then none
    mp.start_processes(_feature_stats_rank, args=(str(tmp_path / "store"), rows, splits, str(tmp_path / "r")), nprocs=2,
                       start_method="spawn")
    want = np.cov(rows, rowvar=False)
    for rank in (0, 1):
        for i in range(len(splits)):
            got = np.load(tmp_path / f"r_{rank}_{i}.npz")
            assert int(got["n"]) == 900
            np.testing.assert_allclose(got["mean"], rows.mean(0), rtol=1e-14, atol=0)
            assert np.abs(got["cov"] - want).max() <= 1e-10 * np.abs(want).max(), (rank, i)
