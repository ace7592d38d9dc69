"""sFID (spatial FID): its features are torch-fidelity's own network's Mixed_6d output (the TF graph's
mixed_6/conv), first 7 channels, flattened H, W, C; its value is torch-fidelity's Fréchet distance of them; its
statistics are refused for another feature space; the gate, the memory check, the plan and the CPU's top-K
staging know it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_statistics_to_metric

import ganeval
from ganeval.data import load_mnist
from ganeval.errors import GanevalError
from ganeval.features import get_extractor
from ganeval.features.inception import SPATIAL_DIM, InceptionExtractor
from ganeval.features.inception_net import build_tfid_inception
from ganeval.stats import SHIPPED_DIR, compute_stats, load_stats, save_stats


@pytest.fixture(scope="module")
def spatial(weights) -> InceptionExtractor:
    return get_extractor("inception-spatial", weights=weights, device="cpu")  # type: ignore[return-value]


def _tfid_mixed_6d(weights, images: torch.Tensor) -> torch.Tensor:
    """torch-fidelity's unmodified network on ``images`` (3 channels), its Mixed_6d block's output caught by a hook:
    the first 7 channels, as guided-diffusion's evaluator flattens TF's NHWC ``mixed_6/conv`` ``[..., :7]``."""
    net = build_tfid_inception(weights.state_dict).eval()
    got: list[torch.Tensor] = []
    net.Mixed_6d.register_forward_hook(lambda _m, _a, out: got.append(out))
    with torch.inference_mode():
        net(images)
    out = got[0]
    assert out.shape[1:] == (768, 17, 17)
    return out[:, :7].permute(0, 2, 3, 1).reshape(len(images), -1)


@pytest.mark.parametrize("shape", [(6, 1, 28, 28), (5, 3, 40, 33)])
def test_spatial_features_are_torch_fidelitys_mixed_6d_first_channels(spatial: InceptionExtractor, weights,
                                                                      shape: tuple[int, ...]) -> None:
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    ours = spatial(x)["pool"]
    theirs = _tfid_mixed_6d(weights, x.expand(-1, 3, -1, -1))
    assert ours.shape == (shape[0], SPATIAL_DIM) == (shape[0], 2023)
    assert theirs.abs().max() > 1  # real activations, not zeros
    assert (ours - theirs).abs().max().item() <= 1e-4  # folded BatchNorms: float32 round-off only
    assert set(spatial(x)) == {"pool"}  # no logits: sFID's network stops at Mixed_6d


def test_spatial_extractor_names_its_layer_and_files(spatial: InceptionExtractor, weights) -> None:
    prov = spatial.provenance()
    assert prov["extractor"] == "inception-spatial" and "mixed_6/conv" in prov["layer"]
    assert spatial.stats_name == "inception-spatial" and not spatial.has_logits
    clean = get_extractor("inception-spatial-clean", weights=weights, device="cpu")
    assert clean.stats_name == "inception-spatial-clean" and clean.provenance()["resize"] != prov["resize"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, spatial: InceptionExtractor, mnist_dir: Path):
    """A reference of 200 real test digits' sFID statistics, and 100 training digits scored against it."""
    root = tmp_path_factory.mktemp("sfid")
    ref = root / "ref"
    ref.mkdir()
    from ganeval.cli.app import main

    assert main(["stats", "--dataset", "mnist-test", "--extractor", "inception-spatial", "--limit", "200", "--batch-size",
                 "50", "--device", "cpu", "--no-progress", "--out", str(ref / "mnist-test_inception-spatial.npz")]) == 0
    images = load_mnist("train")[0][:100]
    np.savez(root / "samples.npz", images=images)
    df = ganeval.score(root / "samples.npz", metrics=("sfid",), reference=str(ref), num_samples=100, batch_size=50,
                       bootstrap=20, device="cpu", progress=False, out=root / "report")
    return root, ref, images, df


def test_sfid_is_torch_fidelitys_frechet_distance_of_those_features(scored, spatial: InceptionExtractor) -> None:
    _, ref, images, df = scored
    feats = torch.cat([spatial(torch.from_numpy(images[i : i + 50].copy()).unsqueeze(1))["pool"] for i in (0, 50)]).double().numpy()
    stats = load_stats(ref / "mnist-test_inception-spatial.npz")
    theirs = fid_statistics_to_metric({"mu": feats.mean(0), "sigma": np.cov(feats, rowvar=False)},
                                      {"mu": stats.mu, "sigma": stats.sigma}, False)["frechet_inception_distance"]
    row = df.iloc[0]
    assert row["sfid"] == pytest.approx(theirs, rel=1e-5)
    assert 0 < row["sfid_ci_low"] <= row["sfid"] <= row["sfid_ci_high"]  # its bootstrap interval, as FID's
    summary = df.attrs["summary"]
    assert summary["primary_metric"] == "sfid"
    assert "mixed_6/conv" in summary["provenance"]["inception-spatial"]["layer"]
    assert any("below the sFID feature dimension (2023)" in n for n in summary["notes"])


def test_gate_max_sfid_reads_the_report(scored) -> None:
    root, _, _, df = scored
    value = float(df.iloc[0]["sfid"])
    assert ganeval.gate(root / "report", max_sfid=value * 1.01).passed
    failed = ganeval.gate(root / "report", max_sfid=value * 0.99)
    assert not failed.passed and failed.exit_code == 1


def test_gate_limits_sfid_over_the_real_floor_it_scores(scored, tmp_path: Path) -> None:
    """``--max-sfid-over-floor``: the gate scores held-out real images (mnist-train, the reference being mnist-test)
    beside the samples at the same N, and limits the samples' sFID minus theirs."""
    root, ref, images, _ = scored
    np.savez(tmp_path / "noisy.npz", images=np.clip(images.astype(np.int16) + 40, 0, 255).astype(np.uint8))
    result = ganeval.gate(tmp_path / "noisy.npz", max_sfid_over_floor=1e9, metrics=("sfid",), reference=str(ref),
                          num_samples=100, batch_size=50, bootstrap=0, device="cpu", progress=False, out=tmp_path / "rep")
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    floor, row = summary["real_floor"], summary["rows"][0]
    assert floor["status"] == "ok" and floor["n"] == 100 and floor["dataset"] == "mnist-train"
    crit = result.criteria[0]
    assert result.passed and crit.name == "max_sfid_over_floor"
    assert crit.value == pytest.approx(row["sfid"] - floor["values"]["sfid"]) and crit.value > 1
    failed = ganeval.gate(tmp_path / "rep", max_sfid_over_floor=crit.value * 0.99)
    assert not failed.passed and "(--max-sfid-over-floor)" in failed.criteria[0].message


def test_inception_statistics_are_refused_as_sfid_statistics(tmp_path: Path, weights, mnist_dir: Path) -> None:
    pooled = get_extractor("inception", weights=weights, device="cpu")
    save_stats(tmp_path / "x_inception-spatial.npz", compute_stats("mnist-test", pooled, 16, limit=16, progress=False))
    np.savez(tmp_path / "s.npz", images=load_mnist("train")[0][:16])
    with pytest.raises(GanevalError, match="extractor"):
        ganeval.score(tmp_path / "s.npz", metrics=("sfid",), reference=str(tmp_path), num_samples=16, bootstrap=0,
                      device="cpu", progress=False)


def test_the_clean_variants_shipped_statistics_are_its_own(weights, tmp_path: Path, mnist_dir: Path) -> None:
    """``--resize clean`` with sFID finds the shipped ``inception-spatial-clean`` statistics (session 28), made with
    clean-fid's resize, which the tf1x extractor refuses; a score against them runs."""
    from ganeval.reference import reference_stats

    clean = get_extractor("inception-spatial-clean", weights=weights, device="cpu")
    for dataset, n in (("mnist-train", 60_000), ("mnist-test", 10_000)):
        stats = reference_stats(dataset, clean)
        assert stats.meta["n"] == n and stats.meta["resize"] == clean.provenance()["resize"] and stats.mu.shape == (SPATIAL_DIM,)
    with pytest.raises(GanevalError, match="resize"):
        load_stats(SHIPPED_DIR / "mnist-train_inception-spatial-clean.npz",
                   {"resize": get_extractor("inception-spatial", weights=weights, device="cpu").provenance()["resize"]})
    np.savez(tmp_path / "s.npz", images=load_mnist("train")[0][:16])
    df = ganeval.score(tmp_path / "s.npz", metrics=("sfid",), resize="clean", num_samples=16, bootstrap=0, device="cpu",
                       progress=False)
    assert np.isfinite(df["sfid"].iloc[0])


def test_cpu_plan_gives_sfid_to_the_top_k_by_mnist_fd_and_the_last(scored) -> None:
    """On a CPU, sFID is staged as FID is: the K best by MNIST FD and the last get it; the rest rank after them."""
    root, ref, images, _ = scored
    for suffix in (".npz", ".json"):  # MNIST FD's statistics beside sFID's
        shutil.copy(SHIPPED_DIR / f"mnist-test_mnist{suffix}", ref / f"mnist-test_mnist{suffix}")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, images.shape, dtype=np.uint8)
    for name, arr in (("a_real.npz", images), ("b_noise.npz", noise), ("c_last.npz", noise[::-1].copy())):
        np.savez(root / name, images=arr)
    df = ganeval.score([root / "a_real.npz", root / "b_noise.npz", root / "c_last.npz"], metrics=("mnist_fd", "sfid"),
                       primary="sfid", reference=str(ref), num_samples=100, batch_size=50, bootstrap=0, device="cpu",
                       inception_top_k=1, progress=False)
    got = dict(zip(df["checkpoint"], df["sfid"], strict=True))
    assert np.isfinite(got["a_real.npz"]) and np.isfinite(got["c_last.npz"]) and np.isnan(got["b_noise.npz"])
    ranks = dict(zip(df["checkpoint"], df["rank"], strict=True))
    assert ranks["a_real.npz"] == 1 and ranks["b_noise.npz"] == 3  # without sFID: after those with one


def test_memory_floor_and_plan_count_the_spatial_features() -> None:
    from ganeval.memory import per_sample_bytes
    from ganeval.planning import plan_line

    assert per_sample_bytes(["fid", "sfid"], 0) - per_sample_bytes(["fid"], 0) == 4 * SPATIAL_DIM
    assert per_sample_bytes(["sfid"], 0) == 4 * SPATIAL_DIM + 2 * 8 * SPATIAL_DIM  # kept, and an FD's float64 copies
    one = plan_line(3, 1000, "cpu", "fp32", {"inception"}, ["fid"], True, 5, "tf1x")
    both = plan_line(3, 1000, "cpu", "fp32", {"inception", "inception-spatial"}, ["fid", "sfid"], True, 5, "tf1x")
    minutes = [float(s.split("~")[1].split(" min")[0]) for s in (one, both)]
    assert minutes[1] > minutes[0]  # sFID's pass is counted


def test_metrics_lists_sfid(cli) -> None:
    code, out, _ = cli("metrics")
    assert code == 0 and "sfid  [inception-spatial]" in out and "mixed_6/conv" in out


def test_shipped_statistics_are_this_extractors_and_tell_real_from_noise(spatial: InceptionExtractor,
                                                                          mnist_dir: Path) -> None:
    """The shipped sFID statistics load for this extractor (weights, resize and layer checked), over all of each
    split, and real test digits are far nearer to the training digits' than noise is."""
    from ganeval.metrics.fid import FIDReference
    from ganeval.reference import reference_stats

    train, test = reference_stats("mnist-train", spatial), reference_stats("mnist-test", spatial)
    assert (train.meta["n"], test.meta["n"]) == (60_000, 10_000) and train.mu.shape == (SPATIAL_DIM,)
    assert train.meta["layer"] == spatial.provenance()["layer"]
    ref = FIDReference(train.mu, train.sigma)
    real = ref.fid(test.mu, test.sigma)
    noise = spatial(torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    feats = noise["pool"].double()
    assert 0 < real < ref.fid(feats.mean(0).numpy(), torch.cov(feats.T).numpy()) / 10


def test_a_guided_diffusion_reference_batch_imports_for_fid_and_sfid(tmp_path: Path, spatial: InceptionExtractor,
                                                                     cli, mnist_dir: Path) -> None:
    """guided-diffusion's reference batches (VIRTUAL_*.npz: images arr_0 NHWC, mu/sigma, mu_s/sigma_s) import as an
    Inception reference (mu/sigma) and an sFID one (mu_s/sigma_s); the sFID one verified against the batch's own
    images with ganeval's pipeline (FD ≤ 0.01), and each width checked against its extractor's."""
    images = np.repeat(load_mnist("test")[0][:120, :, :, None], 3, axis=3)  # NHWC, as the evaluator stores them
    feats = torch.cat([spatial(torch.from_numpy(images[i : i + 60].transpose(0, 3, 1, 2).copy()))["pool"]
                       for i in (0, 60)]).double().numpy()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 64))
    batch = tmp_path / "VIRTUAL_mnist28.npz"
    np.savez(batch, arr_0=images, mu=rng.standard_normal(2048), sigma=a @ a.T / 64, mu_s=feats.mean(0),
             sigma_s=np.cov(feats, rowvar=False))
    out = tmp_path / "ref"
    code, stdout, err = cli("stats", "--import", batch, "--made-by", "guided-diffusion-spatial", "--verify-with", batch,
                            "--device", "cpu", "--no-progress", "--out", out / "virtual_inception-spatial.npz")
    assert code == 0, err
    got = load_stats(out / "virtual_inception-spatial.npz")
    np.testing.assert_array_equal(got.mu, feats.mean(0))
    assert got.meta["imported"]["verified"] and got.meta["imported"]["fd_to_ganeval"] <= 0.01
    assert got.meta["extractor"] == "inception-spatial" and got.meta["n"] == 120
    code, _, err = cli("stats", "--import", batch, "--made-by", "guided-diffusion", "--out", out / "virtual_inception.npz")
    assert code == 0, err
    assert load_stats(out / "virtual_inception.npz").mu.shape == (2048,)
    np.savez(tmp_path / "swapped.npz", mu_s=rng.standard_normal(2048), sigma_s=a @ a.T / 64)
    code, _, err = cli("stats", "--import", tmp_path / "swapped.npz", "--made-by", "guided-diffusion-spatial",
                       "--out", out / "bad_inception-spatial.npz")
    assert code == 2 and "2048-d statistics, but inception-spatial features are 2023-d" in err
    np.savez(tmp_path / "pooled.npz", mu=rng.standard_normal(2048), sigma=a @ a.T / 64)  # a batch without sFID's arrays
    code, _, err = cli("stats", "--import", tmp_path / "pooled.npz", "--made-by", "guided-diffusion-spatial",
                       "--out", out / "none_inception-spatial.npz")
    assert code == 2 and "expected arrays 'mu_s' and 'sigma_s'" in err and "found ['mu', 'sigma']" in err
