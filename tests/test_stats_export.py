"""``ganeval stats --export``: ganeval's statistics written as torch-fidelity's cache file or clean-fid's custom
statistics; each tool, scoring against them, gives ganeval's FID. Statistics of another pipeline are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from other_tools import TorchFidelityImages, cleanfid_model, torch_fidelity_weights
from PIL import Image

from ganeval.data import load_mnist
from ganeval.stats import load_stats

N = 64
REF = Path(__file__).resolve().parent.parent / "reference_stats"


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own



def _ganeval_fid(cli, tmp_path: Path, samples: np.ndarray, *extra: str) -> float:
    np.savez(tmp_path / "samples.npz", images=samples)
    code, _, err = cli("score", tmp_path / "samples.npz", "--reference", "mnist-test", "--metrics", "fid", *extra,
                       "--num-samples", N, "--bootstrap", 0, "--device", "cpu", "--no-progress", "--out", tmp_path / "rep")
    assert code == 0, err
    return json.loads((tmp_path / "rep" / "summary.json").read_text())["rows"][0]["fid"]


def test_torch_fidelity_scores_against_exported_statistics(tmp_path: Path, weights, cli) -> None:
    """torch-fidelity, given only the exported cache file (its input2 is a bare name), gives ganeval's FID."""
    import torch_fidelity

    samples = load_mnist("train")[0][:N]
    out = tmp_path / "tf_cache"
    code, stdout, err = cli("stats", "--export", "mnist-test", "--to", "torch-fidelity", "--out", out)
    assert code == 0, err
    cached = out / "ganeval-mnist-test-inception-v3-compat-stat-fid-2048.pt"
    assert cached.is_file() and "--input2-cache-name ganeval-mnist-test" in stdout
    side = json.loads((out / (cached.name + ".ganeval.json")).read_text())
    assert side["exported"]["to"] == "torch-fidelity" and side["statistics"]["dataset"] == "mnist-test"
    assert side["statistics"]["weights_sha256"] == weights.sha256 and side["exported"]["notes"] == []

    pth = torch_fidelity_weights(weights, tmp_path / "weights.pth")
    theirs = torch_fidelity.calculate_metrics(
        input1=TorchFidelityImages(samples), input2="ganeval-mnist-test", input2_cache_name="ganeval-mnist-test",
        cache_root=str(out), cache=True, fid=True, cuda=False, batch_size=64, feature_extractor_weights_path=str(pth),
        verbose=False, save_cpu_ram=True,
    )["frechet_inception_distance"]
    ours = _ganeval_fid(cli, tmp_path, samples)
    print(f"FID torch-fidelity {theirs!r} ganeval {ours!r}")
    assert ours == pytest.approx(theirs, rel=1e-5), (ours, theirs)

    # and back: importing the exported file gives the shipped values
    code, _, err = cli("stats", "--import", cached, "--made-by", "torch-fidelity", "--out", tmp_path / "back" / "b_inception.npz")
    assert code == 0, err
    shipped, back = load_stats(REF / "mnist-test_inception.npz"), load_stats(tmp_path / "back" / "b_inception.npz")
    np.testing.assert_array_equal(back.mu, shipped.mu.astype(np.float32))  # torch-fidelity's mu dtype
    np.testing.assert_array_equal(back.sigma, shipped.sigma)


def test_clean_fid_scores_against_exported_statistics(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """clean-fid's compute_fid(dataset_split='custom') finds the exported file by its name and gives ganeval's
    inception-clean FID."""
    import cleanfid
    from cleanfid import fid

    stats_folder = tmp_path / "cleanfid" / "stats"  # clean-fid looks in <its package>/stats
    monkeypatch.setattr(cleanfid, "__file__", str(tmp_path / "cleanfid" / "__init__.py"))
    code, stdout, err = cli("stats", "--export", "mnist-test", "--to", "clean-fid", "--name", "MyMNIST", "--out", stats_folder)
    assert code == 0, err
    assert (stats_folder / "mymnist_clean_custom_na.npz").is_file() and "dataset_name='mymnist'" in stdout

    samples = load_mnist("train")[0][:N]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(samples):
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    theirs = fid.compute_fid(str(folder), dataset_name="MyMNIST", mode="clean", dataset_split="custom",
                             custom_feat_extractor=cleanfid_model(), device=torch.device("cpu"), num_workers=0,
                             batch_size=32, verbose=False)
    ours = _ganeval_fid(cli, tmp_path, samples, "--resize", "clean")
    print(f"FID clean-fid {theirs!r} ganeval {ours!r}")
    assert ours == pytest.approx(theirs, rel=1e-4), (ours, theirs)


def test_legacy_tensorflow_names_and_values(tmp_path: Path) -> None:
    """clean-fid's legacy_tensorflow mode takes the tf1x-resize statistics, under its mode's name, values as shipped."""
    import ganeval

    done = ganeval.export_stats(REF / "mnist-test_inception.npz", "clean-fid-legacy-tensorflow", tmp_path)
    assert done.path.name == "ganeval-mnist-test_legacy_tensorflow_custom_na.npz"
    shipped = load_stats(REF / "mnist-test_inception.npz")
    with np.load(done.path, allow_pickle=False) as z:
        assert z["mu"].dtype == np.float64 and z["sigma"].dtype == np.float64
        np.testing.assert_array_equal(z["sigma"], shipped.sigma)
        np.testing.assert_array_equal(z["mu"], shipped.mu)


@pytest.mark.parametrize(("args", "message"), [
    (("mnist-test", "--to", "torch-fidelity", "--name", "a/b"), "--name 'a/b': use letters"),
    (("mnist-test", "--to", "torch-fidelity", "--name", ""), "--name '': use letters"),  # was the default name, silently
    ((REF / "mnist-test_mnist.npz", "--to", "clean-fid"), "mnist statistics, but clean-fid uses inception-clean"),
    ((REF / "mnist-test_inception-clean.npz", "--to", "torch-fidelity"), "inception-clean statistics, but torch-fidelity uses inception"),
    ((REF / "mnist-test_inception.npz", "--to", "clean-fid"), "inception statistics, but clean-fid uses inception-clean"),
    (("nothing.npz", "--to", "clean-fid"), "nothing.npz: statistics file not found"),
    (("mnist-test",), "--export needs --to"),
    (("mnist-test", "--to", "clean-fid", "--made-by", "clean-fid"), "do not go with --export"),
])
def test_refusals_are_one_line_and_write_nothing(tmp_path: Path, cli, args: tuple[str | Path, ...], message: str) -> None:
    code, _, err = cli("stats", "--export", *args, "--out", tmp_path / "out")
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_bf16_and_unknown_weights(tmp_path: Path) -> None:
    """bf16 statistics are refused (the tools run float32); weights ganeval cannot name are exported with a note."""
    import ganeval
    from ganeval.errors import StatsError
    from ganeval.stats import save_stats

    shipped = load_stats(REF / "mnist-test_inception.npz")
    bf16 = type(shipped)(shipped.mu, shipped.sigma, {**shipped.meta, "precision": "bf16"})
    save_stats(tmp_path / "b_inception.npz", bf16)
    with pytest.raises(StatsError, match="made with precision bf16"):
        ganeval.export_stats(tmp_path / "b_inception.npz", "torch-fidelity", tmp_path / "out")
    other = type(shipped)(shipped.mu, shipped.sigma, {**shipped.meta, "weights_source": "explicit:/my/inception.pth"})
    save_stats(tmp_path / "o_inception.npz", other)
    done = ganeval.export_stats(tmp_path / "o_inception.npz", "torch-fidelity", tmp_path / "out")
    assert done.name == "ganeval-mnist-test" and "not a copy ganeval knows" in done.notes[0]
    assert "not a copy ganeval knows" in json.loads(done.sidecar.read_text())["exported"]["notes"][0]


def test_kid_features_give_each_tool_ganevals_kid(tmp_path: Path, weights, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--kid`` writes the real images' features where each tool's KID reads them: torch-fidelity (its input2
    feature cache) and clean-fid (``_kid.npz``), given only those files, compute ganeval's KID of the same samples
    (64 real test digits as the reference: every KID subset holds all of them, so no random draw differs)."""
    import cleanfid
    import torch_fidelity
    from cleanfid import fid

    real, samples = load_mnist("test")[0][:N], load_mnist("train")[0][:N]
    np.savez(tmp_path / "real.npz", images=real)
    np.savez(tmp_path / "samples.npz", images=samples)
    for ext in ("inception", "inception-clean"):
        code, _, err = cli("stats", "--dataset", tmp_path / "real.npz", "--extractor", ext, "--device", "cpu",
                           "--no-progress", "--out", tmp_path / "ref" / f"real_{ext}.npz")
        assert code == 0, err

    def ours(*extra: str) -> float:
        code, _, err = cli("score", tmp_path / "samples.npz", "--reference", tmp_path / "ref", "--metrics", "fid,kid", *extra,
                           "--num-samples", N, "--bootstrap", 0, "--device", "cpu", "--no-progress", "--out", tmp_path / "rep")
        assert code == 0, err
        return json.loads((tmp_path / "rep" / "summary.json").read_text())["rows"][0]["kid_mean"]

    # torch-fidelity
    cache = tmp_path / "tf_cache"
    code, stdout, err = cli("stats", "--export", tmp_path / "ref" / "real_inception.npz", "--to", "torch-fidelity",
                            "--name", "real64", "--kid", "--device", "cpu", "--out", cache)
    assert code == 0 and "--fid --kid" in stdout and f"--kid: Inception features of the {N} real images" in err, err
    feats = torch.load(cache / "real64-inception-v3-compat-features-2048.pt", weights_only=True)
    assert feats.shape == (N, 2048) and feats.dtype == torch.float32
    side = json.loads((cache / "real64-inception-v3-compat-stat-fid-2048.pt.ganeval.json").read_text())
    assert side["exported"]["kid_features"]["n"] == N
    theirs = torch_fidelity.calculate_metrics(
        input1=TorchFidelityImages(samples), input2="real64", input2_cache_name="real64", cache_root=str(cache),
        cache=True, kid=True, kid_subset_size=N, cuda=False, batch_size=64,
        feature_extractor_weights_path=str(torch_fidelity_weights(weights, tmp_path / "weights.pth")),
        verbose=False, save_cpu_ram=True)["kernel_inception_distance_mean"]
    mine = ours()
    print(f"KID torch-fidelity {theirs!r} ganeval {mine!r}")
    assert mine == pytest.approx(theirs, rel=1e-4, abs=1e-7), (mine, theirs)

    # clean-fid (its model built around the same graph: it would download one)
    stats_folder = tmp_path / "cleanfid" / "stats"
    monkeypatch.setattr(cleanfid, "__file__", str(tmp_path / "cleanfid" / "__init__.py"))
    monkeypatch.setattr(fid, "build_feature_extractor", lambda *a, **k: cleanfid_model())
    code, stdout, err = cli("stats", "--export", tmp_path / "ref" / "real_inception-clean.npz", "--to", "clean-fid",
                            "--name", "real64", "--kid", "--device", "cpu", "--out", stats_folder)
    assert code == 0 and "fid.compute_kid(SAMPLES" in stdout, err
    assert np.load(stats_folder / "real64_clean_custom_na_kid.npz")["feats"].shape == (N, 2048)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(samples):
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    theirs = fid.compute_kid(str(folder), dataset_name="real64", mode="clean", dataset_split="custom",
                             device=torch.device("cpu"), num_workers=0, batch_size=32, verbose=False)
    mine = ours("--resize", "clean")
    print(f"KID clean-fid {theirs!r} ganeval {mine!r}")
    # KID is a small difference of large kernel sums, so the samples' features' round-off between the two resize
    # implementations (1e-4 relative in FID above) shows a little more here; on clean-fid's own features the two
    # KIDs agree to the round-off of torch-fidelity's float32 kernel sums, which ganeval's KID shares.
    assert mine == pytest.approx(theirs, rel=3e-4), (mine, theirs)
    from ganeval.metrics.kid import kid

    ref = np.load(stats_folder / "real64_clean_custom_na_kid.npz")["feats"]
    their_feats = fid.get_folder_features(str(folder), cleanfid_model(), num_workers=0, batch_size=32,
                                          device=torch.device("cpu"), mode="clean", verbose=False)
    exact = fid.kernel_distance(ref.astype(np.float64), their_feats.astype(np.float64))
    # the same estimator: in float64 equal to round-off; in float32 (torch-fidelity's sums, as scored) within their
    # round-off, which depends on the CPU's BLAS kernels (7.1e-5 relative on an AVX2 CPU, under 5e-5 on AVX-512)
    assert kid(torch.from_numpy(their_feats).double(), torch.from_numpy(ref).double(), 100, 1000)[0] == pytest.approx(exact, rel=1e-10)
    assert kid(torch.from_numpy(their_feats), torch.from_numpy(ref), 100, 1000)[0] == pytest.approx(exact, rel=3e-4)


def test_kid_export_refuses_statistics_without_images(tmp_path: Path, cli) -> None:
    """Imported statistics have no real images behind them: --kid is refused in one line and nothing is written."""
    code, _, err = cli("stats", "--export", "mnist-test", "--to", "torch-fidelity", "--out", tmp_path / "a")
    assert code == 0, err
    cached = tmp_path / "a" / "ganeval-mnist-test-inception-v3-compat-stat-fid-2048.pt"
    cached.with_name(cached.name + ".ganeval.json").unlink()  # a foreign file: with its record, its images come back
    code, _, err = cli("stats", "--import", cached, "--made-by", "torch-fidelity", "--out", tmp_path / "imp" / "x_inception.npz")
    assert code == 0, err
    code, out, err = cli("stats", "--export", tmp_path / "imp" / "x_inception.npz", "--to", "torch-fidelity", "--kid",
                         "--device", "cpu", "--out", tmp_path / "b")
    assert code == 2 and "imported" in err and "come without their real images" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    code, _, err = cli("stats", "--dataset", "mnist-test", "--extractor", "mnist", "--kid", "--out", tmp_path / "c.npz")
    assert code == 2 and "--kid go with --export" in err, err


@pytest.mark.parametrize(("to", "stats_name", "kid_name"), [
    ("torch-fidelity", "myref-inception-v3-compat-stat-fid-2048.pt", "myref-inception-v3-compat-features-2048.pt"),
    ("clean-fid", "myref_clean_custom_na.npz", "myref_clean_custom_na_kid.npz"),
])
def test_reexport_without_kid_removes_the_earlier_kid_features(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch,
                                                               to: str, stats_name: str, kid_name: str) -> None:
    """Re-exported under the same name without --kid, the earlier export's KID features (here a stand-in file) go
    with the statistics they belong to, and the output says so: left in place, the tool would compute FID against
    the new statistics and KID against the earlier images, silently. A failed write keeps both as they were."""
    import ganeval.stats_export as stats_export

    out = tmp_path / "out"
    code, stdout, err = cli("stats", "--export", "mnist-test", "--to", to, "--name", "myref", "--out", out)
    assert code == 0 and "replaced" not in stdout and "removed" not in stdout, err
    (out / kid_name).write_bytes(b"the features of an earlier --kid export")
    before = (out / stats_name).read_bytes()

    def fail(*_: object) -> bytes:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stats_export, "_payload", fail)
    code, _, err = cli("stats", "--export", "mnist-train", "--to", to, "--name", "myref", "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert (out / kid_name).is_file() and (out / stats_name).read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == sorted([stats_name, stats_name + ".ganeval.json", kid_name])
    monkeypatch.undo()

    code, stdout, err = cli("stats", "--export", "mnist-train", "--to", to, "--name", "myref", "--out", out)
    assert code == 0, err
    line = stdout.splitlines()[0]
    assert "replaced the earlier export of that name" in line and f"removed the earlier export's KID features {kid_name}" in line
    assert sorted(p.name for p in out.iterdir()) == sorted([stats_name, stats_name + ".ganeval.json"])
    side = json.loads((out / (stats_name + ".ganeval.json")).read_text())
    assert side["statistics"]["dataset"] == "mnist-train" and side["exported"]["kid_features"] is None
    assert side["exported"]["replaced"] is True and side["exported"]["removed_kid_features"] == kid_name


def test_a_failed_kid_reexport_leaves_the_earlier_export_whole(tmp_path: Path, weights, cli) -> None:
    """``--kid`` re-exported under the same name from other statistics, failing at the statistics' write (a full
    disk; here a file-size limit the 64 KB of features pass and the 33 MB of statistics do not): the new KID features
    were already in place, beside the earlier statistics and a record naming the earlier features, so the tool
    computed FID against one set of images and KID against another. Now the earlier export is left whole."""
    resource = pytest.importorskip("resource")  # RLIMIT_FSIZE: POSIX only
    digits = load_mnist("test")[0]
    for name, part in (("a", digits[:8]), ("b", digits[8:16])):
        np.savez(tmp_path / f"{name}.npz", images=part)
        code, _, err = cli("stats", "--dataset", tmp_path / f"{name}.npz", "--extractor", "inception", "--device", "cpu",
                           "--no-progress", "--out", tmp_path / f"{name}_inception.npz")
        assert code == 0, err

    def export(name: str) -> tuple[int, str, str]:
        return cli("stats", "--export", tmp_path / f"{name}_inception.npz", "--to", "torch-fidelity", "--name", "r",
                   "--kid", "--device", "cpu", "--out", tmp_path / "out")

    assert export("a")[0] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        code, _, err = export("b")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    last = err.strip().splitlines()[-1]  # after the --kid pass's announcement
    assert code == 2 and last.startswith("ganeval: error: ") and "stat-fid-2048.pt" in last, err
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before  # nothing new, nothing left over
    assert export("b")[0] == 0  # room again: the new export, its record naming its own features
    from ganeval.atomic import sha256_file

    feats = tmp_path / "out" / "r-inception-v3-compat-features-2048.pt"
    side = json.loads((tmp_path / "out" / "r-inception-v3-compat-stat-fid-2048.pt.ganeval.json").read_text())
    assert side["exported"]["kid_features"]["file_sha256"] == sha256_file(feats)
    assert feats.read_bytes() != before[feats.name] and side["exported"]["from"].endswith("b_inception.npz")
