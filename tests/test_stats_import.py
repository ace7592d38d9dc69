"""``ganeval stats --import``: statistics made by torch-fidelity or clean-fid, recorded as imported, FIDs on the tool's
scale; bad files refused with one line; no real images behind them, so sample-based metrics refuse them up front."""

from __future__ import annotations

import io
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from other_tools import TorchFidelityImages, torch_fidelity_weights

from ganeval.data import load_mnist
from ganeval.errors import StatsError
from ganeval.stats_import import read_foreign_stats

N = 64


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own



def test_torch_fidelity_cache_file_scores_its_own_fid(tmp_path: Path, weights, cli) -> None:
    """torch-fidelity computes FID(samples, real) and caches the real statistics as its .pt; ganeval imports that
    file and scores the same samples against it: the same FID."""
    import torch_fidelity

    real, samples = load_mnist("train")[0][:N], load_mnist("test")[0][:N]
    pth = torch_fidelity_weights(weights, tmp_path / "weights.pth")
    tf_root = tmp_path / "tf_cache"
    theirs = torch_fidelity.calculate_metrics(
        input1=TorchFidelityImages(samples), input2=TorchFidelityImages(real), input2_cache_name="myreal",
        cache_root=str(tf_root), cache=True, fid=True, cuda=False, batch_size=64, feature_extractor_weights_path=str(pth),
        verbose=False, save_cpu_ram=True,
    )["frechet_inception_distance"]
    cached = tf_root / "myreal-inception-v3-compat-stat-fid-2048.pt"
    assert cached.is_file()

    code, out, err = cli("stats", "--import", cached, "--made-by", "torch-fidelity", "--n", N,
                         "--description", "MNIST train, first 64", "--out", tmp_path / "ref" / "mine_inception.npz")
    assert code == 0, err
    side = json.loads((tmp_path / "ref" / "mine_inception.json").read_text())
    assert side["dataset"] == "imported" and side["n"] == N and side["sigma_dtype"] == "float64"
    assert side["imported"]["made_by"] == "torch-fidelity" and side["imported"]["verified"] is False
    np.savez(tmp_path / "samples.npz", images=samples)
    code, out, err = cli("score", tmp_path / "samples.npz", "--reference", tmp_path / "ref", "--metrics", "fid",
                         "--num-samples", N, "--bootstrap", 0, "--device", "cpu", "--no-progress", "--out", tmp_path / "rep")
    assert code == 0, err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    ours = summary["rows"][0]["fid"]
    assert ours == pytest.approx(theirs, rel=1e-5), (ours, theirs)
    assert "made by torch-fidelity" in summary["provenance"]["inception"]["reference_imported"]
    assert any("compare FIDs only at one N" in note for note in summary["notes"])  # no KID to suggest here
    assert "reference_imported" in (tmp_path / "rep" / "report.html").read_text()

    # no real images behind it: KID is refused before anything is scored
    code, out, err = cli("score", tmp_path / "samples.npz", "--reference", tmp_path / "ref", "--metrics", "fid", "kid",
                         "--num-samples", N, "--device", "cpu", "--no-progress", "--out", tmp_path / "rep2")
    assert code == 2 and err.count("\n") == 1 and "imported from myreal-inception-v3-compat-stat-fid-2048.pt" in err
    assert not (tmp_path / "rep2").exists()

    # --verify-with: ganeval's own statistics of the images torch-fidelity used agree; other images are refused
    np.savez(tmp_path / "real.npz", images=real)
    args = ("stats", "--import", cached, "--made-by", "torch-fidelity", "--device", "cpu", "--no-progress")
    code, _, err = cli(*args, "--verify-with", tmp_path / "samples.npz", "--out", tmp_path / "bad" / "x_inception.npz")
    assert code == 2 and "above 0.01: not made from these images" in err and not (tmp_path / "bad").exists()
    code, out, err = cli(*args, "--verify-with", tmp_path / "real.npz", "--out", tmp_path / "ok" / "x_inception.npz")
    assert code == 0, err
    side = json.loads((tmp_path / "ok" / "x_inception.json").read_text())
    assert side["imported"]["verified"] is True and side["imported"]["fd_to_ganeval"] < 1e-4
    assert side["dataset"] == "custom" and side["n"] == N and side["source"] == str((tmp_path / "real.npz").resolve())
    code, out, err = cli("score", tmp_path / "samples.npz", "--reference", tmp_path / "ok", "--metrics", "fid", "kid",
                         "--num-samples", N, "--bootstrap", 0, "--device", "cpu", "--no-progress", "--out", tmp_path / "rep3")
    assert code == 0, err  # the verified reference has its images: KID works
    summary = json.loads((tmp_path / "rep3" / "summary.json").read_text())
    rows = summary["rows"]
    assert any("KID is the better guide" in note for note in summary["notes"])
    assert rows[0]["fid"] == pytest.approx(theirs, rel=1e-5) and np.isfinite(rows[0]["kid_mean"])


def _covariance(d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(50, d))
    return x.mean(0), np.cov(x, rowvar=False)


def test_npz_and_pt_read_alike(tmp_path: Path) -> None:
    mu, sigma = _covariance()
    np.savez(tmp_path / "a.npz", mu=mu, sigma=sigma)
    torch.save({"mu": mu.astype(np.float32), "sigma": sigma}, tmp_path / "a.pt")
    torch.save({"mu": torch.from_numpy(mu), "sigma": torch.from_numpy(sigma)}, tmp_path / "t.pt")
    buf = io.BytesIO()  # as numpy 1.x pickles arrays: its reconstructor under the old module name
    torch.save({"mu": mu, "sigma": sigma}, buf, _use_new_zipfile_serialization=False)
    assert buf.getvalue().count(b"numpy._core.multiarray") == 1
    (tmp_path / "np1.pt").write_bytes(buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    for name in ("a.npz", "a.pt", "t.pt", "np1.pt"):
        got_mu, got_sigma = read_foreign_stats(tmp_path / name)
        np.testing.assert_allclose(got_mu, mu, rtol=1e-6)
        np.testing.assert_array_equal(got_sigma, sigma)


class _Boom:
    def __reduce__(self):  # would run code if unpickled
        return (exec, ("raise SystemExit('unpickled')",))


def _bad_files(tmp_path: Path) -> dict[str, str]:
    mu, sigma = _covariance()
    asym = sigma.copy()
    asym[0, 1] += 1.0
    neg = sigma - 2 * np.eye(len(mu)) * np.linalg.eigvalsh(sigma).max()
    np.savez(tmp_path / "keys.npz", mean=mu, cov=sigma)
    np.savez(tmp_path / "shape.npz", mu=mu, sigma=sigma[:, :4])
    np.savez(tmp_path / "nan.npz", mu=np.full_like(mu, np.nan), sigma=sigma)
    np.savez(tmp_path / "asym.npz", mu=mu, sigma=asym)
    np.savez(tmp_path / "neg.npz", mu=mu, sigma=neg)
    np.save(tmp_path / "obj.npy", np.array([{"mu": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "obj.npy").rename(tmp_path / "pickled.npz")
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"mu": _Boom(), "sigma": 1}))
    torch.save({"mu": _Boom(), "sigma": sigma}, tmp_path / "evil2.pt")
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "asym.npz").read_bytes()[:100])
    torch.save({"mu": np.array(["a"] * len(mu)), "sigma": sigma}, tmp_path / "strs.pt")
    torch.save({"mu": mu, "sigma": sigma, "x": np.array([1, "a"], dtype=object)}, tmp_path / "objs.pt")
    return {"strs.pt": "holds numpy arrays of dtype Str", "objs.pt": "holds numpy arrays of dtype Object",
            "keys.npz": "expected arrays 'mu' and 'sigma'", "shape.npz": "bad shapes", "nan.npz": "NaN",
            "asym.npz": "not symmetric", "neg.npz": "negative eigenvalue", "pickled.npz": "not a readable .npz",
            "evil.pt": "weights_only=True", "evil2.pt": "weights_only=True", "trunc.npz": "not a readable .npz",
            "missing.npz": "not found"}


def test_bad_files_are_refused_with_their_reason(tmp_path: Path) -> None:
    for name, reason in _bad_files(tmp_path).items():
        with pytest.raises(StatsError, match=reason) as exc:
            read_foreign_stats(tmp_path / name)
        assert name in str(exc.value) and "\n" not in str(exc.value)


def test_cli_refusals_are_one_line_and_write_nothing(tmp_path: Path, cli) -> None:
    mu, sigma = _covariance(d=128)
    np.savez(tmp_path / "s.npz", mu=mu, sigma=sigma)
    out = tmp_path / "ref" / "x_inception.npz"
    cases = [
        (("--made-by", "pytorch-fid"), "not on ganeval's scale: pytorch-fid resizes with torch's bilinear"),
        (("--made-by", "clean-fid-legacy-pytorch"), "not on ganeval's scale"),
        ((), "--import needs --made-by"),
        (("--made-by", "clean-fid", "--extractor", "inception"), "made by clean-fid are inception-clean statistics"),
        (("--made-by", "torch-fidelity"), "128-d statistics, but inception features are 2048-d"),
    ]
    for extra, message in cases:
        code, _, err = cli("stats", "--import", tmp_path / "s.npz", *extra, "--out", out)
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)
    code, _, err = cli("stats", "--dataset", "mnist-test", "--n", 5, "--out", out)
    assert code == 2 and "go with --import" in err
    assert not out.parent.exists()
    # an --out not named *_inception.npz: its note came first, before the refusal, as if the import went on
    code, _, err = cli("stats", "--import", tmp_path / "s.npz", "--made-by", "torch-fidelity", "--out", tmp_path / "x.npz")
    assert code == 2 and "128-d statistics" in err and err.count("\n") == 1 and "note:" not in err, err
    # --out the very file imported: it was replaced by ganeval's, the sidecar naming the SHA-256 of a file now gone
    before = (tmp_path / "s.npz").read_bytes()
    code, _, err = cli("stats", "--import", tmp_path / "s.npz", "--made-by", "torch-fidelity", "--out", tmp_path / "s.npz")
    assert code == 2 and err.count("\n") == 1 and "is the file being imported" in err, err
    assert (tmp_path / "s.npz").read_bytes() == before and not (tmp_path / "s.json").exists()


def test_api_imports_clean_fid_statistics(tmp_path: Path) -> None:
    """clean-fid's default mode is ganeval's inception-clean: the sidecar says so, and the values are kept as given."""
    import ganeval
    from ganeval.stats import load_stats

    z = np.load(Path(__file__).parent.parent / "reference_stats" / "mnist-test_inception-clean.npz")
    np.savez(tmp_path / "mnist_clean_test.npz", mu=z["mu"].astype(np.float64), sigma=z["sigma"].astype(np.float64))
    out = tmp_path / "ref" / "t_inception-clean.npz"
    stats = ganeval.import_stats(tmp_path / "mnist_clean_test.npz", "clean-fid", out, description="MNIST test")
    assert stats.meta["resize"].startswith("clean-fid clean")
    back = load_stats(out, {"resize": stats.meta["resize"]})
    np.testing.assert_array_equal(back.sigma, z["sigma"].astype(np.float64))
    assert back.meta["imported"]["description"] == "MNIST test"
    for n in (5.5, "5", 1):  # 5.5 was written into the sidecar as the image count, "5" raised a TypeError
        with pytest.raises(StatsError, match=r"^--n \(the number of images the statistics were made from\) must be an "
                                             rf"integer of at least 2 \(got {re.escape(repr(n))}\)$"):
            ganeval.import_stats(tmp_path / "mnist_clean_test.npz", "clean-fid", tmp_path / "n" / "t_inception-clean.npz", n=n)
    assert not (tmp_path / "n").exists()


def test_pt_of_bf16_tensors_or_integer_arrays_is_imported(tmp_path: Path, cli) -> None:
    """A .pt of bfloat16 tensors crashed ("TypeError: Got unsupported ScalarType BFloat16", a traceback, exit 1), and
    one of int64/int32 numpy arrays was refused as holding "objects other than tensors and numpy arrays". Both are
    numbers: read exactly as float64 (arrays of strings or objects are refused naming their dtype: _bad_files)."""
    d = 2048  # Inception's width
    mu = torch.linspace(-3, 3, d, dtype=torch.bfloat16)
    sigma = torch.diag(torch.linspace(0.5, 2, d)).to(torch.bfloat16)
    torch.save({"mu": mu, "sigma": sigma}, tmp_path / "bf16.pt")
    torch.save({"mu": np.arange(d, dtype=np.int64), "sigma": 3 * np.eye(d, dtype=np.int32)}, tmp_path / "ints.pt")
    expect = {"bf16": (mu.double().numpy(), sigma.double().numpy()),
              "ints": (np.arange(d, dtype=np.float64), 3 * np.eye(d))}
    for name, (want_mu, want_sigma) in expect.items():
        out = tmp_path / "ref" / f"{name}_inception.npz"
        code, _, err = cli("stats", "--import", tmp_path / f"{name}.pt", "--made-by", "torch-fidelity", "--out", out)
        assert code == 0, (name, err)
        with np.load(out) as z:
            np.testing.assert_array_equal(z["mu"], want_mu)
            np.testing.assert_array_equal(z["sigma"], want_sigma)


def test_npz_of_strings_dates_or_records_and_meta_tensors_are_refused(tmp_path: Path, cli) -> None:
    """An .npz whose mu was text, dates, timedeltas or a one-field record was imported (numpy parsed the strings and
    cast the rest to their integer counts); a .pt of meta tensors crashed with a traceback (exit 1). Each is refused
    in one line naming the file and what mu is (exit 2), as a .pt of strings already was."""
    mu, sigma = _covariance(d=2048)
    np.savez(tmp_path / "str.npz", mu=np.array([repr(float(v)) for v in mu]), sigma=sigma)
    np.savez(tmp_path / "date.npz", mu=np.zeros(len(mu), "datetime64[s]"), sigma=sigma)
    np.savez(tmp_path / "td.npz", mu=np.zeros(len(mu), "timedelta64[s]"), sigma=sigma)
    np.savez(tmp_path / "struct.npz", mu=np.zeros(len(mu), [("a", "f8")]), sigma=sigma)
    torch.save({"mu": torch.tensor(mu).to("meta"), "sigma": torch.tensor(sigma)}, tmp_path / "meta.pt")
    reasons = {"str.npz": "mu is a <U", "date.npz": "mu is a datetime64[s] array, not numbers",
               "td.npz": "mu is a timedelta64[s] array, not numbers", "struct.npz": "array, not numbers",
               "meta.pt": "mu is a tensor without data (meta device)"}
    for name, reason in reasons.items():
        with pytest.raises(StatsError, match=re.escape(reason)) as exc:
            read_foreign_stats(tmp_path / name)
        assert name in str(exc.value) and "\n" not in str(exc.value)
        out = tmp_path / "ref" / f"{name.replace('.', '_')}_inception.npz"
        code, _, err = cli("stats", "--import", tmp_path / name, "--made-by", "torch-fidelity", "--out", out)
        assert code == 2 and reason in err and err.count("\n") == 1, (name, err)
        assert not out.exists()


def test_a_ganeval_export_imported_back_keeps_its_provenance(tmp_path: Path, cli) -> None:
    """Importing a file ganeval exported dropped what its FILE.ganeval.json records (n, the dataset and its SHA-256)
    and labelled the values with the importer's weights: statistics made with other weights came back as the default
    weights' and were scored without a word. Now the record is used when it is of this very file (its SHA-256), and
    a record naming other weights or another resize is refused as load_stats refuses a reference."""
    import ganeval
    from ganeval.features import get_extractor
    from ganeval.reference import reference_stats
    from ganeval.stats import load_stats, save_stats, stats_path

    shipped = load_stats(stats_path("mnist-test", "inception"))
    done = ganeval.export_stats("mnist-test", "torch-fidelity", tmp_path / "tf")
    out = tmp_path / "ref" / "t_inception.npz"
    code, _, err = cli("stats", "--import", done.path, "--made-by", "torch-fidelity", "--out", out)
    assert code == 0, err
    back = load_stats(out)
    for key in ("dataset", "split", "dataset_sha256", "n", "precision", "weights_sha256", "resize"):
        assert back.meta[key] == shipped.meta[key], key
    assert back.meta["imported"]["export_record"] == done.sidecar.name
    np.testing.assert_array_equal(back.sigma, shipped.sigma)
    np.testing.assert_allclose(back.mu, shipped.mu, rtol=0, atol=1e-6)  # written as float32 for torch-fidelity
    reference_stats(tmp_path / "ref", get_extractor("inception", device="cpu"), needs_images=True)  # KID can use it
    # a class-per-folder tree (--recursive): the round trip lost the flag, and KID then read the top folder alone
    tree = type(shipped)(shipped.mu, shipped.sigma, {**shipped.meta, "dataset": "custom", "source": str(tmp_path / "tree"),
                                                     "recursive": True})
    save_stats(tmp_path / "tree_inception.npz", tree)
    sent = ganeval.export_stats(tmp_path / "tree_inception.npz", "torch-fidelity", tmp_path / "tf", name="tree")
    code, _, err = cli("stats", "--import", sent.path, "--made-by", "torch-fidelity", "--out", tmp_path / "tr" / "t_inception.npz")
    assert code == 0, err
    assert load_stats(tmp_path / "tr" / "t_inception.npz").meta["recursive"] is True
    code, _, err = cli("stats", "--import", done.path, "--made-by", "torch-fidelity", "--n", 64, "--out", out)
    assert code == 2 and "declared --n 64, but its" in err and "records n=10000" in err

    other = type(shipped)(shipped.mu, shipped.sigma, {**shipped.meta, "weights_sha256": "f" * 64,
                                                      "weights_source": "explicit:/my/inception.pth"})
    save_stats(tmp_path / "o_inception.npz", other)
    mine = ganeval.export_stats(tmp_path / "o_inception.npz", "torch-fidelity", tmp_path / "tf", name="other")
    clean = ganeval.export_stats("mnist-test", "clean-fid", tmp_path / "cf")
    for path, made_by, message in ((mine.path, "torch-fidelity", f"made with weights_sha256='{'f' * 64}' (its "
                                    f"{mine.sidecar.name}), but weights_sha256='{shipped.meta['weights_sha256']}'"),
                                   (clean.path, "clean-fid-legacy-tensorflow", "made with resize='clean-fid")):
        code, _, err = cli("stats", "--import", path, "--made-by", made_by, "--out", tmp_path / "bad" / "x_inception.npz")
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad").exists()

    mu, sigma = read_foreign_stats(done.path)  # another file under the record's name: not its record
    torch.save({"mu": mu.astype(np.float32), "sigma": sigma, "x": np.zeros(1)}, done.path)
    code, _, err = cli("stats", "--import", done.path, "--made-by", "torch-fidelity", "--out", out)
    assert code == 0 and load_stats(out).meta["dataset"] == "imported" and "export_record" not in load_stats(out).meta["imported"]


def test_an_export_of_imported_statistics_imported_again_keeps_the_first_import(tmp_path: Path, cli) -> None:
    """Imported statistics exported and imported again lost the first import's record (file, description, never
    verified), and the summary said "exported by ganeval: images, N and weights as … records": known images for
    statistics that were only declared."""
    import torch

    from ganeval.stats import load_stats
    from ganeval.stats_import import imported_summary

    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 300))
    torch.save({"mu": rng.standard_normal(2048).astype(np.float32), "sigma": a @ a.T / 300}, tmp_path / "tf-stat-fid-2048.pt")
    code, _, err = cli("stats", "--import", tmp_path / "tf-stat-fid-2048.pt", "--made-by", "torch-fidelity", "--n", 300,
                       "--description", "theirs", "--out", tmp_path / "imp" / "tf_inception.npz")
    assert code == 0, err
    code, _, err = cli("stats", "--export", tmp_path / "imp" / "tf_inception.npz", "--to", "torch-fidelity", "--out", tmp_path / "exp")
    assert code == 0, err
    (sent,) = (tmp_path / "exp").glob("*-stat-fid-2048.pt")
    code, _, err = cli("stats", "--import", sent, "--made-by", "torch-fidelity", "--out", tmp_path / "imp2" / "b_inception.npz")
    assert code == 0, err
    meta = load_stats(tmp_path / "imp2" / "b_inception.npz").meta
    first = meta["imported"]["previous"]
    assert first["file"] == "tf-stat-fid-2048.pt" and first["description"] == "theirs" and first["verified"] is False
    assert meta["n"] == 300 and meta["dataset"] == "imported"
    text = imported_summary(meta)
    assert "exported by ganeval from statistics it had imported, imported from tf-stat-fid-2048.pt" in text
    assert text.endswith("images and weights as declared, not verified by ganeval"), text
