"""ganeval vs torch-fidelity 0.4.0 on one checkpoint: end-to-end FID time, FID from statistics, Inception images/s.

Both tools see exactly the same images: torch-fidelity's generator wrapper ignores its own noise and replays
ganeval's shared latent set (``ganeval.sampling.latents``) in order, converted with ``ganeval.sampling.to_uint8``
and tiled to 3 channels; both use the same Inception weights (ours, also written as a .pth for torch-fidelity)
and the same reference statistics (written into torch-fidelity's cache under its cache name for input2, so that
it only reads them). All caches are cold in every round: a fresh ``GANEVAL_CACHE_DIR`` and torch-fidelity
``cache_root``, and ganeval's in-memory √Σr cache cleared. Rounds alternate which tool goes first; medians are
reported, with CPU seconds beside wall seconds (compare within one run when the machine is shared).

    python benchmarks/bench_vs_torch_fidelity.py --checkpoint runs/x/ckpt_0010000.safetensors \
        --num-samples 500 --reference mnist-test [--device cpu|cuda] [--precision fp32|bf16] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# The offline stand-ins for torch-fidelity's and clean-fid's downloads, shared with the parity tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from other_tools import torch_fidelity_weights  # noqa: E402

#: torch-fidelity's input2: never read (the statistics come from its cache); anything else would fail loudly.
STATS_ONLY_INPUT = "<reference statistics: torch-fidelity cache only>"
TFID_EXTRACTOR = "inception-v3-compat"


def machine() -> dict[str, Any]:
    """CPU model, cores, load, torch version and threads, GPU if any."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")(),
    }
    try:
        import torch_fidelity

        info["torch_fidelity"] = torch_fidelity.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


class Timer:
    """Wall and process-CPU seconds of a block (CUDA synchronised)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    @contextmanager
    def __call__(self) -> Iterator[Timer]:
        _sync()
        w, c = time.perf_counter(), time.process_time()
        try:
            yield self
        finally:
            _sync()
            self.wall += time.perf_counter() - w
            self.cpu += time.process_time() - c


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class ReplayGenerator(nn.Module):
    """Ignores torch-fidelity's noise: yields ganeval's samples of the shared latent set, in order, as uint8 ×3.

    The samples come from ganeval's own reader of the checkpoint (``Source.open``), so the generator runs as
    ganeval runs it (on a CPU in channels_last, whose convolutions round differently from the default layout: a
    plain ``generator(z)`` put 1 of 392,000 DCGAN pixels one level apart)."""

    def __init__(self, checkpoint: str, n: int, seed: int, device: torch.device) -> None:
        super().__init__()
        from ganeval.inputs import resolve_target

        self.samples = resolve_target(checkpoint).sources[0].open(device, n, seed)
        self.n = n
        self.pos = 0
        self.digest = hashlib.sha256()

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        b = noise.shape[0]
        if self.pos + b > self.n:
            raise RuntimeError("torch-fidelity asked for more samples than the replayed latent set holds")
        images = self.samples.rows(self.pos, self.pos + b).images.to(noise.device)  # nan_to_num + to_uint8, as ganeval
        self.pos += b
        self.digest.update(images.cpu().numpy().tobytes())
        return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images


def write_tfid_reference(mu: np.ndarray, sigma: np.ndarray, cache_root: Path, cache_name: str) -> Path:
    """The reference statistics where torch-fidelity looks for input2's FID statistics.

    dtypes as torch-fidelity computes its own (``mu`` float32 from float32 features, ``np.cov`` float64), which
    ``fid_statistics_to_metric`` requires to match between its two inputs.
    """
    path = cache_root / f"{cache_name}-{TFID_EXTRACTOR}-stat-fid-2048.pt"
    cache_root.mkdir(parents=True, exist_ok=True)
    torch.save({"mu": mu.astype(np.float32), "sigma": sigma.astype(np.float64)}, path)
    return path


def run_torch_fidelity(args: argparse.Namespace, device: torch.device, weights_pth: Path, cache_root: Path,
                       cache_name: str) -> dict[str, Any]:
    """torch-fidelity's ``calculate_metrics`` on the checkpoint (replayed latents); returns its FID."""
    import torch_fidelity

    replay = ReplayGenerator(args.checkpoint, args.num_samples, args.seed, device)
    wrapped = torch_fidelity.GenerativeModelModuleWrapper(replay, int(replay.samples.z.shape[1]), "normal", 0)
    try:
        metrics = torch_fidelity.calculate_metrics(
            input1=wrapped, input1_model_num_samples=args.num_samples,
            input2=STATS_ONLY_INPUT, input2_cache_name=cache_name,
            fid=True, cuda=device.type == "cuda", batch_size=args.tfid_batch_size,
            feature_extractor_weights_path=str(weights_pth), cache_root=str(cache_root), cache=True,
            verbose=False,
        )
    finally:
        replay.samples.close()
    if replay.pos != args.num_samples:
        raise RuntimeError(f"torch-fidelity drew {replay.pos} samples, expected {args.num_samples}")
    return {"fid": float(metrics["frechet_inception_distance"]), "images_sha256": replay.digest.hexdigest()}


def ganeval_images_sha256(args: argparse.Namespace, device: torch.device) -> str:
    """SHA-256 of the uint8 samples ganeval scores (its own source reader, its batch size), for the identity check."""
    from ganeval.inputs import resolve_target

    src = resolve_target(args.checkpoint).sources[0]
    digest = hashlib.sha256()
    samples = src.open(device, args.num_samples, args.seed)
    try:
        for start in range(0, args.num_samples, args.batch_size):
            digest.update(samples.rows(start, min(start + args.batch_size, args.num_samples)).images.cpu().numpy().tobytes())
    finally:
        samples.close()
    return digest.hexdigest()


def run_ganeval(args: argparse.Namespace, weights_path: Path) -> dict[str, Any]:
    """``ganeval.evaluate.score`` with ``metrics=("fid",)``, ``bootstrap=0``."""
    from ganeval.evaluate import score
    from ganeval.metrics.fid import FIDReference

    FIDReference.clear_cache()  # cold: no √Σr from an earlier round
    df = score(args.checkpoint, num_samples=args.num_samples, reference=args.reference, metrics=("fid",),
               bootstrap=0, device=args.device, precision="fp32", batch_size=args.batch_size, seed=args.seed,
               inception_weights=str(weights_path), progress=False)
    row = df.iloc[0]
    if row["status"] != "ok":
        raise RuntimeError(f"ganeval score failed: {row['error']}")
    return {"fid": float(row["fid"])}


def cached_features() -> torch.Tensor:
    """ganeval's pool features of the checkpoint from the (fresh) feature cache written by ``score``."""
    from ganeval.cache import cache_dir

    files = sorted(cache_dir("features").glob("*.npz"))
    if len(files) != 1:
        raise RuntimeError(f"expected one cached feature file, found {len(files)}")
    with np.load(files[0], allow_pickle=False) as z:
        return torch.from_numpy(z["pool"])


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(best wall, its CPU seconds, last result) over ``repeats`` runs."""
    best = (float("inf"), 0.0, None)
    for _ in range(repeats):
        t = Timer()
        with t():
            out = fn()
        if t.wall < best[0]:
            best = (t.wall, t.cpu, out)
    return best


def fid_from_stats(features: torch.Tensor, mu_r: np.ndarray, sigma_r: np.ndarray, repeats: int) -> dict[str, Any]:
    """``fid_statistics_to_metric`` vs ``FIDReference(...).fid`` (with and without the one-off √Σr)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    from ganeval.metrics.fid import FIDReference

    stat_g = fid_features_to_statistics(features)
    stat_r = {"mu": mu_r.astype(np.float32), "sigma": sigma_r.astype(np.float64)}
    x = features.double()
    mu_g, sigma_g = x.mean(0).numpy(), torch.cov(x.T).numpy()

    def ganeval_cold() -> float:
        FIDReference.clear_cache()
        return FIDReference(mu_r, sigma_r).fid(mu_g, sigma_g)

    t_tf, c_tf, fid_tf = best_of(lambda: fid_statistics_to_metric(stat_g, stat_r, False)["frechet_inception_distance"], repeats)
    t_cold, c_cold, fid_cold = best_of(ganeval_cold, repeats)
    ref = FIDReference(mu_r, sigma_r)
    t_warm, c_warm, fid_warm = best_of(lambda: ref.fid(mu_g, sigma_g), repeats)
    return {
        "dim": int(mu_r.size), "repeats": repeats,
        "torch_fidelity_s": t_tf, "torch_fidelity_cpu_s": c_tf, "torch_fidelity_fid": float(fid_tf),
        "ganeval_with_sqrt_s": t_cold, "ganeval_with_sqrt_cpu_s": c_cold, "ganeval_fid": float(fid_cold),
        "ganeval_without_sqrt_s": t_warm, "ganeval_without_sqrt_cpu_s": c_warm,
        "speedup_with_sqrt": t_tf / t_cold, "speedup_without_sqrt": t_tf / t_warm,
        "abs_diff": abs(float(fid_tf) - float(fid_cold)), "warm_equals_cold": float(fid_warm) == float(fid_cold),
    }


def inception_pass(device: torch.device, weights: Any, n: int, batch: int, precisions: list[str]) -> dict[str, Any]:
    """Images/s of torch-fidelity's forward (NCHW, 3 tiled channels) and ganeval's extractor on uint8 28×28."""
    from ganeval.features.inception import InceptionExtractor
    from ganeval.features.inception_net import build_tfid_inception

    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out: dict[str, Any] = {"device": device.type, "images": n, "batch": batch}
    tf = build_tfid_inception(weights.state_dict).to(device).eval()

    def tfid_run() -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([tf(b.to(device).repeat(1, 3, 1, 1))[0].cpu() for b in images.split(batch)])

    with torch.no_grad():
        tf(images[:2].to(device).repeat(1, 3, 1, 1))
    t = Timer()
    with t():
        ref = tfid_run()
    out["torch_fidelity_fp32"] = {"img_s": n / t.wall, "cpu_s_per_img": t.cpu / n}
    for prec in precisions:
        ex = InceptionExtractor(weights, device=device, precision=prec)
        ex(images[:2])
        t = Timer()
        with t():
            got = torch.cat([ex(b)["pool"].cpu() for b in images.split(batch)])
        d = (got - ref).abs()
        out[f"ganeval_{prec}"] = {"img_s": n / t.wall, "cpu_s_per_img": t.cpu / n,
                                  "max_abs_diff_vs_tfid": float(d.max()), "mean_abs_diff_vs_tfid": float(d.mean())}
        out[f"speedup_{prec}"] = out[f"ganeval_{prec}"]["img_s"] / out["torch_fidelity_fp32"]["img_s"]
    return out


def bf16_fid(args: argparse.Namespace, device: torch.device, weights: Any, mu_r: np.ndarray, sigma_r: np.ndarray) -> dict[str, Any]:
    """ganeval's sampling + Inception at bf16 on the same latents, FID against the same (fp32) reference.

    Runs the extraction path directly, so the FID shift is bf16's alone (no other option of ``score`` differs).
    """
    from ganeval.distributed import DistContext
    from ganeval.extraction import extract
    from ganeval.features.inception import InceptionExtractor
    from ganeval.inputs import resolve_target
    from ganeval.metrics.fid import FIDReference

    out: dict[str, Any] = {}
    src = resolve_target(args.checkpoint).sources[0]
    for prec in ("fp32", "bf16"):
        ex = InceptionExtractor(weights, device=device, precision=prec)
        t = Timer()
        with t():
            got = extract(src, [ex], args.num_samples, args.seed, args.batch_size, device, DistContext(), use_cache=False)
        x = got.pool["inception"].double()
        fid = FIDReference(mu_r, sigma_r).fid(x.mean(0).numpy(), torch.cov(x.T).numpy())
        out[prec] = {"extract_s": t.wall, "extract_cpu_s": t.cpu, "fid": fid}
    out["speedup"] = out["fp32"]["extract_s"] / out["bf16"]["extract_s"]
    out["fid_abs_diff"] = abs(out["bf16"]["fid"] - out["fp32"]["fid"])
    out["fid_rel_diff"] = out["fid_abs_diff"] / abs(out["fp32"]["fid"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--num-samples", type=int, required=True)
    p.add_argument("--reference", required=True, help="mnist-train, mnist-test, a folder or an .npz (Inception stats)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: also measure ganeval at bf16")
    p.add_argument("--batch-size", type=int, default=100, help="ganeval's batch size (default: its default)")
    p.add_argument("--tfid-batch-size", type=int, default=64, help="torch-fidelity's batch size (default: its default)")
    p.add_argument("--rounds", type=int, default=3, help="end-to-end pairs, alternating which tool goes first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the FID-from-statistics timings (best kept)")
    p.add_argument("--pass-images", type=int, default=64, help="images for the Inception images/s measurement (0: skip)")
    p.add_argument("--order", default="tfid-first", choices=["tfid-first", "ganeval-first"], help="of the first round")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("GANEVAL_OFFLINE", "1")
    device = torch.device(args.device)

    import torch_fidelity  # noqa: F401  (imported before any timing, like ganeval)

    import ganeval.evaluate  # noqa: F401
    from ganeval.features.inception_weights import resolve_inception_weights
    from ganeval.reference import reference_path
    from ganeval.stats import load_stats

    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    print("machine: " + ", ".join(f"{k}={v}" for k, v in results["machine"].items()), flush=True)

    weights = resolve_inception_weights()  # the user's weights, resolved before the caches are swapped
    ref_path = reference_path(args.reference, "inception")
    ref = load_stats(ref_path)
    print(f"reference: {ref_path} (n={ref.meta.get('n')}, {ref.meta.get('dataset')}); weights: {weights.source}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ganeval-bench-") as tmp_s:
        tmp = Path(tmp_s)
        from safetensors.torch import save_file

        weights_st = tmp / "inception.safetensors"
        save_file(dict(weights.state_dict), str(weights_st))
        weights_pth = torch_fidelity_weights(weights, tmp / "inception-weights-for-torch-fidelity.pth")
        cache_name = f"ganeval-ref-{str(ref.meta.get('file_sha256', 'x'))[:16]}"
        e2e: dict[str, Any] = {"num_samples": args.num_samples, "batch_size": args.batch_size,
                               "tfid_batch_size": args.tfid_batch_size, "rounds": []}
        for rnd in range(args.rounds):
            # every round cold: fresh ganeval cache folder, fresh torch-fidelity cache_root holding only the reference
            os.environ["GANEVAL_CACHE_DIR"] = str(tmp / f"ganeval-cache-{rnd}")
            cache_root = tmp / f"tfid-cache-{rnd}"
            write_tfid_reference(ref.mu, ref.sigma, cache_root, cache_name)
            runs = {"torch_fidelity": lambda cr=cache_root: run_torch_fidelity(args, device, weights_pth, cr, cache_name),
                    "ganeval": lambda: run_ganeval(args, weights_st)}
            order = list(runs) if (rnd % 2 == 0) == (args.order == "tfid-first") else list(reversed(runs))
            this: dict[str, Any] = {"order": order}
            for name in order:
                t = Timer()
                with t():
                    r = runs[name]()
                this[name] = {**r, "wall_s": t.wall, "cpu_s": t.cpu}
                print(f"round {rnd + 1}/{args.rounds} end-to-end {name}: {t.wall:.1f} s wall, {t.cpu:.1f} s CPU, "
                      f"FID {r['fid']:.6f}", flush=True)
            e2e["rounds"].append(this)
        rounds = e2e["rounds"]
        for name in ("torch_fidelity", "ganeval"):
            walls = [r[name]["wall_s"] for r in rounds]
            cpus = [r[name]["cpu_s"] for r in rounds]
            e2e[name] = {"fid": rounds[-1][name]["fid"], "wall_s_median": statistics.median(walls), "wall_s_min": min(walls),
                         "cpu_s_median": statistics.median(cpus), "cpu_s_min": min(cpus)}
        tf_, ge = e2e["torch_fidelity"], e2e["ganeval"]
        e2e["speedup_wall_median"] = tf_["wall_s_median"] / ge["wall_s_median"]
        e2e["speedup_wall_min"] = tf_["wall_s_min"] / ge["wall_s_min"]
        e2e["speedup_cpu_median"] = tf_["cpu_s_median"] / ge["cpu_s_median"]
        e2e["speedup_wall_per_round"] = [r["torch_fidelity"]["wall_s"] / r["ganeval"]["wall_s"] for r in rounds]
        e2e["fid_abs_diff"] = abs(tf_["fid"] - ge["fid"])
        e2e["fid_same_every_round"] = all(len({r[n]["fid"] for r in rounds}) == 1 for n in ("torch_fidelity", "ganeval"))
        e2e["ganeval_images_sha256"] = ganeval_images_sha256(args, device)
        e2e["images_identical"] = all(r["torch_fidelity"]["images_sha256"] == e2e["ganeval_images_sha256"] for r in rounds)
        results["end_to_end"] = e2e
        print(f"end-to-end N={args.num_samples}, {args.rounds} round(s): torch-fidelity {tf_['wall_s_median']:.1f} s, "
              f"ganeval {ge['wall_s_median']:.1f} s (median wall) -> {e2e['speedup_wall_median']:.2f}x "
              f"(min-based {e2e['speedup_wall_min']:.2f}x, CPU-time {e2e['speedup_cpu_median']:.2f}x; per round "
              + ", ".join(f"{x:.2f}" for x in e2e["speedup_wall_per_round"]) + ")", flush=True)
        print(f"FID torch-fidelity {tf_['fid']:.6f}, ganeval {ge['fid']:.6f}, |diff| {e2e['fid_abs_diff']:.2e}; "
              f"identical uint8 inputs: {e2e['images_identical']}", flush=True)

        feats = cached_features()
        st = fid_from_stats(feats, ref.mu, ref.sigma, args.repeats)
        results["fid_from_stats"] = st
        print(f"FID from statistics ({st['dim']}-d, best of {st['repeats']}): torch-fidelity {st['torch_fidelity_s']:.2f} s; "
              f"ganeval {st['ganeval_with_sqrt_s']:.2f} s incl. factor of Sigma_r ({st['speedup_with_sqrt']:.1f}x), "
              f"{st['ganeval_without_sqrt_s']:.3f} s excl. ({st['speedup_without_sqrt']:.1f}x); |FID diff| {st['abs_diff']:.2e}",
              flush=True)

        if args.precision == "bf16":
            b = bf16_fid(args, device, weights, ref.mu, ref.sigma)
            results["bf16"] = b
            print(f"bf16 (extraction of N={args.num_samples}): fp32 {b['fp32']['extract_s']:.1f} s, bf16 {b['bf16']['extract_s']:.1f} s "
                  f"({b['speedup']:.2f}x); FID fp32 {b['fp32']['fid']:.4f}, bf16 {b['bf16']['fid']:.4f}, "
                  f"|diff| {b['fid_abs_diff']:.4f} ({100 * b['fid_rel_diff']:.3f} %)", flush=True)

        if args.pass_images > 0:
            precs = ["fp32", "bf16"] if args.precision == "bf16" else ["fp32"]
            devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
            results["inception_pass"] = []
            for dev in devices:
                ip = inception_pass(dev, weights, args.pass_images, min(args.batch_size, args.pass_images), precs)
                results["inception_pass"].append(ip)
                line = ", ".join(f"ganeval {pr} {ip[f'ganeval_{pr}']['img_s']:.2f} img/s ({ip[f'speedup_{pr}']:.2f}x, "
                                 f"max|Δf| {ip[f'ganeval_{pr}']['max_abs_diff_vs_tfid']:.1e})" for pr in precs)
                print(f"Inception pass on {dev.type} ({args.pass_images} images): torch-fidelity "
                      f"{ip['torch_fidelity_fp32']['img_s']:.2f} img/s; {line}", flush=True)
    results["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
