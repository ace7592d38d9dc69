"""One-shot GPU check of ganeval's Inception path (written for one run on an H100; see benchmarks/README.md).

The 87 MB Inception weights are not carried, so every section uses torch-fidelity's Inception-v3 with seeded
random weights (``random_weights``: He-normal convolutions, mild BatchNorm statistics, from numpy's frozen
``RandomState`` stream, so this machine and the device build the same network; its SHA-256 is checked).

Sections (each in try/except; the JSON is rewritten after each one):

a. parity: CPU features computed beforehand on the development machine (``benchmarks/data/gpu_ref.npz``,
   ``--make-reference``) and on the device's own CPU vs the GPU at fp32 (TF32 off), TF32 and bf16;
b. throughput: ganeval's extraction pipeline (MLP generator on the GPU, uint8, resize, network) and the
   network alone, batches 250/500/1000, fp32/TF32/bf16, cudnn.benchmark, pinned host input, torch-fidelity's
   own network as a baseline; ``torch.compile`` in a child process with a time limit;
c. ``score_series`` on CUDA end to end with the random-weight extractor (benchmark-only injection);
d. the copying test's statistics and times on the CPU and the GPU (session 8: its distances follow the device);
e. everything printed as it goes and written to ``$OUT/gpu_results.json`` (or ``--out``).

    PYTHONPATH=/tmp/site:. python benchmarks/gpu_check.py            # on the device
    python benchmarks/gpu_check.py --make-reference                 # here, once: the CPU reference file
    python benchmarks/gpu_check.py --smoke                          # here: a tiny CPU dry run of every section
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

T0 = time.perf_counter()
HERE = Path(__file__).resolve().parent
REF_FILE = HERE / "data" / "gpu_ref.npz"
SEED = 0
N_REF = 32


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def elapsed() -> float:
    return time.perf_counter() - T0


# -- imports that work without torchvision/pillow (torch-fidelity's package __init__ needs them) --------------------


def import_torch_fidelity(light: bool = False) -> str:
    """Import torch-fidelity; without torchvision, register its package without running its ``__init__``."""
    if not light:
        try:
            import torch_fidelity  # noqa: F401

            return "full"
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to the light import
            log(f"torch_fidelity full import failed ({exc.__class__.__name__}: {exc}); using its modules directly")
    for name in [m for m in sys.modules if m == "torch_fidelity" or m.startswith("torch_fidelity.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torch_fidelity is not installed (pip install the wheel from .whl/ into /tmp/site)")
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    sys.modules["torch_fidelity"] = pkg
    import torch_fidelity.feature_extractor_inceptionv3  # noqa: F401  (torch only)

    try:
        import torch_fidelity.metric_kid  # noqa: F401
    except Exception:  # noqa: BLE001 - KID is not used here; ganeval.metrics.kid only needs the name
        stub = types.ModuleType("torch_fidelity.metric_kid")

        def kernel_mmd(*_a: object, **_k: object) -> None:
            raise RuntimeError("KID is unavailable in gpu_check (torch-fidelity imported without torchvision)")

        stub.kernel_mmd = kernel_mmd  # type: ignore[attr-defined]
        sys.modules["torch_fidelity.metric_kid"] = stub
    return "light"


# -- the seeded random-weight network -------------------------------------------------------------------------------


def random_weights(seed: int = SEED) -> Any:
    """torch-fidelity Inception-v3 state dict with seeded random values (non-degenerate activations)."""
    from ganeval.features.inception_net import build_tfid_inception
    from ganeval.features.inception_weights import InceptionWeights, state_dict_sha256

    shapes = build_tfid_inception(None, ("2048", "logits_unbiased")).state_dict()
    rs = np.random.RandomState(seed)
    sd: dict[str, torch.Tensor] = {}
    for key, v in shapes.items():
        shape = tuple(v.shape)
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.zeros((), dtype=torch.long)
            continue
        if key.endswith("conv.weight"):
            arr = rs.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif key.endswith("bn.weight") or key.endswith("bn.running_var"):
            arr = rs.uniform(0.8, 1.2, shape)
        elif key.endswith("bn.bias") or key.endswith("bn.running_mean"):
            arr = rs.standard_normal(shape) * 0.1
        elif key == "fc.weight":
            arr = rs.standard_normal(shape) / np.sqrt(shape[1])
        elif key == "fc.bias":
            arr = rs.standard_normal(shape) * 0.1
        else:
            raise KeyError(key)
        sd[key] = torch.from_numpy(arr.astype(np.float32))
    return InceptionWeights(sd, state_dict_sha256(sd), f"gpu_check random seed {seed}", True)


def tfid_net(weights: Any, device: torch.device) -> torch.nn.Module:
    """torch-fidelity's own network as it runs it (NCHW), pool + unbiased logits."""
    from ganeval.features.inception_net import build_tfid_inception

    return build_tfid_inception(weights.state_dict, ("2048", "logits_unbiased")).to(device).eval()


def mlp_generator(seed: int, device: torch.device) -> torch.nn.Module:
    from ganeval.models import MLPGenerator

    torch.manual_seed(seed)
    return MLPGenerator().to(device).eval()


def sample_images(n: int, seed: int = SEED) -> torch.Tensor:
    """n uint8 (n, 1, 28, 28) images of a seeded random MLP generator (CPU)."""
    from ganeval.sampling import generate, latents

    gen = mlp_generator(seed, torch.device("cpu"))
    return next(generate(gen, latents(n, 100, seed), n, torch.device("cpu"))).images


# -- precision modes ------------------------------------------------------------------------------------------------


def set_tf32(on: bool) -> None:
    """TF32 for cuDNN convolutions and cuBLAS matmuls. The legacy flags only: torch >= 2.9 raises when code reads
    them after the new ``fp32_precision`` API was used, and parts of torch (inductor) still read them."""
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def prec(mode: str, device: torch.device) -> str:
    """The extractor precision of a mode: ganeval switches TF32 itself (fp32 is float32, tf32 opts in; tf32 is a
    CUDA mode, so the CPU smoke run measures fp32 under its name)."""
    return "fp32" if mode == "tf32" and device.type != "cuda" else mode


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def diff_stats(got: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    d = (got.double().cpu() - ref.double().cpu()).abs()
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()),
            "max_rel": float(d.max() / ref.double().abs().max().clamp_min(1e-30))}


# -- sections -------------------------------------------------------------------------------------------------------


def make_reference(path: Path) -> dict[str, Any]:
    """On the development machine: the input batch and CPU features of the random-weight network."""
    from ganeval.features.inception import InceptionExtractor

    w = random_weights()
    images = sample_images(N_REF)
    with torch.no_grad():
        pool_tf, logits_tf = tfid_net(w, torch.device("cpu"))(images.repeat(1, 3, 1, 1))
    out = InceptionExtractor(w, device="cpu")(images)
    info = {"weights_sha256": w.sha256, "torch": torch.__version__, "numpy": np.__version__, "cpu": cpu_model(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images.numpy(), pool_tfid=pool_tf.numpy(), logits_tfid=logits_tf.numpy(),
                        pool_ganeval=out["pool"].numpy(), info=np.array(json.dumps(info)))
    std = pool_tf.std(0)
    summary = {"file": str(path), "bytes": path.stat().st_size, **info,
               "feature_mean": float(pool_tf.mean()), "feature_std_across_images_mean": float(std.mean()),
               "fraction_nonzero": float((pool_tf > 0).float().mean()),
               "ganeval_vs_tfid_cpu": diff_stats(out["pool"], pool_tf)}
    log(f"reference written: {json.dumps(summary)}")
    return summary


def parity(device: torch.device, weights: Any, n: int) -> dict[str, Any]:
    """CPU (here and on the device) vs device features at fp32 (TF32 off), TF32 and bf16; sFID's features read off
    FID's pass vs the spatial network alone (same device and precision) and vs the CPU's."""
    from ganeval.features.base import run_pass
    from ganeval.features.inception import InceptionExtractor

    res: dict[str, Any] = {}
    ref = np.load(REF_FILE, allow_pickle=False)
    info = json.loads(str(ref["info"]))
    res["reference_file"] = {"weights_sha256_match": info["weights_sha256"] == weights.sha256, **info}
    if info["weights_sha256"] != weights.sha256:
        log("WARNING: random weights differ from the reference file's; comparing against the device CPU only")
    images = torch.from_numpy(ref["images"])[:n]
    here = torch.from_numpy(ref["pool_tfid"])[:n]
    with torch.no_grad():
        tf_cpu = tfid_net(weights, torch.device("cpu"))
        dev_cpu, dev_cpu_logits = tf_cpu(images.repeat(1, 3, 1, 1))
    res["device_cpu_vs_reference_cpu"] = diff_stats(dev_cpu, here)
    res["device_cpu_ganeval_vs_tfid"] = diff_stats(InceptionExtractor(weights, device="cpu")(images)["pool"], dev_cpu)
    spatial_cpu = InceptionExtractor(weights, device="cpu", spatial=True)(images)["pool"]
    log(f"parity: device CPU vs reference CPU {res['device_cpu_vs_reference_cpu']}")
    if device.type != "cuda":
        log("parity: no CUDA device; GPU comparisons run on the CPU (smoke)")
    tf_dev = tfid_net(weights, device)
    for mode in ("fp32", "tf32", "bf16"):
        set_tf32(mode == "tf32")
        ex = InceptionExtractor(weights, device=device, precision=prec(mode, device))
        out = ex(images.to(device))
        with torch.no_grad():
            if mode == "bf16":
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    tf_pool, _ = tf_dev(images.to(device).repeat(1, 3, 1, 1))
            else:
                tf_pool, _ = tf_dev(images.to(device).repeat(1, 3, 1, 1))
        r = {"ganeval_vs_reference_cpu": diff_stats(out["pool"], here),
             "ganeval_vs_device_cpu": diff_stats(out["pool"], dev_cpu),
             "tfid_net_vs_device_cpu": diff_stats(tf_pool.float(), dev_cpu),
             "ganeval_logits_vs_device_cpu": diff_stats(out["logits"], dev_cpu_logits)}
        alone = InceptionExtractor(weights, device=device, precision=prec(mode, device), spatial=True)
        shared = run_pass(ex, [alone], images.to(device))["inception-spatial"]["pool"]
        r["sfid_shared_pass_vs_alone"] = diff_stats(shared, alone(images.to(device))["pool"])
        r["sfid_shared_pass_vs_device_cpu"] = diff_stats(shared, spatial_cpu)
        res[mode] = r
        log(f"parity {mode}: ganeval vs CPU max|Δ| {r['ganeval_vs_device_cpu']['max_abs']:.2e} "
            f"(rel {r['ganeval_vs_device_cpu']['max_rel']:.2e}); torch-fidelity net {r['tfid_net_vs_device_cpu']['max_abs']:.2e}; "
            f"sFID shared pass vs alone {r['sfid_shared_pass_vs_alone']['max_abs']:.2e}, vs CPU "
            f"{r['sfid_shared_pass_vs_device_cpu']['max_abs']:.2e}")
    set_tf32(False)
    return res


class _Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> _Timer:
        sync(self.device)
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        sync(self.device)
        self.s = time.perf_counter() - self.t


def pipeline_rate(device: torch.device, weights: Any, precision: str, batch: int, n: int,
                  extractor: Any = None, also: tuple[Any, ...] = ()) -> dict[str, Any]:
    """images/s of ganeval's ``extract`` (latents → MLP generator → uint8 → Inception → features on the host);
    ``also``: more extractors extracted with it (sFID's: read off the same pass)."""
    from ganeval.distributed import DistContext
    from ganeval.extraction import extract
    from ganeval.features.inception import InceptionExtractor
    from ganeval.memory import gpu_batch_bytes

    ex = extractor or InceptionExtractor(weights, device=device, precision=precision)
    src = memory_source("pipeline", 11)
    extract(src, [ex, *also], batch, SEED, batch, device, DistContext(), use_cache=False)  # warm-up (cuDNN plans, allocator)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with _Timer(device) as t:
        got = extract(src, [ex, *also], n, SEED, batch, device, DistContext(), use_cache=False)
    assert got.pool["inception"].shape == (n, 2048)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    # the memory check's floor for one batch (ganeval.memory): it must stay at or below the measured peak, or
    # --batch-size values that fit would be refused
    counted = gpu_batch_bytes({"inception"}, batch, precision) / 2**30
    return {"img_s": n / t.s, "seconds": t.s, "n": n, "batch": batch, "peak_gib": peak, "counted_gib": counted}


def network_rate(device: torch.device, forward: Callable[[torch.Tensor], Any], images: torch.Tensor, batch: int,
                 reps: int, pinned: bool = False) -> dict[str, Any]:
    """images/s of ``forward`` on uint8 batches (host-resident, optionally pinned, copied non_blocking)."""
    host = images[:batch].contiguous()
    if pinned and device.type == "cuda":
        host = host.pin_memory()
    with torch.inference_mode():
        forward(host.to(device, non_blocking=True))
        with _Timer(device) as t:
            for _ in range(reps):
                forward(host.to(device, non_blocking=True))
    return {"img_s": batch * reps / t.s, "seconds": t.s, "batch": batch, "reps": reps, "pinned": pinned}


def throughput(device: torch.device, weights: Any, sizes: dict[str, Any]) -> dict[str, Any]:
    from ganeval.features.inception import InceptionExtractor

    res: dict[str, Any] = {"pipeline": {}, "network": {}}
    images = sample_images(max(sizes["batches"]))
    for mode in ("fp32", "tf32", "bf16"):
        set_tf32(mode == "tf32")
        for batch in sizes["batches"]:
            if elapsed() > sizes["deadline"]:
                log("throughput: time budget reached, skipping the rest")
                return res
            key = f"{mode}_b{batch}"
            try:
                r = pipeline_rate(device, weights, prec(mode, device), batch, batch * sizes["batches_per_run"])
                res["pipeline"][key] = r
                held = (f" (peak {r['peak_gib']:.2f} GiB, memory check's floor {r['counted_gib']:.2f} GiB)"
                        if r["peak_gib"] is not None else "")
                log(f"pipeline {key}: {r['img_s']:.4g} img/s{held}")
            except Exception as exc:  # noqa: BLE001 - e.g. out of memory at the largest batch
                res["pipeline"][key] = {"error": f"{exc.__class__.__name__}: {exc}"}
                log(f"pipeline {key}: FAILED {exc.__class__.__name__}: {exc}")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    if elapsed() <= sizes["deadline"]:  # --resize clean: clean-fid's PIL resize runs on the host, one image at a time
        set_tf32(True)
        batch = sizes["batches"][1]
        try:
            ex = InceptionExtractor(weights, device=device, resize="clean", precision=prec("tf32", device))
            r = pipeline_rate(device, weights, prec("tf32", device), batch, batch * sizes["batches_per_run"], extractor=ex)
            res["pipeline"][f"clean_tf32_b{batch}"] = r
            log(f"pipeline clean_tf32_b{batch}: {r['img_s']:.4g} img/s")
        except Exception as exc:  # noqa: BLE001
            res["pipeline"][f"clean_tf32_b{batch}"] = {"error": f"{exc.__class__.__name__}: {exc}"}
            log(f"pipeline clean: FAILED {exc.__class__.__name__}: {exc}")
    if elapsed() <= sizes["deadline"]:  # FID's and sFID's features from one pass: to compare with tf32 at this batch
        set_tf32(True)
        batch = sizes["batches"][1]
        try:
            sp = InceptionExtractor(weights, device=device, precision=prec("tf32", device), spatial=True)
            r = pipeline_rate(device, weights, prec("tf32", device), batch, batch * sizes["batches_per_run"], also=(sp,))
            res["pipeline"][f"fid_sfid_tf32_b{batch}"] = r
            log(f"pipeline fid_sfid_tf32_b{batch}: {r['img_s']:.4g} img/s")
        except Exception as exc:  # noqa: BLE001
            res["pipeline"][f"fid_sfid_tf32_b{batch}"] = {"error": f"{exc.__class__.__name__}: {exc}"}
            log(f"pipeline fid_sfid: FAILED {exc.__class__.__name__}: {exc}")
    set_tf32(False)
    b = sizes["net_batch"]
    variants: list[tuple[str, str, bool, bool]] = [  # name, precision, tf32, cudnn.benchmark
        ("ganeval_fp32", "fp32", False, False), ("ganeval_tf32", "tf32", True, False),
        ("ganeval_bf16", "bf16", False, False), ("ganeval_bf16_cudnn_benchmark", "bf16", False, True),
        ("ganeval_tf32_cudnn_benchmark", "tf32", True, True)]
    for name, mode_, tf32, bench in variants:
        if elapsed() > sizes["deadline"]:
            break
        set_tf32(tf32)
        torch.backends.cudnn.benchmark = bench
        ex = InceptionExtractor(weights, device=device, precision=prec(mode_, device))
        try:
            res["network"][name] = network_rate(device, ex, images, b, sizes["reps"], pinned=True)
            log(f"network {name} b{b}: {res['network'][name]['img_s']:.4g} img/s")
        except Exception as exc:  # noqa: BLE001
            res["network"][name] = {"error": f"{exc.__class__.__name__}: {exc}"}
            log(f"network {name}: FAILED {exc}")
    torch.backends.cudnn.benchmark = False
    for tf32 in (False, True):
        if elapsed() > sizes["deadline"]:
            break
        set_tf32(tf32)
        name = f"torch_fidelity_net_{'tf32' if tf32 else 'fp32'}"
        net = tfid_net(weights, device)
        try:
            res["network"][name] = network_rate(device, lambda x, net=net: net(x.repeat(1, 3, 1, 1)), images, b, sizes["reps"],
                                                pinned=True)
            log(f"network {name} b{b}: {res['network'][name]['img_s']:.4g} img/s")
        except Exception as exc:  # noqa: BLE001
            res["network"][name] = {"error": f"{exc.__class__.__name__}: {exc}"}
    set_tf32(False)
    return res


def compile_child(device: torch.device, sizes: dict[str, Any], out_path: Path) -> None:
    """(child process) ``InceptionExtractor(compile=True)``: compile time, whether it compiled, parity, images/s."""
    from ganeval.features.inception import InceptionExtractor

    weights = random_weights()
    res: dict[str, Any] = {}
    images = sample_images(sizes["net_batch"])

    for mode in ("tf32", "fp32", "bf16"):  # tf32 first: the pipeline target is at fp32/TF32
        set_tf32(mode == "tf32")
        precision = prec(mode, device)
        eager = InceptionExtractor(weights, device=device, precision=precision)
        want = eager(images)["pool"]
        t = time.perf_counter()
        ex = InceptionExtractor(weights, device=device, precision=precision, compile=True)  # compiles, checks on a probe
        r: dict[str, Any] = {"compile_s": time.perf_counter() - t, "compiled": ex._forward is not ex.fast}
        if r["compiled"]:
            t = time.perf_counter()
            got = ex(images)["pool"]
            sync(device)
            r["first_full_batch_s"] = time.perf_counter() - t  # may include a recompile for this batch size
            r["vs_eager"] = diff_stats(got, want)
            r["within_1e-5"] = r["vs_eager"]["max_abs"] <= 1e-5
            r["rate"] = network_rate(device, ex, images, sizes["net_batch"], sizes["reps"], pinned=True)
            r["eager_rate"] = network_rate(device, eager, images, sizes["net_batch"], sizes["reps"], pinned=True)
            b = sizes["net_batch"]
            r["pipeline"] = pipeline_rate(device, weights, precision, b, b * sizes["batches_per_run"], extractor=ex)
            log(f"compile {mode}: pipeline (generation + resize + compiled network) {r['pipeline']['img_s']:.4g} img/s")
            log(f"compile {mode}: {r['compile_s']:.1f} s + {r['first_full_batch_s']:.1f} s first batch; "
                f"{r['rate']['img_s']:.4g} img/s compiled vs {r['eager_rate']['img_s']:.4g} eager; "
                f"max|Δ| vs eager {r['vs_eager']['max_abs']:.2e}")
        else:
            try:  # why: the same compile without ganeval's silent fallback
                torch.compile(eager.fast)(images[:4].to(device))
                r["error"] = "fell back, but a direct torch.compile ran"
            except Exception:  # noqa: BLE001
                r["error"] = traceback.format_exc()[-3000:]
            log(f"compile {mode}: NOT compiled after {r['compile_s']:.1f} s: {r['error'][-500:]}")
        res[mode] = r
        out_path.write_text(json.dumps(res))


def run_compile(args: argparse.Namespace, limit_s: float) -> dict[str, Any]:
    """The compile section in a child process, killed (with its compile workers) after ``limit_s``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "compile.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-compile", str(out)] + (["--smoke"] if args.smoke else [])
        cmd += ["--light-tfid"] if args.light_tfid else []
        proc = subprocess.Popen(cmd, start_new_session=True)
        try:
            proc.wait(timeout=limit_s)
            status = f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = f"killed after {limit_s:.0f} s"
        res = json.loads(out.read_text()) if out.is_file() else {}
        res["status"] = status
        log(f"compile child: {status}")
        return res


def memory_source(name: str, seed: int) -> Any:
    """A series entry whose generator is a seeded in-memory MLP (ganeval's callable input; no checkpoint file)."""
    from ganeval.inputs import resolve_target

    src = resolve_target(mlp_generator(seed, torch.device("cpu")), z_dim=100).sources[0]
    src.name, src.iteration = name, seed
    return src


def score_series_cuda(device: torch.device, weights: Any, sizes: dict[str, Any]) -> dict[str, Any]:
    """ganeval's ``score_series`` on the device with the random-weight extractor injected (benchmark-only)."""
    from ganeval.distributed import DistContext
    from ganeval.evaluate import score_series
    from ganeval.features import base
    from ganeval.features.inception import InceptionExtractor
    from ganeval.inputs import Series
    from ganeval.options import ScoreOptions
    from ganeval.sampling import generate, latents
    from ganeval.stats import RefStats, save_stats

    original = base.EXTRACTORS["inception"]
    base.EXTRACTORS["inception"] = lambda **kw: InceptionExtractor(weights, device=kw.get("device", "auto"),
                                                                     precision=kw.get("precision", "fp32"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["GANEVAL_CACHE_DIR"] = str(Path(tmp) / "cache")
            ex = InceptionExtractor(weights, device=device)
            t = time.perf_counter()
            gen = mlp_generator(99, device)
            feats = torch.cat([ex(b.images)["pool"].double().cpu() for b in
                               generate(gen, latents(sizes["ref_n"], 100, 99), sizes["batch"], device)])
            meta = {**ex.provenance(), "dataset": "gpu_check synthetic", "n": len(feats)}
            save_stats(Path(tmp) / "ref" / "synthetic_inception.npz", RefStats(feats.mean(0).numpy(), torch.cov(feats.T).numpy(), meta))
            ref_s = time.perf_counter() - t
            series = Series([memory_source(f"mlp_seed{s}", s) for s in (1, 2, 3)], [], Path(tmp))
            opts = ScoreOptions(num_samples=sizes["score_n"], metrics=("fid",), reference=str(Path(tmp) / "ref"),
                                device=device.type, batch_size=sizes["batch"], bootstrap=sizes["bootstrap"],
                                progress=False, use_cache=False)
            t = time.perf_counter()
            result = score_series(series, opts, DistContext())
            secs = time.perf_counter() - t
            table = result.table[["checkpoint", "status", "fid", "fid_ci_low", "fid_ci_high", "rank", "seconds"]]
            log(f"score_series on {device.type}: 3 × {sizes['score_n']} samples in {secs:.1f} s (reference {ref_s:.1f} s)\n"
                + table.to_string(index=False))
            return {"seconds": secs, "reference_seconds": ref_s, "n": sizes["score_n"], "checkpoints": 3,
                    "img_s": 3 * sizes["score_n"] / secs, "failed": bool(result.failed),
                    "table": json.loads(table.to_json(orient="records")),
                    "provenance": result.summary.get("provenance")}
    finally:
        base.EXTRACTORS["inception"] = original


def copying_check(device: torch.device, smoke: bool) -> dict[str, Any]:
    """The copying test (ganeval.metrics.copying) on the CPU and on ``device``: equal statistics, and the time of the
    once-per-series reference and of one checkpoint's test (MNIST-classifier-sized features, 10 % copies)."""
    from ganeval.metrics.copying import CopyingReference

    n_train, n = (3000, 500) if smoke else (60_000, 10_000)
    g = torch.Generator().manual_seed(SEED)
    centres = torch.randn(10, 128, generator=g) * 3
    def draw(k: int) -> torch.Tensor:
        return centres[torch.randint(10, (k,), generator=g)] + torch.randn(k, 128, generator=g)
    train, heldout = draw(n_train), draw(n)
    gen = torch.cat([train[: n // 10] + 0.01 * torch.randn(n // 10, 128, generator=g), draw(n - n // 10)])
    out: dict[str, Any] = {"n_train": n_train, "n": n}
    for dev in dict.fromkeys([torch.device("cpu"), device]):
        sync(dev)
        t = time.perf_counter()
        ref = CopyingReference(heldout, train, device=dev)
        ref.partition()  # the cells are fitted when first needed: timed with the reference
        sync(dev)
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        res = ref.test(gen)
        sync(dev)
        out[dev.type] = {**res, "reference_s": round(t_ref, 3), "test_s": round(time.perf_counter() - t, 3)}
        log(f"copying on {dev.type}: C_T {res['copying_ct']:+.4f}, share {res['copy_share']:.4f}, "
            f"reference {t_ref:.2f} s, test {out[dev.type]['test_s']:.2f} s")
    if device.type != "cpu":
        out["abs_diff_ct"] = abs(out["cpu"]["copying_ct"] - out[device.type]["copying_ct"])
        out["abs_diff_share"] = abs(out["cpu"]["copy_share"] - out[device.type]["copy_share"])
    return out


def decoding_check(smoke: bool) -> dict[str, Any]:
    """Images/s of decoding a folder of 256×256 RGB PNGs (``decoded_images``, what every folder or zip read goes
    through) on 1 thread and on pools of up to 8: the rate a folder of samples is read at on this machine's cores,
    beside the GPU's Inception rate; the images checked equal."""
    from PIL import Image

    from ganeval.sources.samples import decoded_images

    n = 40 if smoke else 1500
    rng = np.random.default_rng(SEED)
    yy, xx = np.mgrid[0:256, 0:256]
    out: dict[str, Any] = {"n": n, "size": "256x256 RGB", "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):  # smooth gradients with a little noise: PNGs of a realistic size
            base = (xx * (i % 7 + 1) + yy * (i % 5 + 1)) % 256
            im = np.stack([base, (base + 85) % 256, 255 - base], -1) + rng.integers(0, 8, (256, 256, 3))
            Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(Path(tmp) / f"{i:05d}.png")
        first: list[np.ndarray] | None = None
        for threads in (1, 2, 4, 8):
            best = 0.0
            for _ in range(2):
                t = time.perf_counter()
                images = [im for *_, im in decoded_images(Path(tmp), [], lambda: False, threads=threads)]
                best = max(best, len(images) / (time.perf_counter() - t))
            first = first or images
            out[f"threads_{threads}_per_s"] = round(best, 1)
            out[f"threads_{threads}_same_images"] = all(np.array_equal(a, b) for a, b in zip(first, images, strict=True))
            log(f"decoding on {threads} thread(s): {best:.0f} images/s")
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(tfid_mode: str) -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                           "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "cuda": torch.cuda.is_available(), "torch_fidelity_import": tfid_mode}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, gpu_mem_gib=round(p.total_memory / 2**30, 1), cuda_runtime=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    for mod in ("pandas", "tqdm", "safetensors", "torchvision"):
        env[f"has_{mod}"] = importlib.util.find_spec(mod) is not None
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one-shot GPU check of ganeval's Inception path")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, any device (CPU dry run)")
    p.add_argument("--make-reference", action="store_true", help=f"write {REF_FILE.relative_to(HERE.parent)} (CPU) and exit")
    p.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_results.json (default: $OUT)")
    p.add_argument("--budget-s", type=float, default=330.0, help="stop optional work after this many seconds")
    p.add_argument("--compile-limit-s", type=float, default=150.0)
    p.add_argument("--skip", default="", help="comma-separated sections to skip: parity,throughput,compile,score,copying,decoding")
    p.add_argument("--light-tfid", action="store_true", help="import torch-fidelity's modules without its __init__")
    p.add_argument("--child-compile", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("GANEVAL_OFFLINE", "1")
    tfid_mode = import_torch_fidelity(light=args.light_tfid)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    smoke = args.smoke or device.type != "cuda"
    sizes: dict[str, Any] = (
        {"batches": [2, 4], "batches_per_run": 1, "net_batch": 2, "reps": 1, "parity_n": 2, "ref_n": 16, "score_n": 8,
         "batch": 4, "bootstrap": 5}
        if smoke else
        {"batches": [250, 500, 1000], "batches_per_run": 8, "net_batch": 500, "reps": 8, "parity_n": N_REF, "ref_n": 5000,
         "score_n": 5000, "batch": 500, "bootstrap": 10})
    sizes["deadline"] = 1e9 if smoke else args.budget_s - 60
    if args.child_compile:
        compile_child(device, sizes, Path(args.child_compile))
        return 0
    if args.make_reference:
        make_reference(REF_FILE)
        return 0
    results: dict[str, Any] = {"env": environment(tfid_mode), "smoke": smoke, "sizes": sizes}
    log("env: " + json.dumps(results["env"]))
    out_file = Path(args.out) / "gpu_results.json" if args.out else None

    def save() -> None:
        results["elapsed_s"] = round(elapsed(), 1)
        if out_file is not None:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            out_file.write_text(json.dumps(results, indent=2, default=str) + "\n")

    skip = set(filter(None, args.skip.split(",")))
    weights = None
    try:
        t = time.perf_counter()
        weights = random_weights()
        results["weights"] = {"sha256": weights.sha256, "seconds": time.perf_counter() - t}
        log(f"random weights: sha256 {weights.sha256[:16]}… in {results['weights']['seconds']:.1f} s")
    except Exception:  # noqa: BLE001
        results["weights"] = {"error": traceback.format_exc()}
        log("random weights FAILED\n" + traceback.format_exc())
    sections: list[tuple[str, Callable[[], Any]]] = [
        ("parity", lambda: parity(device, weights, sizes["parity_n"])),
        ("throughput", lambda: throughput(device, weights, sizes)),
        ("score", lambda: score_series_cuda(device, weights, sizes)),
        ("copying", lambda: copying_check(device, smoke)),
        ("decoding", lambda: decoding_check(smoke)),
        ("compile", lambda: run_compile(args, args.compile_limit_s if smoke else
                                        min(args.compile_limit_s, max(30.0, args.budget_s - elapsed() - 15)))),
    ]
    for name, fn in sections:
        if name in skip or weights is None:
            continue
        if name == "compile" and not smoke and elapsed() > args.budget_s - 45:
            results[name] = {"skipped": "time budget"}
            log("compile: skipped (time budget)")
            continue
        log(f"== {name}")
        try:
            results[name] = fn()
        except Exception:  # noqa: BLE001 - report and go on with the next section
            results[name] = {"error": traceback.format_exc()}
            log(f"{name} FAILED\n" + traceback.format_exc())
        save()
    save()
    log(f"done in {elapsed():.0f} s; results {'in ' + str(out_file) if out_file else 'not written (no --out/$OUT)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
