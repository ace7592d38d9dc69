"""Your own feature network (``--feature-network``): reference statistics, the custom_* metrics, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_bank_checkpoint
from torch import nn

import ganeval
from ganeval.data import load_mnist
from ganeval.errors import GanevalError, StatsError
from ganeval.features.custom import CustomExtractor

NET_PY = """
import torch
from torch import nn


class Pooled(nn.Module):
    '''A small random conv net: 32-d features, and 5 logits when asked.'''

    def __init__(self, logits=False, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
        self.head = nn.Linear(32, 5) if logits else None

    def forward(self, x):
        f = self.conv(x).mean((2, 3))
        return (f, self.head(f)) if self.head is not None else f


class FromFile(nn.Module):
    '''Features from a linear map whose weights are read from a file.'''

    def __init__(self, path):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.lin.load_state_dict(torch.load(path, weights_only=True))

    def forward(self, x):
        return self.lin(x.mean((2, 3)).repeat(1, 2))
"""


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_feature_network.py"
MNIST_AS_CUSTOM = f"{EXAMPLE}:MnistAsCustom"


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _stats(cli, ref: Path, extractor: str, *extra: str) -> None:
    code, out, err = cli("stats", "--dataset", "mnist-test", "--extractor", extractor, "--limit", "2000", "--device", "cpu",
                         "--out", ref / f"test2k_{extractor}.npz", "--no-progress", *extra)
    assert code == 0, err


def test_the_mnist_classifier_as_a_custom_network_gives_the_mnist_numbers(tmp_path: Path, cli, mnist_dir: Path) -> None:
    """Same network, same input → custom_fd = mnist_fd, custom_is = mnist_is, and the same bootstrap interval."""
    ref = tmp_path / "ref"
    _stats(cli, ref, "mnist")
    _stats(cli, ref, "custom", "--feature-network", MNIST_AS_CUSTOM)
    side = json.loads((ref / "test2k_custom.json").read_text())
    assert side["extractor"] == "custom" and side["network"] == MNIST_AS_CUSTOM
    assert len(side["weights_sha256"]) == 64 and len(side["network_source_sha256"]) == 64
    a, b = np.load(ref / "test2k_mnist.npz"), np.load(ref / "test2k_custom.npz")
    np.testing.assert_allclose(a["mu"], b["mu"], rtol=0, atol=1e-6)
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    df = ganeval.score(ckpt, metrics=("mnist_fd", "mnist_is", "custom_fd", "custom_is", "custom_kid", "custom_prc", "custom_dc"),
                       reference=str(ref), feature_network=MNIST_AS_CUSTOM, num_samples=600, bootstrap=30, device="cpu",
                       kid_subset_size=300, kid_subsets=20, progress=False)
    row = df.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["custom_fd"] == pytest.approx(row["mnist_fd"], rel=1e-6)
    assert row["custom_is"] == pytest.approx(row["mnist_is"], rel=1e-6)
    assert row["custom_fd_ci_low"] == pytest.approx(row["mnist_fd_ci_low"], rel=1e-5)
    assert 0 <= row["custom_precision"] <= 1 and 0 <= row["custom_coverage"] <= 1 and np.isfinite(row["custom_kid_mean"])
    prov = df.attrs["summary"]["provenance"]["custom"]
    assert prov["network"].endswith("MnistAsCustom") and prov["weights_sha256"] == side["weights_sha256"]


def test_a_reference_of_another_network_or_weights_is_refused(tmp_path: Path, cli, mnist_dir: Path) -> None:
    (tmp_path / "nets.py").write_text(NET_PY)
    ref = tmp_path / "ref"
    spec = f"{tmp_path / 'nets.py'}:Pooled"
    _stats(cli, ref, "custom", "--feature-network", spec)
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000)
    opts = {"metrics": ("custom_fd",), "reference": str(ref), "num_samples": 300, "bootstrap": 0, "device": "cpu",
            "progress": False}
    df = ganeval.score(ckpt, feature_network=spec, **opts)
    assert df["status"].iloc[0] == "ok" and df["custom_fd"].iloc[0] > 0
    assert df.attrs["summary"]["primary_metric"] == "custom_fd"
    # the same file spelled another way (relative, ./): the same network, not refused; its code and weights by SHA-256
    import os

    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        for other in ("nets.py:Pooled", "./nets.py:Pooled"):
            again = ganeval.score(ckpt, feature_network=other, **opts)
            assert again["custom_fd"].iloc[0] == pytest.approx(df["custom_fd"].iloc[0], rel=1e-9)
    finally:
        os.chdir(here)
    with pytest.raises(StatsError, match="made with network_kwargs="):
        ganeval.score(ckpt, feature_network=spec, feature_network_kwargs={"seed": 1}, **opts)
    with pytest.raises(StatsError, match="made with network_source_sha256="):  # another file: its source differs
        ganeval.score(ckpt, feature_network=MNIST_AS_CUSTOM, **opts)
    (tmp_path / "nets2.py").write_text(NET_PY)  # the same source in a file of another name: another network
    with pytest.raises(StatsError, match="made with network=.*nets.py:Pooled', but network=.*nets2.py:Pooled'"):
        ganeval.score(ckpt, feature_network=f"{tmp_path / 'nets2.py'}:Pooled", **opts)
    # the same code and kwargs, other weights (a file the network loads): refused by the weights' digest
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "w.pt")
    loader = f"{tmp_path / 'nets.py'}:FromFile"
    kw = {"path": str(tmp_path / "w.pt")}
    _stats(cli, tmp_path / "ref2", "custom", "--feature-network", loader, "--feature-network-kwargs", json.dumps(kw))
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "w.pt")
    with pytest.raises(StatsError, match="made with weights_sha256="):
        ganeval.score(ckpt, feature_network=loader, feature_network_kwargs=kw, **{**opts, "reference": str(tmp_path / "ref2")})
    code, _, err = cli("score", ckpt, "--metrics", "custom_fd", "--device", "cpu", "--no-progress")
    assert code == 2 and "--feature-network MODULE:NAME" in err and err.count("\n") == 1
    code, _, err = cli("score", ckpt, "--metrics", "custom_fd", "--feature-network", spec, "--device", "cpu")
    assert code == 2 and "no shipped mnist-train statistics for your feature network" in err


def test_custom_is_needs_logits_and_bad_outputs_fail_in_one_line(tmp_path: Path, cli, mnist_dir: Path) -> None:
    (tmp_path / "nets.py").write_text(NET_PY + "\n\nclass Flat(nn.Module):\n    def forward(self, x):\n        return x\n")
    ref = tmp_path / "ref"
    _stats(cli, ref, "custom", "--feature-network", f"{tmp_path / 'nets.py'}:Pooled")
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000)
    df = ganeval.score(ckpt, metrics=("custom_fd", "custom_is"), reference=str(ref), num_samples=200, bootstrap=0,
                       device="cpu", feature_network=f"{tmp_path / 'nets.py'}:Pooled", progress=False)
    assert df["status"].iloc[0] == "ok" and np.isnan(df["custom_is"].iloc[0])
    assert any("custom_is" in n and "logits" in n for n in df.attrs["summary"]["notes"]), df.attrs["summary"]["notes"]
    ex = CustomExtractor(f"{tmp_path / 'nets.py'}:Flat", device="cpu")
    with pytest.raises(GanevalError, match=r"must be a \(4, D\) tensor for a batch of 4, got \(4, 1, 28, 28\)"):
        ex(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
    with_logits = CustomExtractor(f"{tmp_path / 'nets.py'}:Pooled", {"logits": True}, device="cpu")
    out = with_logits(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
    assert out["pool"].shape == (4, 32) and out["logits"].shape == (4, 5) and with_logits.has_logits
    code, _, err = cli("stats", "--dataset", "mnist-test", "--extractor", "mnist", "--feature-network", "x:y",
                       "--out", tmp_path / "s.npz")
    assert code == 2 and "--feature-network goes with --extractor custom" in err


ONE_AND_NONE = '''
import torch
from torch import nn


class One(nn.Module):
    def forward(self, x):
        return x.mean((1, 2, 3)).unsqueeze(1)


class Empty(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :0]
'''


def test_one_feature_scores_and_no_features_are_refused(tmp_path: Path, cli, mnist_dir: Path) -> None:
    """A network of one output: custom_fd was a raw "diag requires an array of at least two dimensions"; of none:
    statistics of D = 0 were written, custom_fd scored 0 ("best") and custom_kid a ZeroDivisionError."""
    (tmp_path / "nets.py").write_text(ONE_AND_NONE)
    one, ref = f"{tmp_path / 'nets.py'}:One", tmp_path / "ref"
    _stats(cli, ref, "custom", "--feature-network", one)
    images = load_mnist("train")[0][:300]
    np.savez(tmp_path / "x.npz", images=images)
    df = ganeval.score(str(tmp_path / "x.npz"), metrics=("custom_fd", "custom_fd_inf"), reference=str(ref), num_samples=300,
                       bootstrap=20, device="cpu", feature_network=one, progress=False)
    means = images.reshape(300, -1).mean(1) / 255
    real = load_mnist("test")[0][:2000].reshape(2000, -1).mean(1) / 255
    va, vb = means.var(ddof=1), real.var(ddof=1)
    exact = (means.mean() - real.mean()) ** 2 + va + vb - 2 * np.sqrt(va * vb)
    assert df["status"].iloc[0] == "ok" and df["custom_fd"].iloc[0] == pytest.approx(exact, rel=1e-4)
    assert np.isfinite(df["custom_fd_inf"].iloc[0])
    empty = f"{tmp_path / 'nets.py'}:Empty"
    code, _, err = cli("stats", "--dataset", "mnist-test", "--extractor", "custom", "--feature-network", empty,
                       "--limit", "200", "--device", "cpu", "--no-progress", "--out", tmp_path / "ref0" / "e_custom.npz")
    assert code == 2 and err.count("\n") == 1 and "pool output has no features ((1, 0)): D must be at least 1" in err, err
    assert not (tmp_path / "ref0").exists()


def test_gate_compare_and_report_take_the_custom_metrics(tmp_path: Path, cli, mnist_dir: Path) -> None:
    (tmp_path / "nets.py").write_text(NET_PY)
    spec = f"{tmp_path / 'nets.py'}:Pooled"
    ref = tmp_path / "ref"
    _stats(cli, ref, "custom", "--feature-network", spec)
    good = write_bank_checkpoint(tmp_path / "run", 1000)
    bad = write_bank_checkpoint(tmp_path / "run", 2000, noise=0.8)
    flags = ["--metrics", "custom_fd", "--feature-network", spec, "--reference", ref, "--num-samples", "300",
             "--bootstrap", "40", "--device", "cpu", "--no-progress"]
    code, out, err = cli("score", tmp_path / "run", *flags)
    assert code == 0, err
    assert "FD (net) [CI]" in (tmp_path / "run" / "report" / "report.html").read_text()
    header = (tmp_path / "run" / "report" / "scores.csv").read_text().splitlines()[0].split(",")
    i = header.index("custom_fd")
    assert header[i:i + 3] == ["custom_fd", "custom_fd_ci_low", "custom_fd_ci_high"]
    summary = json.loads((tmp_path / "run" / "report" / "summary.json").read_text())
    assert summary["primary_metric"] == "custom_fd" and summary["best"]["checkpoint"] == "ckpt_0001000.safetensors"
    code, out, err = cli("gate", bad, "--max-custom-fd", "1e9", *flags)
    assert code == 0, err
    code, out, err = cli("gate", bad, "--max-custom-fd", "0", *flags)
    assert code == 1 and "custom_fd" in out + err
    comp = ganeval.compare([good, bad], metrics=("custom_fd",), feature_network=spec, reference=str(ref), num_samples=300,
                           bootstrap=40, device="cpu", progress=False)
    d = comp.differences.set_index("metric").loc["custom_fd"]
    assert d["verdict"] == "worse" and d["ci_low"] > 0


def test_watch_stops_on_custom_fd(tmp_path: Path, cli, mnist_dir: Path) -> None:
    (tmp_path / "nets.py").write_text(NET_PY)
    spec = f"{tmp_path / 'nets.py'}:Pooled"
    ref = tmp_path / "ref"
    _stats(cli, ref, "custom", "--feature-network", spec)
    for it, noise in {1000: 0.3, 2000: 0.0, 3000: 0.6}.items():
        write_bank_checkpoint(tmp_path / "run", it, noise=noise)
    code, out, err = cli("watch", tmp_path / "run", "--stop-metric", "custom_fd", "--feature-network", spec, "--reference", ref,
                         "--patience", "1", "--settle", "0", "--interval", "0.05", "--idle-timeout", "2", "--num-samples", "400",
                         "--bootstrap", "60", "--device", "cpu", "--stop-file", tmp_path / "STOP")
    assert code == 0, err
    assert out.splitlines()[0].startswith("iteration 1000: custom_fd")
    assert "watch ended (stop rule)" in out and json.loads((tmp_path / "STOP").read_text())["iteration"] == 3000
    code, _, err = cli("watch", tmp_path / "run", "--stop-metric", "custom_fd")
    assert code == 2 and "go together" in err


NAN_PY = NET_PY + '''

class NaNOnFaint(Pooled):
    """NaN features for images with no bright pixel: never a real digit, but a faint sample."""

    def forward(self, x):
        f = super().forward(x)
        return torch.where(x.flatten(1).amax(1)[:, None] < 0.9, torch.full_like(f, float("nan")), f)


class NaNOnDigits(Pooled):
    def forward(self, x):
        f = super().forward(x)
        return torch.where(x.flatten(1).amax(1)[:, None] >= 0.9, torch.full_like(f, float("inf")), f)
'''


def test_non_finite_features_are_refused_naming_the_network(tmp_path: Path, cli, mnist_dir: Path) -> None:
    """NaN/Inf features once became statistics full of NaN (exit 0) and custom_fd = inf with status ok."""
    (tmp_path / "nets.py").write_text(NAN_PY)
    code, _, err = cli("stats", "--dataset", "mnist-test", "--extractor", "custom", "--limit", "300", "--device", "cpu",
                       "--feature-network", f"{tmp_path / 'nets.py'}:NaNOnDigits", "--out", tmp_path / "bad" / "t_custom.npz",
                       "--no-progress")
    assert code == 2 and "--feature-network" in err and "NaNOnDigits: returned NaN/Inf features" in err
    assert err.count("\n") == 1 and not (tmp_path / "bad").exists()
    spec = f"{tmp_path / 'nets.py'}:NaNOnFaint"
    _stats(cli, tmp_path / "ref", "custom", "--feature-network", spec)  # real digits: finite
    good = write_bank_checkpoint(tmp_path / "run", 1000)
    faint = tmp_path / "faint.npz"  # stored samples no brighter than 0.5: every one gets NaN features
    np.savez(faint, images=np.full((200, 28, 28), 127, np.uint8))
    df = ganeval.score([good, faint], metrics=("custom_fd", "custom_prc"), reference=str(tmp_path / "ref"), num_samples=200,
                       bootstrap=0, device="cpu", feature_network=spec, progress=False)
    assert list(df["status"]) == ["ok", "error"], df  # one bad sample set never stops the others
    assert np.isfinite(df["custom_fd"].iloc[0]) and np.isnan(df["custom_fd"].iloc[1])
    assert "NaNOnFaint: returned NaN/Inf features for 200 of 200 images" in df["error"].iloc[1]


def test_inception_scores_and_modes_read_no_reference_statistics(tmp_path: Path, mnist_dir: Path) -> None:
    """An Inception Score compares with no reference, yet every extractor's reference statistics were read: a custom
    network's IS was refused until statistics were made with it, and ``mnist_is`` against a folder holding no MNIST
    statistics. Now a feature space whose requested metrics need none reads none (and names none); the values
    are the ones scored beside a reference; an FD still needs its statistics."""
    (tmp_path / "nets.py").write_text(NET_PY)
    net = f"{tmp_path / 'nets.py'}:Pooled"
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000)
    empty = tmp_path / "empty"
    empty.mkdir()
    common = {"num_samples": 200, "bootstrap": 0, "device": "cpu", "progress": False, "feature_network": net,
              "feature_network_kwargs": {"logits": True}}
    # the default reference (a --reference these metrics do not read is refused): mnist-train has no statistics made
    # with this network, so reading them would fail
    df = ganeval.score(ckpt, metrics=("custom_is", "mnist_is", "modes"), primary="custom_is", out=tmp_path / "a", **common)
    row, prov = df.iloc[0], df.attrs["summary"]["provenance"]
    assert row["status"] == "ok" and np.isfinite(row["custom_is"]) and np.isfinite(row["mnist_is"])
    assert "reference" not in prov["custom"] and "reference" not in prov["mnist"] and df.attrs["summary"]["reference"] is None
    mnist_only = {k: v for k, v in common.items() if not k.startswith("feature_network")}  # refused where unread
    beside = ganeval.score(ckpt, metrics=("mnist_is", "modes", "mnist_fd"), out=tmp_path / "b", **mnist_only).iloc[0]
    assert beside["mnist_is"] == row["mnist_is"] and beside["class_kl"] == row["class_kl"]
    with pytest.raises(StatsError, match="expected one \\*_custom.npz, found 0"):
        ganeval.score(ckpt, metrics=("custom_is", "custom_fd"), reference=str(empty), out=tmp_path / "c", **common)
