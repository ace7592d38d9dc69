"""``ganeval stats`` refuses bad inputs and outputs in one line (exit 2) before any work, and never leaves --out
half-written or changed by a failed run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeval.errors import StatsError


@pytest.fixture(autouse=True)
def _cache_and_no_torchrun(own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def digits(tmp_path: Path, mnist_dir: Path) -> Path:
    """40 MNIST test digits as a uint8 .npz."""
    from ganeval.stats import dataset_images

    np.savez(tmp_path / "digits.npz", images=dataset_images("mnist-test")[:40])
    return tmp_path / "digits.npz"


def _one_line(code: int, err: str, *parts: str) -> None:
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, (part, err)


def _no_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any pass over images (or an Inception load) fails the test: refusals must come first."""
    def boom(*_: object, **__: object) -> None:
        raise AssertionError("computed before refusing")

    monkeypatch.setattr("ganeval.stats.compute_stats", boom)
    monkeypatch.setattr("ganeval.features.get_extractor", boom)


def test_npy_files_are_refused_in_one_line(tmp_path: Path, cli) -> None:
    np.save(tmp_path / "musig.npy", np.zeros(3))
    os.replace(tmp_path / "musig.npy", tmp_path / "musig.npz")
    np.save(tmp_path / "imgs.npy", np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "fake.npz").write_bytes((tmp_path / "imgs.npy").read_bytes())
    out = tmp_path / "o" / "i_inception-clean.npz"
    _one_line(*cli("stats", "--import", tmp_path / "musig.npz", "--made-by", "clean-fid", "--out", out)[::2],
              "musig.npz: a single .npy array")
    _one_line(*cli("stats", "--dataset", tmp_path / "fake.npz", "--extractor", "mnist", "--out", out)[::2],
              "fake.npz: a single .npy array")
    assert not out.parent.exists()


def test_empty_or_complex_statistics_are_refused(tmp_path: Path) -> None:
    from ganeval.stats_import import read_foreign_stats

    np.savez(tmp_path / "empty.npz", mu=np.zeros(0), sigma=np.zeros((0, 0)))
    np.savez(tmp_path / "cplx.npz", mu=np.zeros(3) + 1j, sigma=np.eye(3).astype(complex))
    for name, reason in (("empty.npz", "empty"), ("cplx.npz", "mu is complex")):
        with pytest.raises(StatsError, match=reason):
            read_foreign_stats(tmp_path / name)
    from ganeval.stats import RefStats, load_stats, save_stats

    save_stats(tmp_path / "own" / "e_custom.npz", RefStats(np.zeros(0), np.zeros((0, 0)), {"n": 200}))
    with pytest.raises(StatsError, match=r"e_custom.npz: mu and sigma are empty \(D = 0\)"):
        load_stats(tmp_path / "own" / "e_custom.npz")  # ganeval's own file of no features: refused on reading too


def test_distributed_without_torchrun_is_one_line(tmp_path: Path, digits: Path, cli,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "o" / "d_mnist.npz"
    _one_line(*cli("stats", "--dataset", digits, "--extractor", "mnist", "--distributed", "--out", out)[::2],
              "--distributed: not started by torchrun", "RANK")
    _one_line(*cli("score", digits, "--distributed", "--metrics", "mnist_fd")[::2], "not started by torchrun")
    monkeypatch.setenv("WORLD_SIZE", "2")
    _one_line(*cli("stats", "--dataset", digits, "--extractor", "mnist", "--out", out)[::2],
              "WORLD_SIZE=2: not started by torchrun")
    assert not out.parent.exists()
    monkeypatch.setenv("WORLD_SIZE", "abc")  # a raw "invalid literal for int()" traceback
    _one_line(*cli("stats", "--dataset", digits, "--extractor", "mnist", "--out", out)[::2],
              "WORLD_SIZE='abc': not a number of processes (torchrun sets it)")
    _one_line(*cli("score", digits, "--metrics", "mnist_fd", "--out", tmp_path / "r")[::2], "WORLD_SIZE='abc'")
    assert not out.parent.exists() and not (tmp_path / "r").exists()
    monkeypatch.setenv("WORLD_SIZE", "")  # set but empty: one process
    code, _, err = cli("stats", "--dataset", digits, "--extractor", "mnist", "--no-progress", "--out", out)
    assert code == 0, err


def test_bad_out_is_refused_before_computing(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_compute(monkeypatch)
    (tmp_path / "d.npz").mkdir()
    (tmp_path / "side").mkdir()
    (tmp_path / "side" / "s.json").mkdir()
    (tmp_path / "FILE").write_text("x")
    mu = np.zeros(2048)
    np.savez(tmp_path / "good.npz", mu=mu, sigma=np.eye(2048))
    dataset = ("--dataset", "mnist-test", "--extractor", "mnist")
    imported = ("--import", tmp_path / "good.npz", "--made-by", "torch-fidelity")
    for source in (dataset, imported):
        for out, reason in ((tmp_path / "d.npz", "is a folder"), (tmp_path / "FILE" / "x_mnist.npz", "is not a folder"),
                            (tmp_path / "j.json", "name it *.npz"), (tmp_path / "side" / "s.npz", "sidecar")):
            _one_line(*cli("stats", *source, "--out", out)[::2], f"--out {out}", reason)
    for out in (tmp_path / "FILE", tmp_path / "FILE" / "sub"):
        _one_line(*cli("stats", "--export", "mnist-test", "--to", "torch-fidelity", "--out", out)[::2],
                  "exists and is not a folder")
    assert (tmp_path / "FILE").read_text() == "x" and not list((tmp_path / "d.npz").iterdir())


def test_a_failed_features_write_leaves_out_unchanged(tmp_path: Path, digits: Path, cli,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "o" / "d_mnist.npz"
    base = ("stats", "--dataset", digits, "--extractor", "mnist", "--no-progress", "--out", out)
    assert cli(*base, "--limit", 20)[0] == 0
    before = out.read_bytes(), out.with_suffix(".json").read_bytes()
    (tmp_path / "feats").mkdir()
    _one_line(*cli(*base, "--save-features", tmp_path / "feats")[::2], "--save-features", "is a folder")
    _one_line(*cli(*base, "--save-features", out.with_suffix(".json"))[::2], "same file as --out")

    def failing_save(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ganeval.cli.cmd_stats.np.save", failing_save)
    code, _, err = cli(*base, "--save-features", tmp_path / "f.npy")
    assert code == 2 and "No space left" in err
    monkeypatch.undo()
    assert (out.read_bytes(), out.with_suffix(".json").read_bytes()) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["d_mnist.json", "d_mnist.npz"]
    assert not (tmp_path / "f.npy").exists() and not list((tmp_path / "feats").iterdir())


def test_import_and_export_refuse_dataset_only_flags(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_compute(monkeypatch)
    np.savez(tmp_path / "good.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    out = tmp_path / "o" / "i_inception.npz"
    imported = ("stats", "--import", tmp_path / "good.npz", "--made-by", "torch-fidelity", "--out", out)
    _one_line(*cli(*imported, "--save-features", tmp_path / "f.npy", "--limit", 5, "--precision", "bf16")[::2],
              "--save-features, --limit, --precision go with --dataset, not with --import")
    _one_line(*cli(*imported, "--precision", "fp32")[::2], "--precision goes with --dataset")  # the default, given
    exported = ("stats", "--export", "mnist-test", "--to", "torch-fidelity", "--out", tmp_path / "e")
    for flag in (("--limit", 5), ("--save-features", tmp_path / "f.npy"), ("--distributed",),
                 ("--inception-weights", tmp_path / "w.pth")):
        _one_line(*cli(*exported, *flag)[::2], f"{flag[0]} ", "not with --export" if flag[0] != "--inception-weights"
                  else "does not go with --export")
    assert not out.parent.exists() and not (tmp_path / "e").exists() and not (tmp_path / "f.npy").exists()


def test_npz_images_beside_labels_are_read_as_score_reads_them(tmp_path: Path, digits: Path) -> None:
    from ganeval.data import load_mnist
    from ganeval.features import get_extractor
    from ganeval.sources.samples import read_npz
    from ganeval.stats import compute_stats

    x, y = load_mnist("test")[:2]
    np.savez(tmp_path / "withlabels.npz", images=x[:40], labels=y[:40].astype(np.int64))
    ex = get_extractor("mnist", device="cpu")
    got = compute_stats(tmp_path / "withlabels.npz", ex, progress=False)
    want = compute_stats(digits, ex, progress=False)
    np.testing.assert_array_equal(got.mu, want.mu)
    assert torch.equal(read_npz(tmp_path / "withlabels.npz", "0,255")[0], read_npz(digits, "0,255")[0])


def test_code_in_a_pickle_never_runs_and_the_refusal_names_it(tmp_path: Path, cli) -> None:
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):  # would create the marker file if unpickled
            return (os.system, (f"touch {marker}",))

    torch.save({"mu": Evil(), "sigma": np.eye(3)}, tmp_path / "evil.pt")
    code, _, err = cli("stats", "--import", tmp_path / "evil.pt", "--made-by", "torch-fidelity",
                       "--out", tmp_path / "o" / "e_inception.npz")
    _one_line(code, err, "evil.pt: holds objects other than tensors", f"such as {os.system.__module__}.system")
    assert "False" not in err and not marker.exists() and not (tmp_path / "o").exists()


def test_a_sidecar_that_is_not_an_object_is_refused(tmp_path: Path, digits: Path, cli) -> None:
    from ganeval.features import get_extractor
    from ganeval.stats import compute_stats, load_stats, save_stats

    path = tmp_path / "ref" / "d_mnist.npz"
    save_stats(path, compute_stats(digits, get_extractor("mnist", device="cpu"), progress=False))
    path.with_suffix(".json").write_text(json.dumps([1, 2]))
    with pytest.raises(StatsError, match="d_mnist.json: sidecar must be a JSON object"):
        load_stats(path)
    _one_line(*cli("score", digits, "--reference", path.parent, "--metrics", "mnist_fd", "--no-progress")[::2],
              "d_mnist.json: sidecar must be a JSON object")


def test_a_limit_above_the_dataset_gets_a_note(digits: Path) -> None:
    from ganeval.stats import real_images

    assert real_images("mnist-test", limit=20000).notes == [
        "mnist-test: only 10000 images, fewer than the 20000 asked for; using those 10000"]
    assert real_images("mnist-test", limit=5).notes == []
    assert "only 40 images, fewer than the 50" in real_images(digits, limit=50).notes[0]


def test_reference_stats_takes_an_extractor_name() -> None:
    """``ganeval.reference_stats("mnist-train", "mnist")`` raised an AttributeError (a name has no ``.name``); a
    registered name now builds that extractor, an unknown one is one line."""
    import ganeval
    from ganeval.errors import GanevalError
    from ganeval.features import get_extractor

    by_name = ganeval.reference_stats("mnist-train", "mnist")
    direct = ganeval.reference_stats("mnist-train", get_extractor("mnist", device="cpu"))
    assert np.array_equal(by_name.mu, direct.mu) and by_name.meta == direct.meta
    with pytest.raises(GanevalError, match="^unknown extractor 'nope'"):
        ganeval.reference_stats("mnist-train", "nope")


def test_flags_that_do_not_apply_are_refused_and_data_dir_is_used(tmp_path: Path, cli,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """--inception-weights with --extractor mnist and --feature-network-kwargs without custom were accepted and
    ignored; --data-dir was ignored by --import --verify-with and by --export --kid, which read MNIST from the cache
    folder instead (or downloaded a second copy there). Now the flags are refused in one line, and --data-dir is
    where both read the split from (an empty folder: its files are missing there, not in the cache)."""
    monkeypatch.delenv("GANEVAL_DATA_DIR", raising=False)
    empty = tmp_path / "no_mnist"
    empty.mkdir()
    out = tmp_path / "o" / "x_mnist.npz"
    for flags, message in ((("--inception-weights", tmp_path / "w.pth"), "--inception-weights goes with --extractor inception"),
                           (("--feature-network-kwargs", '{"a": 1}'), "--feature-network-kwargs goes with --extractor custom")):
        _one_line(*cli("stats", "--dataset", "mnist-test", "--extractor", "mnist", *flags, "--out", out)[::2], message)
    np.savez(tmp_path / "good.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    imported = ("stats", "--import", tmp_path / "good.npz", "--made-by", "torch-fidelity", "--data-dir", empty,
                "--device", "cpu", "--no-progress", "--out", tmp_path / "o" / "i_inception.npz")
    _one_line(*cli(*imported)[::2], "--data-dir goes with --verify-with")
    _one_line(*cli(*imported, "--verify-with", "mnist-test")[::2], str(empty / "t10k-images-idx3-ubyte"), "missing")
    exported = ("stats", "--export", "mnist-test", "--to", "torch-fidelity", "--data-dir", empty, "--device", "cpu",
                "--out", tmp_path / "e")
    _one_line(*cli(*exported)[::2], "--data-dir goes with --kid")
    code, _, err = cli(*exported, "--kid")  # after the line announcing the pass
    _one_line(code, err.splitlines(keepends=True)[-1], str(empty / "t10k-images-idx3-ubyte"), "missing")
    assert not (tmp_path / "o").exists() and not list((tmp_path / "e").glob("*.pt"))


def test_a_npy_of_float_images_is_refused_as_an_npz_is(tmp_path: Path, cli) -> None:
    """A .npy of real images is read now (score reads .npy sample sets); float values still need no guessed range."""
    np.save(tmp_path / "f.npy", np.zeros((4, 28, 28), np.float32))
    out = tmp_path / "o" / "f_mnist.npz"
    _one_line(*cli("stats", "--dataset", tmp_path / "f.npy", "--extractor", "mnist", "--out", out)[::2],
              "f.npy: real images in a .npy must be a non-empty uint8 array (0..255); it is float32")
    assert not out.parent.exists()
