"""The shipped DCGAN checkpoint (``dcgan_info``, seed 3): loads safely, scores in the documented range at small N,
and passes/fails the gate.

Expected ranges come from docs/results.md (N = 10,000, seed 0: MNIST-IS 9.64, MNIST FD 0.23, 10 modes) widened
for N = 2,000 (measured 9.44–9.51 and 0.25–0.39 over seeds 0–2; IS with 10 splits of 200 is biased low and FD
biased high at small N). A regression of the generator, the classifier, the sampling or the metric code moves
these numbers out of range (earlier shipped checkpoints would fail: seed-1 ``dcgan_info`` 8.95–9.00 and FD
0.97–1.32, session-3 ``dcgan`` 8.39–8.53).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganeval.checkpoints import load_generator, read_metadata
from ganeval.evaluate import score

SHIPPED = Path(__file__).resolve().parents[1] / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
MNIST_ONLY = ("mnist_is", "mnist_fd", "modes")


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def test_shipped_dcgan_metadata_and_weights() -> None:
    meta = read_metadata(SHIPPED)
    assert meta["model"] == "dcgan_info" and meta["iteration"] == 10000 and meta["ema"] is True
    assert meta["recipe"]["batch_size"] == 128 and meta["recipe"]["lr_decay_start"] == 5000 and meta["seed"] == 3
    assert meta["exported_from"]["name"] == "ckpt_0010000.safetensors" and meta["exported_from"]["weights"] == "g_ema"
    gen, info = load_generator(SHIPPED)
    assert info["weights"] == "g_ema" and sum(p.numel() for p in gen.parameters()) > 1_000_000


def test_shipped_dcgan_mnist_metrics_in_expected_range() -> None:
    df = score(SHIPPED, num_samples=2000, metrics=MNIST_ONLY, bootstrap=20, device="cpu", seed=0, progress=False)
    row = df.iloc[0]
    assert row["status"] == "ok"
    assert 9.3 <= row["mnist_is"] <= 9.75
    assert 0.1 <= row["mnist_fd"] <= 0.7
    assert row["modes_covered"] == 10 and not row["mode_collapse"]
    assert row["mnist_fd_ci_low"] <= row["mnist_fd"] <= row["mnist_fd_ci_high"]


def test_gate_on_shipped_dcgan(tmp_path: Path, cli) -> None:
    common = [SHIPPED, "--num-samples", "2000", "--metrics", *MNIST_ONLY, "--bootstrap", "0", "--device", "cpu",
              "--no-progress", "--json"]
    code, out, _ = cli("gate", *common, "--min-mnist-is", "7.5", "--min-modes", "10", "--out", tmp_path / "ok")
    assert code == 0, out
    assert json.loads(out)["passed"] is True
    code, out, _ = cli("gate", *common, "--min-mnist-is", "9.8", "--out", tmp_path / "strict")
    assert code == 1
    assert json.loads(out)["passed"] is False
