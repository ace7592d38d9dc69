"""The ``mnist`` extractor: shipped weights verify, tampering is refused, accuracy, input handling,
reproducible training and the shipped reference statistics. CPU only, a few seconds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganeval.atomic import sha256_file
from ganeval.errors import DataError, WeightsError
from ganeval.features import get_extractor
from ganeval.features.mnist_classifier import SHIPPED_WEIGHTS, WEIGHTS_SHA256, MNISTClassifierExtractor
from ganeval.stats import MATCH_KEYS, SHIPPED_DIR, load_stats, stats_path
from ganeval.train.classifier import save_classifier, train_classifier


@pytest.fixture(scope="module")
def extractor() -> MNISTClassifierExtractor:
    return MNISTClassifierExtractor(device="cpu")


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    from ganeval.data import load_mnist

    try:
        return load_mnist("test", download=False)
    except DataError as exc:
        pytest.skip(f"MNIST not available (set GANEVAL_DATA_DIR): {exc}")


@pytest.fixture(scope="module")
def mnist_train_subset() -> tuple[np.ndarray, np.ndarray]:
    from ganeval.data import load_mnist

    try:
        x, y = load_mnist("train", download=False)
    except DataError as exc:
        pytest.skip(f"MNIST not available (set GANEVAL_DATA_DIR): {exc}")
    return x[:256], y[:256]


def _nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images)).unsqueeze(1)


def test_shipped_weights_verify_and_are_small() -> None:
    assert SHIPPED_WEIGHTS.is_file()
    assert SHIPPED_WEIGHTS.stat().st_size < 2_000_000
    assert sha256_file(SHIPPED_WEIGHTS) == WEIGHTS_SHA256


def test_registry_and_provenance(extractor: MNISTClassifierExtractor) -> None:
    ex = get_extractor("mnist", device="cpu")
    assert isinstance(ex, MNISTClassifierExtractor)
    prov = ex.provenance()
    assert set(prov) == {"extractor", "weights_sha256", "weights_source", "resize", "channels", "precision"}
    assert prov["extractor"] == "mnist" and prov["weights_sha256"] == WEIGHTS_SHA256 and prov["precision"] == "fp32"
    assert (ex.name, ex.pool_dim, ex.has_logits, ex.device.type) == ("mnist", 128, True, "cpu")


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "mnist_classifier.safetensors"
    shutil.copyfile(SHIPPED_WEIGHTS, bad)
    raw = bytearray(bad.read_bytes())
    raw[-100] ^= 0x01  # one bit inside the tensor data
    bad.write_bytes(bytes(raw))
    with pytest.raises(WeightsError) as err:
        MNISTClassifierExtractor(device="cpu", weights_path=bad)
    msg = str(err.value)
    assert str(bad) in msg and "\n" not in msg
    with pytest.raises(WeightsError):
        MNISTClassifierExtractor(device="cpu", weights_path=tmp_path / "missing.safetensors")


def test_accuracy_first_2000_test_images(extractor: MNISTClassifierExtractor, mnist_test) -> None:
    x, y = mnist_test
    preds = torch.cat([extractor(_nchw(x[s : s + 500]))["logits"].argmax(1) for s in range(0, 2000, 500)])
    acc = (preds.numpy() == y[:2000]).mean()
    assert acc >= 0.99, acc


def test_output_shapes_and_dtypes(extractor: MNISTClassifierExtractor, mnist_test) -> None:
    out = extractor(_nchw(mnist_test[0][:7]))
    assert set(out) == {"pool", "logits"}
    assert out["pool"].shape == (7, 128) and out["pool"].dtype == torch.float32
    assert out["logits"].shape == (7, 10) and out["logits"].dtype == torch.float32
    assert torch.isfinite(out["pool"]).all() and (out["pool"] >= 0).all()  # post-ReLU
    with pytest.raises(TypeError):
        extractor(_nchw(mnist_test[0][:2]).float())


def test_rgb_equals_gray_and_32px_is_resized(extractor: MNISTClassifierExtractor, mnist_test) -> None:
    x, y = mnist_test[0][:300], mnist_test[1][:300]
    gray = _nchw(x)
    ref = extractor(gray)
    rgb = extractor(gray.expand(-1, 3, -1, -1).contiguous())
    torch.testing.assert_close(rgb["logits"], ref["logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(rgb["pool"], ref["pool"], atol=1e-4, rtol=1e-4)
    # the resize rule itself: a 56×56 image is downsampled exactly as documented
    big = F.interpolate(gray.float(), size=(56, 56), mode="nearest").to(torch.uint8)
    want = F.interpolate(big.float() / 255, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(extractor.preprocess(big), want)
    # a digit padded to 32×32 (as DCGAN-style generators emit) is still recognised after resizing
    padded = F.pad(gray, (2, 2, 2, 2))
    acc32 = (extractor(padded)["logits"].argmax(1).numpy() == y).mean()
    acc32_rgb = (extractor(padded.expand(-1, 3, -1, -1))["logits"].argmax(1).numpy() == y).mean()
    assert acc32 >= 0.95 and acc32_rgb == acc32, (acc32, acc32_rgb)


def test_bf16_agrees_with_fp32(mnist_test) -> None:
    x = _nchw(mnist_test[0][:200])
    fp32 = MNISTClassifierExtractor(device="cpu")(x)["logits"].argmax(1)
    bf16_ex = MNISTClassifierExtractor(device="cpu", precision="bf16")
    assert bf16_ex.provenance()["precision"] == "bf16"
    bf16 = bf16_ex(x)["logits"].argmax(1)
    assert (fp32 == bf16).float().mean() >= 0.98


def test_training_is_deterministic(mnist_train_subset, tmp_path: Path) -> None:
    x, y = mnist_train_subset
    a = train_classifier(x, y, epochs=1, seed=3, batch_size=128)
    b = train_classifier(x, y, epochs=1, seed=3, batch_size=128)
    c = train_classifier(x, y, epochs=1, seed=4, batch_size=128)
    assert a.state_dict.keys() == b.state_dict.keys()
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k
    assert not torch.equal(a.state_dict["head.weight"], c.state_dict["head.weight"])
    # the saved file round-trips through the verified loader and carries the run's metadata
    from safetensors import safe_open

    da = save_classifier(tmp_path / "a.safetensors", a)
    ex = MNISTClassifierExtractor(device="cpu", weights_path=tmp_path / "a.safetensors", expected_sha256=da)
    assert ex.provenance()["weights_sha256"] == da
    for k, v in ex.net.state_dict().items():
        assert torch.equal(v, a.state_dict[k]), k
    with safe_open(str(tmp_path / "a.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["seed"] == "3" and meta["epochs"] == "1" and "package_version" in meta


@pytest.mark.parametrize("dataset", ["mnist-train", "mnist-test"])
def test_reference_stats_load_and_are_psd(dataset: str, extractor: MNISTClassifierExtractor) -> None:
    prov = extractor.provenance()
    stats = load_stats(stats_path(dataset, "mnist", SHIPPED_DIR), expect={k: prov[k] for k in MATCH_KEYS if k in prov})
    assert stats.mu.shape == (128,) and stats.sigma.shape == (128, 128)
    assert stats.meta["n"] == (60000 if dataset == "mnist-train" else 10000)
    np.testing.assert_allclose(stats.sigma, stats.sigma.T, rtol=0, atol=1e-6 * np.abs(stats.sigma).max())
    eig = np.linalg.eigvalsh((stats.sigma + stats.sigma.T) / 2)
    assert eig.min() >= -1e-6 * eig.max()


def test_cli_writes_here_by_default_and_leaves_the_shipped_weights(tmp_path: Path, cli, mnist_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from ganeval.features.mnist_classifier import SHIPPED_WEIGHTS

    before = sha256_file(SHIPPED_WEIGHTS)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("train-classifier", "--limit", "0")
    assert code == 2 and "--limit must be a positive number of images" in err
    threads = torch.get_num_threads()
    code, out, err = cli("train-classifier", "--epochs", "1", "--limit", "256", "--threads", "1", "--data-dir", mnist_dir)
    assert code == 0, err
    assert torch.get_num_threads() == threads  # --threads applies to the training only
    assert (tmp_path / "mnist_classifier.safetensors").is_file() and sha256_file(SHIPPED_WEIGHTS) == before
    assert f"copy it to {SHIPPED_WEIGHTS}" in out


@pytest.mark.parametrize("args", [["--seed", str(2**64)], ["--seed=-9223372036854775809"], ["--seed=-1"]])
def test_cli_refuses_a_seed_torch_cannot_take(tmp_path: Path, cli, args: list[str]) -> None:
    """torch.manual_seed raised an overflow ValueError after the data was loaded: a traceback, exit 1."""
    out = tmp_path / "c.safetensors"
    code, _, err = cli("train-classifier", "--epochs", "1", "--limit", "256", "--out", out, *args)
    assert code == 2 and err.count("\n") == 1 and "is out of range" in err and "--seed" in err, err
    assert not out.exists()


def test_cli_refuses_an_out_it_cannot_write_before_training(tmp_path: Path, cli) -> None:
    """--out naming a folder trained to the end (46 minutes for the recipe) and then failed, naming a temp file."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    for out, problem in ((tmp_path / "folder", "is a folder"), (tmp_path / "file" / "c.safetensors", "is not a folder")):
        code, _, err = cli("train-classifier", "--epochs", "1", "--limit", "256", "--out", out)
        assert code == 2 and err.count("\n") == 1 and f"--out {out}: " in err and problem in err, err
        assert "epoch" not in err and ".tmp" not in err
    assert list((tmp_path / "folder").iterdir()) == [] and (tmp_path / "file").read_text() == "x"


def test_a_last_batch_of_one_image_is_left_out(mnist_train_subset) -> None:
    """129 images at batch 128 left one image alone in the last batch: BatchNorm1d raised (a traceback)."""
    x, y = mnist_train_subset
    logs: list[str] = []
    trained = train_classifier(x[:129], y[:129], epochs=1, seed=0, batch_size=128, log=logs.append)
    assert trained.n_train == 129 and all(torch.isfinite(v).all() for v in trained.state_dict.values())
    assert logs and logs[0].startswith("epoch 1/1: loss ")
    from ganeval.errors import GanevalError

    with pytest.raises(GanevalError, match=r"at least 2 images .* got batch size 128 and 1 image"):
        train_classifier(x[:1], y[:1], epochs=1)


@pytest.mark.parametrize(("args", "problem"), [(["--limit", "1"], "--limit 1 is too few"),
                                               (["--limit", "256", "--threads", "-1"],
                                                "--threads must be an integer of at least 1 (got -1)"),
                                               (["--limit", "256", "--threads", "0"],
                                                "--threads must be an integer of at least 1 (got 0)")])
def test_cli_refuses_a_limit_of_one_and_bad_threads(tmp_path: Path, cli, args: list[str], problem: str) -> None:
    """--limit 1 hit BatchNorm1d's batch-of-one error and --threads -1 torch.set_num_threads: both tracebacks."""
    out = tmp_path / "c.safetensors"
    code, _, err = cli("train-classifier", "--epochs", "1", "--out", out, *args)
    assert code == 2 and err.count("\n") == 1 and problem in err, err
    assert not out.exists()
