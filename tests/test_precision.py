"""Numerics: the fast Inception forward against torch-fidelity's unmodified forward on 28×28 uint8 images,
and bf16 rankings against fp32 on a small synthetic series (MNIST classifier metrics, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from synthetic import write_bank_checkpoint

from ganeval.devices import cpu_has_native_bf16
from ganeval.evaluate import score
from ganeval.features.inception import InceptionExtractor
from ganeval.features.inception_net import build_tfid_inception

#: Max |Δ| allowed between ganeval's and torch-fidelity's float32 pool features (2048-d, values up to ~6).
#: torch-fidelity's own float32 forward is ~1.2e-5 from its float64 forward on such inputs, so any other
#: float32 evaluation order (channels_last, folded BatchNorm) lands at about that distance too.
MAX_ABS = 2.5e-5
MEAN_ABS = 1e-6



def _inputs(n: int) -> torch.Tensor:
    from ganeval.data import load_mnist

    real = torch.from_numpy(load_mnist("test")[0][:n].copy()).unsqueeze(1)
    noise = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    return torch.cat([real, noise])


def test_fast_forward_matches_torch_fidelity_forward(weights, extractor: InceptionExtractor) -> None:
    """Gray 28×28 uint8 → ganeval's extractor (1 channel) vs ``FeatureExtractorInceptionV3.forward`` (tiled ×3, NCHW)."""
    images = _inputs(6)
    tiled = images.repeat(1, 3, 1, 1)
    tf = build_tfid_inception(weights.state_dict)
    with torch.no_grad():
        (theirs,) = tf(tiled)
        tf64 = build_tfid_inception(weights.state_dict).double()
        tf64.feature_extractor_internal_dtype = torch.float64
        (exact,) = tf64(tiled)
    ours = extractor(images)["pool"]
    diff = (ours - theirs).abs()
    own = (theirs.double() - exact).abs()  # torch-fidelity's own float32 round-off
    assert diff.max().item() <= MAX_ABS and diff.mean().item() <= MEAN_ABS
    assert diff.max().item() <= 2.5 * own.max().item() and diff.mean().item() <= 2.5 * own.mean().item()


def test_three_channel_input_and_gray_path_agree(extractor: InceptionExtractor) -> None:
    """A tiled 3-channel batch takes the 3-channel first convolution and gives the gray path's features."""
    ex = extractor
    images = _inputs(2)
    gray = ex(images)["pool"]
    tiled = ex(images.repeat(1, 3, 1, 1))["pool"]
    assert (gray - tiled).abs().max().item() <= 1e-5


def test_one_channel_resize_is_bit_exact() -> None:
    """The resize and normalisation on one channel equal torch-fidelity's on each tiled channel, bit for bit."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from ganeval.features.inception import tf1x_resize

    x = _inputs(2)
    theirs = (interpolate_bilinear_2d_like_tensorflow1x(x.repeat(1, 3, 1, 1).float(), (299, 299), align_corners=False) - 128) / 128
    ours = (tf1x_resize(x.float()) - 128) / 128
    assert torch.equal(theirs, ours.expand(-1, 3, -1, -1))


def test_large_batches_are_split_without_changing_features(extractor: InceptionExtractor) -> None:
    from ganeval.features import inception

    ex = extractor
    images = _inputs(3)
    whole = ex(images)["pool"]
    old = inception.CPU_CHUNK
    try:
        inception.CPU_CHUNK = 2
        split = ex(images)["pool"]
    finally:
        inception.CPU_CHUNK = old
    assert (whole - split).abs().max().item() <= 1e-5


@pytest.mark.parametrize("native", [True, False])
def test_bf16_fused_path_equals_autocast(weights, monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """On a CPU with native bf16, bf16 runs oneDNN's fused conv+ReLU in bf16: exactly what autocast's conv2d + relu
    give; on one without (AVX2: oneDNN refuses bf16), autocast's own conv2d, emulated. Either way the same features."""
    import ganeval.features.inception as inception

    if native and not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16: oneDNN's bf16 op refuses to run here")
    monkeypatch.setattr(inception, "cpu_has_native_bf16", lambda: native)
    images = _inputs(2)
    fused = InceptionExtractor(weights, device="cpu", precision="bf16")
    convs = [m for m in fused.fast.modules() if isinstance(m, inception.FusedConvBNReLU)]
    assert convs and all(m.use_mkldnn_bf16 == native and (m.packed_bf16 is not None) == native for m in convs)
    got = fused(images)["pool"]
    fused.fast.set_mkldnn(False)  # the plain F.conv2d + relu path, under the same autocast
    want = fused(images)["pool"]
    assert torch.equal(got, want)


# -- bf16 rankings ---------------------------------------------------------------------------------


def _reference(folder: Path, precision: str) -> Path:
    """MNIST-classifier statistics of 2,000 test digits at ``precision`` (score refuses mixed precisions)."""
    from ganeval.features import get_extractor
    from ganeval.stats import compute_stats, save_stats, stats_path

    ex = get_extractor("mnist", device="cpu", precision=precision)
    stats = compute_stats("mnist-test", ex, batch_size=500, limit=2000, command="tests/test_precision.py")
    folder.mkdir(parents=True, exist_ok=True)
    save_stats(stats_path("mnist-test", "mnist", folder), stats)
    return folder


def test_bf16_rankings_agree_with_fp32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganeval.features.mnist_classifier import SHIPPED_WEIGHTS

    if not SHIPPED_WEIGHTS.is_file():
        pytest.skip(f"{SHIPPED_WEIGHTS} not trained yet")
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    for it, noise in zip((1000, 2000, 3000), (0.8, 0.0, 0.4), strict=True):
        write_bank_checkpoint(tmp_path / "run", it, noise=noise)
    frames = {}
    for precision in ("fp32", "bf16"):
        ref = _reference(tmp_path / f"ref_{precision}", precision)
        frames[precision] = score(tmp_path / "run", num_samples=300, metrics=("mnist_is", "mnist_fd", "modes"),
                                  reference=str(ref), precision=precision, bootstrap=0, device="cpu", progress=False)
    fp32, bf16 = frames["fp32"], frames["bf16"]
    assert fp32.attrs["summary"]["precision"] == "fp32" and bf16.attrs["summary"]["precision"] == "bf16"
    assert list(fp32["rank"]) == list(bf16["rank"]) == [3, 1, 2]
    for col in ("mnist_fd", "mnist_is"):
        assert fp32[col].rank().tolist() == bf16[col].rank().tolist()
        assert (bf16[col] - fp32[col]).abs().max() <= 0.05 * fp32[col].abs().max()
    assert list(fp32["modes_covered"]) == list(bf16["modes_covered"])


def test_real_features_are_never_shared_across_precisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bf16 run's cached real features must not reach an fp32 run (nor the reverse): its KID and precision/recall
    equal a fresh-cache fp32 run's exactly, and the reference's precision is in the provenance."""
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    opts = {"num_samples": 300, "metrics": ("mnist_fd", "mnist_kid", "mnist_prc"), "bootstrap": 0, "device": "cpu",
            "progress": False, "kid_subset_size": 100}
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "fresh"))
    fresh = score(tmp_path / "run", **opts)
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "shared"))
    bf16 = score(tmp_path / "run", **opts, precision="bf16")
    after = score(tmp_path / "run", **opts)
    cols = ["mnist_kid_mean", "mnist_precision", "mnist_recall", "mnist_fd"]
    assert after[cols].to_numpy().tolist() == fresh[cols].to_numpy().tolist()
    assert bf16["mnist_kid_mean"].item() != fresh["mnist_kid_mean"].item()  # they do differ: the test can tell
    prov = bf16.attrs["summary"]["provenance"]["mnist"]
    assert prov["precision"] == "bf16" and prov["reference_precision"] == "fp32"
    emulated = [any("no native bf16" in n for n in run.attrs["summary"]["notes"]) for run in (fresh, bf16, after)]
    assert emulated == [False, not cpu_has_native_bf16(), False]  # bf16 on a CPU that emulates it: several times slower


def test_bf16_note_names_a_cpu_that_emulates_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only bf16 on a CPU without native bf16 gets the note (a CUDA device or fp32 never)."""
    import ganeval.devices as devices

    for native in (True, False):
        monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda native=native: native)
        assert (devices.emulated_bf16_note("bf16", "cpu") is None) == native
        assert devices.emulated_bf16_note("fp32", "cpu") is None and devices.emulated_bf16_note("bf16", "cuda") is None
    assert "no native bf16" in str(devices.emulated_bf16_note("bf16", torch.device("cpu")))


def test_path_lengths_run_in_fp32_at_either_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 rounding of the features is ~250x a 1e-4 step's change: path lengths must not depend on --precision."""
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3)
    ppl = {p: score(tmp_path / "run", num_samples=200, metrics=("mnist_fd", "mnist_ppl"), bootstrap=0, device="cpu",
                    progress=False, precision=p)["mnist_ppl"].item() for p in ("fp32", "bf16")}
    assert ppl["bf16"] == pytest.approx(ppl["fp32"], rel=1e-9), ppl


@pytest.mark.parametrize("precision", ["fp16", "BF16", None])
def test_unknown_precision_is_an_input_error_in_the_api(tmp_path: Path, precision: object) -> None:
    from ganeval.errors import GanevalError

    write_bank_checkpoint(tmp_path / "run", 1000)
    with pytest.raises(GanevalError, match="--precision must be one of fp32, tf32, bf16"):
        score(tmp_path / "run", num_samples=50, metrics=("mnist_fd",), precision=precision, device="cpu", progress=False)


@pytest.fixture
def tf32_on() -> Any:
    """cuDNN's default (TF32 allowed for float32 convolutions), and matrix products allowed too; restored after."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_fp32_means_float32_not_cudnns_tf32_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tf32_on: Any) -> None:
    """cuDNN lets float32 convolutions run in TF32 by default: "fp32" GPU features were TF32 ones (1.5e-3 from the
    CPU's on an H100) under an fp32 label and cache key. Generators and feature networks now run with TF32 off
    unless --precision tf32, and the process's switches are restored afterwards."""
    from ganeval.features.base import forward_precision

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    seen: list[tuple[bool, bool]] = []
    gen, _ = __import__("ganeval.checkpoints", fromlist=["load_generator"]).load_generator(
        write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3))

    def sample(z: torch.Tensor) -> torch.Tensor:
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return gen(z)

    sample.latent_dim = gen.latent_dim  # type: ignore[attr-defined]
    df = score(sample, num_samples=100, metrics=("mnist_fd",), bootstrap=0, device="cpu", progress=False, cache_key="t")
    assert df["status"].item() == "ok" and seen and set(seen) == {(False, False)}
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
    for precision, device, expected in (("fp32", "cpu", False), ("bf16", "cpu", False), ("tf32", "cuda", True)):
        with forward_precision(precision, torch.device(device)):
            assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (expected, expected)
        with forward_precision(precision, torch.device(device), fp32=True):  # path lengths: float32 always
            assert not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.allow_tf32


def test_tf32_is_refused_off_cuda_before_any_work(tmp_path: Path, cli: Any) -> None:
    write_bank_checkpoint(tmp_path / "run", 1000)
    code, out, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd", "--device", "cpu", "--precision", "tf32")
    assert code == 2 and "--precision tf32 needs a CUDA device" in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "run" / "report").exists()
    code, out, err = cli("train", "--model", "mlp", "--out", tmp_path / "t", "--iterations", "10", "--device", "cpu",
                         "--early-stop", "--stop-precision", "tf32")
    assert code == 2 and "needs a CUDA device" in err and not (tmp_path / "t").exists(), err


def test_early_stop_and_watch_say_once_that_this_cpu_emulates_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    mnist_dir: Path, cli) -> None:
    """``train --stop-precision bf16`` and ``watch --precision bf16`` judge in bf16: on a CPU that emulates it, one
    ``note:`` line each, naming the flag (not one per judgement); on a CPU with native bf16, none."""
    import ganeval.devices as devices

    run = tmp_path / "run"
    for native in (False, True):
        monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda native=native: native)
        out = tmp_path / f"train_{native}"
        code, _, err = cli("train", "--model", "mlp", "--iterations", "4", "--checkpoint-every", "2", "--out", out,
                           "--early-stop", "--stop-samples", "60", "--stop-precision", "bf16", "--device", "cpu",
                           "--no-progress")
        assert code == 0, err
        assert err.count("note: --stop-precision bf16: this CPU has no native bf16") == (not native), err
        assert "note: --precision bf16" not in err  # the training itself ran in fp32
        if not native:
            out.rename(run)
        code, _, err = cli("watch", run, "--precision", "bf16", "--num-samples", "60", "--interval", "0.05",
                           "--idle-timeout", "1", "--settle", "0", "--device", "cpu")
        assert code == 0, err
        assert err.count("note: --precision bf16: this CPU has no native bf16") == (not native), err


@pytest.mark.parametrize("before", ["untouched", "medium", "legacy tf32", "new api"])
def test_scoring_puts_torchs_precision_switches_back_as_they_were(before: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``torch.set_float32_matmul_precision("medium")``, a score left torch unable to say its matmul precision
    (RuntimeError: "mix of the legacy and new APIs"), and from defaults it wrote new switches (cuda.matmul 'ieee')
    the caller never set; "medium"'s bf16 oneDNN products also stayed on while "fp32" features were computed."""
    from ganeval.threads import _legacy_state, _precision_state, _switch

    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    gen, _ = __import__("ganeval.checkpoints", fromlist=["load_generator"]).load_generator(
        write_bank_checkpoint(tmp_path / "run", 1000, noise=0.3))
    seen: list[tuple[Any, Any]] = []

    def sample(z: torch.Tensor) -> torch.Tensor:
        seen.append((_legacy_state(), _precision_state()["mkldnn.matmul"]))  # type: ignore[index]
        return gen(z)

    sample.latent_dim = gen.latent_dim  # type: ignore[attr-defined]
    state, legacy = _precision_state(), _legacy_state()
    try:
        if before == "medium":
            torch.set_float32_matmul_precision("medium")
        elif before == "legacy tf32":
            torch.backends.cuda.matmul.allow_tf32 = True
        elif before == "new api":
            torch.backends.mkldnn.matmul.fp32_precision = "bf16"  # mixed: torch's legacy getters now raise
        given, given_legacy = _precision_state(), _legacy_state()
        df = score(sample, num_samples=100, metrics=("mnist_fd",), bootstrap=0, device="cpu", progress=False, cache_key="t")
        assert df["status"].item() == "ok" and seen
        assert _precision_state() == given and _legacy_state() == given_legacy  # exactly as the caller left them
        assert (given_legacy is None) == (before == "new api")
        legacy_inside = {s[0] for s in seen}
        assert {s[1] for s in seen} == {"ieee"}  # float32 products in float32, whatever the caller had
        assert legacy_inside == ({None} if before == "new api" else {("highest", False)})
    finally:
        if legacy is not None:
            torch.set_float32_matmul_precision(legacy[0])
            torch.backends.cudnn.allow_tf32 = legacy[1]
        for path, value in (state or {}).items():
            _switch(path).fp32_precision = value
    assert _precision_state() == state and _legacy_state() == legacy
