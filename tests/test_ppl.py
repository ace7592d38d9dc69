"""Perceptual path length (mnist_ppl, custom_ppl): torch-fidelity's computation pair for pair, a closed form for a
linear generator, and what it says of generators that ignore their latent or have none."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_bank_checkpoint
from torch import nn

import ganeval
from ganeval.metrics.ppl import summarize
from ganeval.models import MODELS
from ganeval.path_length import EPSILON, SEED_OFFSET, path_lengths
from ganeval.sampling import latents
from ganeval.sources.base import GeneratorSamples

N = 300


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _mlp() -> nn.Module:
    torch.manual_seed(3)
    return MODELS["mlp"].generator().eval()  # an untrained MLP generator: tanh output in [-1, 1]


def _samples(gen: nn.Module, n: int = N, seed: int = 0, output_range: str = "-1,1") -> GeneratorSamples:
    return GeneratorSamples(gen, name="g", n=n, seed=seed, z_dim=gen.latent_dim, z_type="normal", output_range=output_range,
                            device=torch.device("cpu"), sha256=None, cache_key=None)


def test_pairs_equal_torch_fidelity_and_so_does_the_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch-fidelity's calculate_ppl, fed the same latents and the same feature distance, computes the same path
    length for every pair, and its 1–99th percentile mean and std equal ganeval's."""
    import torch_fidelity
    from torch_fidelity import metric_ppl
    from torch_fidelity.generative_model_base import GenerativeModelBase
    from torch_fidelity.registry import NOISE_SOURCE_REGISTRY, SAMPLE_SIMILARITY_REGISTRY
    from torch_fidelity.sample_similarity_base import SampleSimilarityBase

    from ganeval.features import get_extractor

    gen, mnist = _mlp(), get_extractor("mnist", device="cpu")
    z = latents(2 * N, gen.latent_dim, 0 + SEED_OFFSET)
    halves = iter([z[:N], z[N:]])

    class Model(GenerativeModelBase):
        z_size, z_type, num_classes = gen.latent_dim, "ganeval-latents", 0

        def forward(self, zz: torch.Tensor) -> torch.Tensor:
            return ((gen(zz) + 1) / 2).clamp(0, 1)

    class Distance(SampleSimilarityBase):
        def __init__(self, name: str, **_: object) -> None:
            super().__init__(name)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            fa, fb = mnist.float_features(a)["pool"].double(), mnist.float_features(b)["pool"].double()
            return ((fa - fb) ** 2).sum(1)

    monkeypatch.setitem(NOISE_SOURCE_REGISTRY, "ganeval-latents", lambda rng, shape: next(halves))
    monkeypatch.setitem(SAMPLE_SIMILARITY_REGISTRY, "ganeval-sq-l2", Distance)
    # torch-fidelity 0.4.0 calls np.percentile(..., interpolation=...), an argument numpy 2.4 removed; give its module
    # a numpy whose percentile translates it, so its own discarding code runs
    shim = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    shim.percentile = lambda a, q, interpolation: np.percentile(a, q, method=interpolation)
    monkeypatch.setattr(metric_ppl, "np", shim)
    kwargs = {"input1": Model(), "input1_model_num_samples": N, "ppl": True, "ppl_sample_similarity": "ganeval-sq-l2",
              "cuda": False, "batch_size": 250, "verbose": False}  # ganeval's batch for MNIST features: same round-off
    theirs = torch_fidelity.calculate_metrics(**kwargs, ppl_reduction="none", ppl_discard_percentile_lower=None,
                                              ppl_discard_percentile_higher=None)
    ours = path_lengths(_samples(gen), mnist, N, 0, batch_size=250)
    np.testing.assert_allclose(ours, theirs["perceptual_path_length_raw"], rtol=1e-6)
    assert ours.std() > 0.1 * ours.mean() > 0  # a real spread of values, not a degenerate case

    halves = iter([z[:N], z[N:]])
    trimmed = torch_fidelity.calculate_metrics(**kwargs)
    got = summarize(ours)
    assert got["kept"] < N  # the percentiles did discard
    assert got["mean"] == pytest.approx(trimmed["perceptual_path_length_mean"], rel=1e-6)
    assert got["std"] == pytest.approx(trimmed["perceptual_path_length_std"], rel=1e-6)


class _Flatten(nn.Module):
    """Features = the pixels themselves, so a linear generator's path length has a closed form."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class _Linear(nn.Module):
    latent_dim = 8

    def __init__(self, c: float = 0.06) -> None:
        super().__init__()
        self.c = c
        self.w = torch.randn(16, 8, generator=torch.Generator().manual_seed(1)) / 8**0.5

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (0.5 + self.c * (z @ self.w.T)).view(-1, 1, 4, 4)  # output_range 0,1; never clamped at these values


def test_linear_generator_has_its_closed_form(tmp_path: Path) -> None:
    """For G(z) = 0.5 + c·Wz and identity features the path length of a pair is c²‖W(z1 − z0)‖², whatever ε."""
    gen = _Linear()
    z = latents(2 * N, 8, 0 + SEED_OFFSET).double()
    exact = (gen.c**2) * (((z[N:] - z[:N]) @ gen.w.double().T) ** 2).sum(1).numpy()
    ours = path_lengths(_samples(gen, output_range="0,1"), _Extractor(), N, 0, batch_size=100)
    np.testing.assert_allclose(ours, exact, rtol=2e-2)  # float32 generator: a 1e-5 step on pixels near 0.5
    assert summarize(ours)["mean"] == pytest.approx(summarize(exact)["mean"], rel=5e-3)

    df = ganeval.score(gen, metrics=("custom_fd", "custom_ppl"), feature_network=_Flatten, z_dim=8, output_range="0,1",
                       num_samples=N, bootstrap=0, device="cpu", progress=False, reference=_reference(tmp_path))
    assert df["custom_ppl"].iloc[0] == pytest.approx(summarize(exact)["mean"], rel=5e-3)
    assert df["custom_ppl_std"].iloc[0] == pytest.approx(summarize(exact)["std"], rel=2e-2)


class _Extractor:
    name = "custom"

    def float_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pool": x.flatten(1)}


def _reference(tmp_path: Path) -> Path:
    """Statistics of 4×4 images under _Flatten (any will do: path length does not use the reference)."""
    from ganeval.features.custom import CustomExtractor
    from ganeval.stats import compute_stats, save_stats

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "real.npz", images=rng.integers(0, 256, (64, 1, 4, 4), dtype=np.uint8))
    stats = compute_stats(tmp_path / "real.npz", CustomExtractor(_Flatten, device="cpu"), 64, progress=False)
    save_stats(tmp_path / "ref" / "real_custom.npz", stats)
    return tmp_path / "ref"


def test_score_ppl_of_checkpoints_sample_sets_and_the_floor(tmp_path: Path, cli, mnist_dir: Path) -> None:
    """A generator that ignores its latent (a bank of 20 digits) has path length 0; adding a latent-driven pattern
    lengthens it, twice the pattern about four times; stored samples have none (said once), nor has the real floor
    (said never)."""
    for it, noise in ((1000, 0.0), (2000, 0.15), (3000, 0.3)):
        write_bank_checkpoint(tmp_path / "run", it, noise=noise, bank_size=20)
    code, _, err = cli("score", tmp_path / "run", "--metrics", "mnist_fd,mnist_ppl", "--num-samples", 500, "--bootstrap", 0,
                       "--device", "cpu", "--no-progress", "--real-floor", "--out", tmp_path / "rep")
    assert code == 0, err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    ppl = [row["mnist_ppl"] for row in summary["rows"]]
    assert ppl[0] == 0.0 and 0 < ppl[1] and 3 < ppl[2] / ppl[1] < 5, ppl
    assert not any("ppl" in note for note in summary["notes"])
    assert "mnist_ppl,mnist_ppl_std" in (tmp_path / "rep" / "scores.csv").read_text().splitlines()[0]
    assert "MNIST PPL" in (tmp_path / "rep" / "report.html").read_text()

    images = np.random.default_rng(0).integers(0, 256, (500, 1, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "samples.npz", images=images)
    code, _, err = cli("score", tmp_path / "samples.npz", "--metrics", "mnist_fd,mnist_ppl", "--num-samples", 500,
                       "--bootstrap", 0, "--device", "cpu", "--no-progress", "--out", tmp_path / "rep2")
    assert code == 0, err
    summary = json.loads((tmp_path / "rep2" / "summary.json").read_text())
    assert summary["rows"][0]["mnist_ppl"] is None or np.isnan(summary["rows"][0]["mnist_ppl"])
    assert any("mnist_ppl unavailable: path length needs a generator" in note for note in summary["notes"])


def test_uint8_generators_are_refused() -> None:
    from ganeval.errors import GanevalError
    from ganeval.features import get_extractor

    def quantised(z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(z), 1, 28, 28, dtype=torch.uint8)

    quantised.latent_dim = 4  # type: ignore[attr-defined]
    with pytest.raises(GanevalError, match="outputs torch.uint8 images; path lengths need its continuous output"):
        path_lengths(_samples(quantised, n=8), get_extractor("mnist", device="cpu"), 8, 0, 8)  # type: ignore[arg-type]
    assert EPSILON == 1e-4


def test_the_summary_does_not_depend_on_the_batch() -> None:
    """A 1e-4 latent step moves pixels by about 1e-5, near float32's resolution, so single path lengths can carry
    round-off that depends on the batch (percents, where the CPU's kernels block the batch differently; on other
    CPUs none); the trimmed mean over the pairs does not (well below 1e-3)."""
    from ganeval.features import get_extractor

    gen, mnist = _mlp(), get_extractor("mnist", device="cpu")
    a = path_lengths(_samples(gen), mnist, N, 0, batch_size=250)
    b = path_lengths(_samples(gen), mnist, N, 0, batch_size=600)
    np.testing.assert_allclose(a, b, rtol=0.2)  # the same pairs, whatever the batch: at most round-off apart
    assert summarize(a)["mean"] == pytest.approx(summarize(b)["mean"], rel=1e-3)


def test_interval_covers_the_population_value() -> None:
    """The bootstrap interval of the trimmed mean holds the population's trimmed mean about 95% of the time
    (exponential path lengths: skewed, like real ones), narrows as 1/√n, and is NaN without fitting resamples."""
    from ganeval.metrics.interval import bootstrap_interval
    from ganeval.metrics.ppl import ppl_replicates

    def ppl_interval(d: np.ndarray, estimate: float, idx: list[np.ndarray]) -> tuple[float, float]:
        reps = ppl_replicates(d, idx)  # as the registered metric does
        return (float("nan"), float("nan")) if reps is None else bootstrap_interval(estimate, reps)

    rng = np.random.default_rng(0)
    truth = summarize(rng.exponential(size=2_000_000))["mean"]
    hits, widths = 0, {}
    for n in (400, 1600):
        w = []
        for _ in range(120 if n == 400 else 20):
            d = rng.exponential(size=n)
            lo, hi = ppl_interval(d, summarize(d)["mean"], [rng.integers(0, n, n) for _ in range(200)])
            assert lo < summarize(d)["mean"] < hi
            hits += n == 400 and lo <= truth <= hi
            w.append(hi - lo)
        widths[n] = float(np.mean(w))
    assert 0.88 <= hits / 120 <= 0.99, hits
    assert widths[1600] / widths[400] == pytest.approx(0.5, rel=0.15), widths
    d = rng.exponential(size=50)
    assert np.isfinite(ppl_interval(d, 1.0, [np.arange(50), np.arange(50)[::-1]])).all()
    assert all(np.isnan(ppl_interval(d, 1.0, idx)).all() for idx in ([], [np.arange(40)] * 2, [np.arange(50) + 1] * 2))


def test_score_gives_ppl_intervals_and_the_gate_judges_them(tmp_path: Path, cli, mnist_dir: Path) -> None:
    """With --bootstrap each checkpoint's MNIST PPL carries an interval (computed afresh, not taken from a cached
    result without one); ``gate --max-mnist-ppl`` passes and fails on it, and needs the metric when it scores."""
    for it, noise in ((1000, 0.15), (2000, 0.3)):
        write_bank_checkpoint(tmp_path / "run", it, noise=noise, bank_size=20)
    args = ("--metrics", "mnist_fd,mnist_ppl", "--num-samples", 300, "--device", "cpu", "--no-progress")
    code, _, err = cli("score", tmp_path / "run", *args, "--bootstrap", 0, "--out", tmp_path / "rep0")
    assert code == 0, err
    code, _, err = cli("score", tmp_path / "run", *args, "--bootstrap", 60, "--out", tmp_path / "rep")
    assert code == 0, err
    plain = json.loads((tmp_path / "rep0" / "summary.json").read_text())["rows"]
    rows = json.loads((tmp_path / "rep" / "summary.json").read_text())["rows"]
    for r0, r in zip(plain, rows, strict=True):
        assert r["mnist_ppl"] == r0["mnist_ppl"] and r0["mnist_ppl_ci_low"] is None
        assert r["mnist_ppl_ci_low"] < r["mnist_ppl"] < r["mnist_ppl_ci_high"]
    assert rows[1]["mnist_ppl_ci_low"] > rows[0]["mnist_ppl_ci_high"]  # four times the path length, far beyond noise
    assert "mnist_ppl_ci_low" in (tmp_path / "rep" / "scores.csv").read_text().splitlines()[0]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert f"[{rows[1]['mnist_ppl_ci_low']:.4g}, {rows[1]['mnist_ppl_ci_high']:.4g}]" in html
    import pandas as pd

    from ganeval.report.plots import series_plot

    plot = series_plot(pd.read_csv(tmp_path / "rep" / "scores.csv"))
    assert plot.png is not None and plot.panels == ["mnist_fd", "mnist_ppl"]  # PPL over training, with its band

    last = rows[1]["mnist_ppl"]
    code, out, err = cli("gate", tmp_path / "rep", "--max-mnist-ppl", last * 1.01)
    assert code == 0 and "PASS max_mnist_ppl: mnist_ppl = " in out and "95% CI [" in out, out + err
    code, out, err = cli("gate", tmp_path / "rep", "--max-mnist-ppl", last * 0.99, "--checkpoint", "last")
    assert code == 1 and "FAIL max_mnist_ppl" in out and "above the limit" in out, out + err
    code, out, err = cli("gate", tmp_path / "rep", "--max-mnist-ppl", last * 0.99, "--checkpoint", "best")
    assert code == 0, out + err  # the first checkpoint: the better MNIST FD and the shorter paths
    code, _, err = cli("gate", tmp_path / "run", "--max-mnist-ppl", 1.0, "--metrics", "mnist_fd", "--num-samples", 300)
    assert code == 2 and "--max-mnist-ppl needs the 'mnist_ppl' metric" in err, err


def test_compare_gives_the_paired_difference_of_path_lengths(tmp_path: Path, mnist_dir: Path) -> None:
    """compare keeps each run's path-length replicates: the difference of two generators gets a paired bootstrap
    interval (four times the path length: beyond noise, called "longer paths", never "worse"); a generator against
    itself is no difference; without resamples it is not tested."""
    for it, noise in ((1000, 0.15), (2000, 0.3)):
        write_bank_checkpoint(tmp_path / "run", it, noise=noise, bank_size=20)
    a, b = tmp_path / "run" / "ckpt_0001000.safetensors", tmp_path / "run" / "ckpt_0002000.safetensors"
    fast = {"metrics": ("mnist_fd", "mnist_ppl"), "num_samples": 300, "device": "cpu", "progress": False}
    comp = ganeval.compare({"a": [a], "b": [b], "a_again": [a]}, bootstrap=60, **fast)
    d = comp.differences.set_index(["arm", "metric"])
    ppl = d.loc[("b", "mnist_ppl")]
    rows = comp.members.set_index("arm")
    assert ppl["difference"] == pytest.approx(rows.loc["b", "mnist_ppl"] - rows.loc["a", "mnist_ppl"])
    assert 0 < ppl["ci_low"] < ppl["difference"] < ppl["ci_high"] and ppl["verdict"] == "longer paths", ppl
    assert ppl["method"] == "paired bootstrap over latent pairs"
    same = d.loc[("a_again", "mnist_ppl")]
    assert same["difference"] == 0 and same["verdict"] == "no detectable difference"
    arms = comp.arms.set_index("arm")
    assert arms.loc["b", "mnist_ppl_ci_low"] < arms.loc["b", "mnist_ppl"] < arms.loc["b", "mnist_ppl_ci_high"]
    assert comp.summary["primary_metric"] == "mnist_fd"
    assert any("b has longer paths (a smoothness reading, not a quality verdict)" in line
               for line in comp.summary["verdict_lines"]), comp.summary["verdict_lines"]

    plain = ganeval.compare({"a": [a], "b": [b]}, bootstrap=0, **fast).differences.set_index("metric")
    assert plain.loc["mnist_ppl", "verdict"] == "not tested"


def test_a_generator_failing_in_the_path_length_pass_fails_its_checkpoint(tmp_path: Path) -> None:
    """A generator that raises only on the path-length pass's larger batches: its row is an error naming the
    exception (as when it fails while sampling, and as under torchrun), not a traceback nor a quiet NaN."""
    def picky(z: torch.Tensor) -> torch.Tensor:
        if len(z) > 100:
            raise RuntimeError("out of memory (simulated)")
        return torch.tanh(z[:, :1, None, None].expand(-1, 1, 28, 28))

    picky.latent_dim = 4  # type: ignore[attr-defined]
    df = ganeval.score(picky, metrics=("mnist_fd", "mnist_ppl"), num_samples=200, batch_size=50, bootstrap=0,
                       device="cpu", progress=False)
    assert df["status"].iloc[0] == "error" and df.attrs["failed"]
    assert df["error"].iloc[0].endswith("RuntimeError: out of memory (simulated)"), df["error"].iloc[0]
