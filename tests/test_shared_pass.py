"""FID and sFID share one Inception pass: sFID's layer is read off the full network's Mixed_6d output on the way to
the pool features. The features must be those of the two extractors run apart (bit for bit: the same operations),
the spatial network must not run at all when both are extracted, and anything that changes the features (another
precision, resize, or torch-fidelity's own network) keeps the passes apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganeval import extraction
from ganeval.distributed import DistContext
from ganeval.features import get_extractor
from ganeval.features.base import run_pass, shared_passes
from ganeval.features.inception import SPATIAL_DIM, InceptionExtractor
from ganeval.features.mnist_classifier import MNISTClassifierExtractor
from ganeval.inputs import resolve_target


def _pair(weights, **kwargs) -> tuple[InceptionExtractor, InceptionExtractor]:
    full = get_extractor("inception", weights=weights, device="cpu", **kwargs)
    spatial = get_extractor("inception-spatial", weights=weights, device="cpu", **kwargs)
    return full, spatial  # type: ignore[return-value]


@pytest.fixture(scope="module")
def pair(weights) -> tuple[InceptionExtractor, InceptionExtractor]:
    return _pair(weights)


def _names(plan) -> list[tuple[str, list[str]]]:
    return [(host.name, [r.name for r in riders]) for host, riders in plan]


def test_spatial_rides_on_the_full_pass_whatever_the_order(pair) -> None:
    full, spatial = pair
    mnist = MNISTClassifierExtractor(device="cpu")
    assert _names(shared_passes([spatial, mnist, full])) == [("mnist", []), ("inception", ["inception-spatial"])]
    assert _names(shared_passes([full, spatial])) == [("inception", ["inception-spatial"])]
    assert _names(shared_passes([spatial])) == [("inception-spatial", [])]
    assert _names(shared_passes([full, mnist])) == [("inception", []), ("mnist", [])]


def test_what_changes_the_features_keeps_the_passes_apart(weights, pair) -> None:
    full, spatial = pair
    bf16_spatial = get_extractor("inception-spatial", weights=weights, device="cpu", precision="bf16")
    clean_spatial = get_extractor("inception-spatial-clean", weights=weights, device="cpu")
    tfid_full, tfid_spatial = _pair(weights, fused=False)
    assert _names(shared_passes([full, bf16_spatial])) == [("inception", []), ("inception-spatial", [])]
    assert _names(shared_passes([full, clean_spatial])) == [("inception", []), ("inception-spatial", [])]
    assert _names(shared_passes([tfid_full, tfid_spatial])) == [("inception", []), ("inception-spatial", [])]
    assert not spatial.serves(full) and not full.serves(full)


@pytest.mark.parametrize("resize, precision, shape", [("tf1x", "fp32", (7, 1, 28, 28)), ("tf1x", "fp32", (5, 3, 40, 33)),
                                                       ("clean", "fp32", (4, 1, 28, 28)), ("tf1x", "bf16", (6, 1, 28, 28))])
def test_one_pass_gives_both_extractors_features_exactly(weights, resize: str, precision: str, shape) -> None:
    full, spatial = _pair(weights, resize=resize, precision=precision)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    got = run_pass(full, [spatial], images)
    apart = full(images), spatial(images)
    assert set(got) == {"inception", "inception-spatial"} and got["inception-spatial"]["pool"].shape == (shape[0], SPATIAL_DIM)
    assert torch.equal(got["inception"]["pool"], apart[0]["pool"])
    assert torch.equal(got["inception-spatial"]["pool"], apart[1]["pool"])
    assert float(apart[1]["pool"].abs().max()) > 0.1  # not all zero


def test_a_batch_larger_than_a_cpu_chunk_is_split_and_joined(pair) -> None:
    """Over CPU_CHUNK images the network runs per chunk: each output, the spatial one included, is rejoined in order."""
    full, spatial = pair
    images = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    got = run_pass(full, [spatial], images)
    assert torch.equal(got["inception-spatial"]["pool"][33:], spatial(images[33:])["pool"])


def _count_forwards(ex: InceptionExtractor) -> list[int]:
    calls: list[int] = []
    ex.fast.register_forward_hook(lambda _m, args, _out: calls.append(len(args[0])))
    return calls


def test_extract_runs_the_inception_network_once_for_fid_and_sfid(weights) -> None:
    full, spatial = _pair(weights)
    full_calls, spatial_calls = _count_forwards(full), _count_forwards(spatial)
    images = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    src = resolve_target(images).sources[0]
    got = extraction.extract(src, [spatial, full], 30, 0, 10, torch.device("cpu"), DistContext(), use_cache=False)
    assert spatial_calls == [] and sum(full_calls) == 30
    whole = torch.from_numpy(images).unsqueeze(1)
    assert torch.equal(got.pool["inception-spatial"], spatial(whole)["pool"])
    assert torch.equal(got.pool["inception"], full(whole)["pool"])


def test_with_fid_cached_sfid_runs_its_own_short_pass(weights, tmp_path: Path, own_cache: Path) -> None:
    full, spatial = _pair(weights)
    images = np.random.default_rng(1).integers(0, 256, (12, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "samples.npz", images=images)
    src = resolve_target(tmp_path / "samples.npz").sources[0]
    first = extraction.extract(src, [full], 12, 0, 6, torch.device("cpu"), DistContext())
    full_calls, spatial_calls = _count_forwards(full), _count_forwards(spatial)
    both = extraction.extract(src, [full, spatial], 12, 0, 6, torch.device("cpu"), DistContext())
    assert full_calls == [] and sum(spatial_calls) == 12  # FID's features from the cache, sFID's alone
    assert torch.equal(both.pool["inception"], first.pool["inception"])
    assert torch.equal(both.pool["inception-spatial"], spatial(torch.from_numpy(images).unsqueeze(1))["pool"])


def test_the_plan_counts_one_inception_pass_for_fid_and_sfid() -> None:
    from ganeval.distributed import DistContext as Dist
    from ganeval.evaluate import _Evaluator
    from ganeval.inputs import Series, Source
    from ganeval.options import ScoreOptions

    sources = [Source(f"ckpt_{i}", None, i) for i in range(3)]

    def minutes(metrics: tuple[str, ...]) -> float:
        ev = _Evaluator(Series(sources, [], Path(".")), ScoreOptions(metrics=metrics, device="cpu", num_samples=1000), Dist())
        return float(ev.plan_line().split("~")[-1].split(" min")[0])

    assert minutes(("fid", "sfid")) == minutes(("fid",)) > minutes(("sfid",)) > 0


def test_stats_of_several_extractors_are_each_ones_own_from_one_read(tmp_path: Path, cli, mnist_dir: Path) -> None:
    """``stats --extractor inception inception-spatial``: both files, each equal to its extractor's own run (the same
    features, summed in the same order), named from --out, with the other extractor recorded."""
    from ganeval.reference import reference_stats
    from ganeval.stats import load_stats

    common = ("stats", "--dataset", "mnist-test", "--limit", "40", "--batch-size", "16", "--device", "cpu", "--no-progress")
    code, out, err = cli(*common, "--extractor", "inception", "inception-spatial", "--out", str(tmp_path / "both" / "r_inception.npz"))
    assert code == 0, err
    assert "r_inception.npz" in out and "r_inception-spatial.npz" in out
    for name in ("inception", "inception-spatial"):
        code, _, err = cli(*common, "--extractor", name, "--out", str(tmp_path / "one" / f"r_{name}.npz"))
        assert code == 0, err
        joint, alone = load_stats(tmp_path / "both" / f"r_{name}.npz"), load_stats(tmp_path / "one" / f"r_{name}.npz")
        assert np.array_equal(joint.mu, alone.mu) and np.array_equal(joint.sigma, alone.sigma)
        assert joint.meta["extractor"] == name and joint.meta["n"] == 40
        assert joint.meta["computed_with"] == [{"inception": "inception-spatial", "inception-spatial": "inception"}[name]]
    spatial = get_extractor("inception-spatial", device="cpu")
    assert reference_stats(str(tmp_path / "both"), spatial).mu.shape == (SPATIAL_DIM,)


def test_stats_of_both_resizes_in_one_run_keeps_each_variant_apart(tmp_path: Path, cli, mnist_dir: Path) -> None:
    """``inception`` and ``inception-clean`` are one network under two resizes (both named ``inception``): asked
    together they are two passes, not a duplicate, and each file is its own variant's (equal to its run alone)."""
    from ganeval.stats import load_stats

    names = ("inception-clean", "inception", "inception-spatial-clean")
    common = ("stats", "--dataset", "mnist-test", "--limit", "12", "--device", "cpu", "--no-progress")
    code, out, err = cli(*common, "--extractor", *names, "--out", str(tmp_path / "all" / "r_inception-clean.npz"))
    assert code == 0, err
    for name in names:
        code, _, err = cli(*common, "--extractor", name, "--out", str(tmp_path / "one" / f"r_{name}.npz"))
        assert code == 0, err
        joint, alone = load_stats(tmp_path / "all" / f"r_{name}.npz"), load_stats(tmp_path / "one" / f"r_{name}.npz")
        assert np.array_equal(joint.mu, alone.mu) and np.array_equal(joint.sigma, alone.sigma), name
        assert joint.meta["resize"] == alone.meta["resize"] and joint.meta["computed_with"] == [n for n in names if n != name]
    clean, tf1x = load_stats(tmp_path / "all" / "r_inception-clean.npz"), load_stats(tmp_path / "all" / "r_inception.npz")
    assert not np.allclose(clean.mu, tf1x.mu)  # two resizes: two sets of features


def test_stats_of_several_extractors_refuses_what_it_cannot_name_or_save(tmp_path: Path, cli, mnist_dir: Path) -> None:
    common = ("stats", "--dataset", "mnist-test", "--limit", "8", "--device", "cpu", "--no-progress", "--extractor")
    code, _, err = cli(*common, "inception", "mnist", "--out", str(tmp_path / "ref.npz"))
    assert code == 2 and "name the first's file *_inception.npz" in err
    code, _, err = cli(*common, "inception", "mnist", "--out", str(tmp_path / "r_inception.npz"),
                       "--save-features", str(tmp_path / "f.npy"))
    assert code == 2 and "--save-features goes with one --extractor" in err
    code, _, err = cli(*common, "mnist", "mnist", "--out", str(tmp_path / "r_mnist.npz"))
    assert code == 2 and "given twice" in err
    assert not list(tmp_path.iterdir())  # nothing written
