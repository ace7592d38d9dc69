"""Integrity of the shipped reference statistics, their sidecars and the recorded real-data floors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganeval.errors import StatsError
from ganeval.features.inception import RESIZE_MODE
from ganeval.features.inception_weights import offline_copy
from ganeval.features.resize import CLEAN_RESIZE_MODE
from ganeval.metrics.fid import FIDReference
from ganeval.stats import SHIPPED_DIR, load_stats, stats_path

SHIPPED = [(d, e) for d in ("mnist-train", "mnist-test") for e in ("inception", "inception-clean", "mnist")]
RESIZES = {"inception": RESIZE_MODE, "inception-clean": CLEAN_RESIZE_MODE}
FLOORS = json.loads((SHIPPED_DIR / "floors.json").read_text())


@pytest.mark.parametrize("dataset,extractor", SHIPPED)
def test_shipped_stats_verify_and_are_valid_covariances(dataset: str, extractor: str) -> None:
    stats = load_stats(stats_path(dataset, extractor))  # checks the npz SHA-256 against the sidecar
    meta = stats.meta
    assert meta["dataset"] == dataset and meta["extractor"] == extractor.removesuffix("-clean")
    assert meta["resize"] == RESIZES.get(extractor, meta["resize"])
    assert meta["n"] == (60000 if dataset == "mnist-train" else 10000)
    for key in ("dataset_sha256", "weights_sha256", "resize", "channels", "precision", "package_version", "command", "date"):
        assert meta.get(key), key
    d = stats.mu.shape[0]
    assert stats.sigma.shape == (d, d) and np.isfinite(stats.sigma).all()
    np.testing.assert_array_equal(stats.sigma, stats.sigma.T)
    eig = np.linalg.eigvalsh(stats.sigma)
    assert eig.min() > -1e-6 * eig.max()  # positive semi-definite up to float32 rounding


@pytest.mark.parametrize("name", ["inception", "inception-clean"])
def test_inception_stats_were_made_with_the_offline_weights(name: str) -> None:
    stats = load_stats(stats_path("mnist-train", name))
    assert stats.meta["weights_sha256"] == offline_copy().sha256


@pytest.mark.parametrize("extractor", ["inception", "inception-clean", "inception-spatial", "inception-spatial-clean", "mnist"])
def test_floors_recompute_from_shipped_files(extractor: str) -> None:
    test = load_stats(stats_path("mnist-test", extractor))
    train = load_stats(stats_path("mnist-train", extractor))
    fid = FIDReference(train.mu, train.sigma).fid(test.mu, test.sigma)
    # sFID's 2,023-d covariances are worse conditioned: the thread count alone moves this value by 2.5e-9 relative,
    # and `ganeval floors` and pytest's process differ by 1.2e-8 (float64 round-off in the matrix square root)
    rel = 1e-7 if extractor.startswith("inception-spatial") else 1e-9
    assert fid == pytest.approx(FLOORS[extractor]["fid_test_vs_train"], rel=rel)
    assert train.meta["floors"]["fid_test_vs_train"] == pytest.approx(fid, rel=rel)
    assert 0 < fid < (5 if extractor.startswith("inception") else 0.5)


def test_float32_covariance_changes_fid_by_less_than_1e_3() -> None:
    """The float64 FID (from per-image features, recorded by `ganeval floors`) vs the shipped float32 files."""
    entry = FLOORS["inception"]
    test = load_stats(stats_path("mnist-test", "inception"))
    train = load_stats(stats_path("mnist-train", "inception"))
    shipped = FIDReference(train.mu, train.sigma).fid(test.mu, test.sigma)
    assert abs(shipped - entry["fid_test_vs_train_float64"]) < 1e-3


def test_mnist_classifier_is_of_real_test_matches_anchor() -> None:
    real_is = FLOORS["mnist"]["inception_score_real_test"]
    assert real_is["available"] and abs(real_is["mean"] - 9.88) < 0.15  # published anchor 9.88 ± 0.06


def test_corrupted_or_mismatched_stats_are_refused(tmp_path: Path) -> None:
    src = stats_path("mnist-test", "mnist")
    for suffix in (".npz", ".json"):
        shutil.copy(src.with_suffix(suffix), tmp_path / f"x{suffix}")
    raw = bytearray((tmp_path / "x.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "x.npz").write_bytes(bytes(raw))
    with pytest.raises(StatsError, match="x.npz.*SHA-256"):
        load_stats(tmp_path / "x.npz")
    with pytest.raises(StatsError, match="weights_sha256"):
        load_stats(src, {"weights_sha256": "0" * 64})
    with pytest.raises(StatsError, match="not found"):
        load_stats(tmp_path / "missing.npz")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(StatsError, match="x.json"):
        load_stats(tmp_path / "x.npz")


def test_knn_floors_recompute_and_read_as_real_data() -> None:
    """The recorded sample-based floors (`ganeval floors --knn-n 10000`) recompute, and real data scores as real."""
    from ganeval.floors import _knn_floors

    got = _knn_floors("mnist", SHIPPED_DIR, 10000, "cpu")
    want = FLOORS["mnist"]["knn_test_vs_train"]
    assert got["n"] == want["n"] == 10000
    for key in ("precision", "recall", "density", "coverage", "kid_mean"):
        assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-6), key
    for extractor in ("inception", "inception-clean", "mnist"):
        floor = FLOORS[extractor]["knn_test_vs_train"]
        assert 0.85 < floor["density"] < 1.1 and floor["coverage"] > 0.9, extractor
        assert abs(floor["kid_mean"]) < 3 * floor["kid_std"] + 1e-4, extractor  # KID's estimate is unbiased: ~0 for real data


def test_merge_floors_keeps_what_a_run_did_not_recompute() -> None:
    from ganeval.floors import merge_floors

    recorded = {"date": "old", "mnist": {"fid_test_vs_train": 0.037, "fid_test_vs_train_float64": 0.0371, "knn_test_vs_train": {"n": 1}}}
    new = {"date": "new", "mnist": {"fid_test_vs_train": 0.037, "knn_test_vs_train": {"n": 2}}, "inception": {"fid_test_vs_train": 1.0}}
    got = merge_floors(recorded, new)
    assert got["date"] == "new" and got["inception"] == {"fid_test_vs_train": 1.0}
    assert got["mnist"] == {"fid_test_vs_train": 0.037, "fid_test_vs_train_float64": 0.0371, "knn_test_vs_train": {"n": 2}}
    assert recorded["mnist"]["knn_test_vs_train"] == {"n": 1}  # the recorded dict is not changed in place
    # statistics made again at another N: the float64 check of the old ones beside the new FID said they agreed to 6e-8
    other = {"mnist": {"fid_test_vs_train": 0.676, "n_test": 1000, "n_train": 1000}}
    stale = {"mnist": {"fid_test_vs_train": 2.063, "n_test": 300, "n_train": 300, "fid_test_vs_train_float64": 2.063,
                       "float32_minus_float64": -5.8e-8, "knn_test_vs_train": {"n": 300}}}
    assert merge_floors(stale, other)["mnist"] == other["mnist"]
    again = {"mnist": {"fid_test_vs_train": 2.063 * (1 + 1e-12), "n_test": 300, "n_train": 300}}
    assert merge_floors(stale, again)["mnist"]["knn_test_vs_train"] == {"n": 300}  # the same statistics, another
    # machine's round-off: kept


def test_floors_merge_without_or_with_a_damaged_record(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """--merge into a folder with no floors.json yet: the new floors alone. A damaged one: one line, exit 2, and it
    is refused before any floor is computed."""
    import ganeval.floors

    for f in SHIPPED_DIR.glob("mnist-*_mnist.*"):
        shutil.copy(f, tmp_path / f.name)
    code, out, err = cli("floors", "--root", tmp_path, "--extractors", "mnist", "--merge", "--device", "cpu")
    assert code == 0, err
    shipped = json.loads((SHIPPED_DIR / "floors.json").read_text())["mnist"]
    got = json.loads(out)["mnist"]
    assert set(got) <= set(shipped) and got["fid_test_vs_train"] == pytest.approx(shipped["fid_test_vs_train"], rel=1e-6)
    (tmp_path / "floors.json").write_text("[1")
    monkeypatch.setattr(ganeval.floors, "compute_floors", lambda *a: pytest.fail("computed before reading the record"))
    code, _, err = cli("floors", "--root", tmp_path, "--extractors", "mnist", "--merge")
    assert code == 2 and "floors.json: cannot be read for --merge" in err and err.count("\n") == 1


def test_floors_refuse_features_that_are_not_the_statistics(tmp_path: Path) -> None:
    """Features of 200 images beside statistics of 10,000 gave a float64 "check" off by 3 that --write recorded."""
    from ganeval.errors import GanevalError
    from ganeval.floors import compute_floors

    for f in SHIPPED_DIR.glob("mnist-*_mnist.*"):
        shutil.copy(f, tmp_path / f.name)
    feats = tmp_path / "feats"
    feats.mkdir()
    for split in ("test", "train"):
        np.save(feats / f"mnist-{split}_mnist.npy", np.zeros((200, 128), np.float32))
    with pytest.raises(GanevalError, match=r"mnist-test_mnist.npy: features of shape \(200, 128\), but the statistics are of 10000"):
        compute_floors(tmp_path, feats, extractors=("mnist",))


@pytest.mark.parametrize(("args", "problem"), [(["--knn-n", "-5"], "--knn-n must be an integer of at least 0 (got -5)"),
                                               (["--features-dir", "MISSING"], "MISSING: no such folder"),
                                               (["--features-dir", "FILE"], "FILE: is not a folder")])
def test_floors_refuses_a_negative_knn_n_and_a_features_dir_that_is_no_folder(tmp_path: Path, cli, args: list[str],
                                                                               problem: str) -> None:
    """Both were taken in silence (exit 0): a negative N as 0, so no k-NN floors, and a missing --features-dir as
    none, so no float64 check. One line, exit 2, before the floors are computed."""
    (tmp_path / "f.txt").write_text("x")
    fill = {"MISSING": str(tmp_path / "nope"), "FILE": str(tmp_path / "f.txt")}
    code, out, err = cli("floors", "--extractors", "mnist", *[fill.get(a, a) for a in args])
    want = problem.replace("MISSING", fill["MISSING"]).replace("FILE", fill["FILE"])
    assert code == 2 and want in err and err.strip().count("\n") == 0 and out == "", err


def test_floors_names_an_unknown_extractor(cli) -> None:
    """A typo was reported as a missing statistics file (reference_stats/mnist-test_foo.npz: not found)."""
    code, out, err = cli("floors", "--extractors", "mnist", "foo")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "--extractors: unknown extractor 'foo' (known: custom, inception," in err


def test_floors_features_of_one_split_alone_and_a_folder_of_two_references_are_named(tmp_path: Path, cli) -> None:
    """``floors --features-dir`` holding one split's features skipped the float64 check without a word; a reference
    folder of two candidates (fp32 and bf16 statistics side by side) said "found 2" without naming them."""
    from ganeval.errors import StatsError
    from ganeval.reference import reference_path

    (tmp_path / "feats").mkdir()
    np.save(tmp_path / "feats" / "mnist-test_mnist.npy", np.zeros((3, 128), np.float32))
    code, _, err = cli("floors", "--extractors", "mnist", "--features-dir", tmp_path / "feats", "--device", "cpu")
    assert code == 2 and err.count("\n") == 1, err
    assert "no mnist-train_mnist.npy (stats --save-features writes it); the float64 check needs both splits' features" in err
    for name in ("a_mnist", "b_mnist"):
        for ext in (".npz", ".json"):
            (tmp_path / "ref" / f"{name}{ext}").parent.mkdir(exist_ok=True)
            (tmp_path / "ref" / f"{name}{ext}").write_text("")
    with pytest.raises(StatsError, match=r"ref: expected one \*_mnist.npz, found 2: a_mnist.npz, b_mnist.npz; give the file"):
        reference_path(tmp_path / "ref", "mnist")
