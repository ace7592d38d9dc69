"""``ganeval stats``: reference statistics of real data for one extractor."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="compute mean/covariance of real features (reference statistics)")
    p.add_argument("--dataset", required=True, metavar="DATASET",
                   help="mnist-train, mnist-test, or your own real images: a folder or zip of PNG/JPEG, or a uint8 .npz")
    p.add_argument("--extractor", required=True, choices=["inception", "inception-clean", "mnist", "custom"],
                   help="inception-clean: Inception with clean-fid's resize (name its file *_inception-clean.npz); "
                        "custom: your --feature-network (name its file *_custom.npz)")
    p.add_argument("--out", required=True, type=Path, help="output .npz (a .json sidecar is written beside it)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--inception-weights", default=None)
    p.add_argument("--feature-network", default=None, metavar="MODULE:NAME",
                   help="with --extractor custom: your feature network (docs/reference_stats.md#your-own-feature-network)")
    p.add_argument("--feature-network-kwargs", default=None, metavar="JSON", help="its constructor arguments")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--save-features", type=Path, default=None, help="also save per-image pool features (.npy, float32)")
    p.add_argument("--distributed", action="store_true", default=None,
                   help="join the torchrun process group (automatic when WORLD_SIZE > 1)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ganeval.atomic import atomic_path
    from ganeval.distributed import from_env
    from ganeval.errors import EXIT_FAILED
    from ganeval.features import get_extractor
    from ganeval.stats import compute_stats, save_stats

    dist = from_env(args.distributed)
    kwargs = {"device": args.device, "precision": args.precision}
    if args.extractor.startswith("inception"):
        kwargs["weights_path"] = args.inception_weights
    if args.extractor == "custom":
        kwargs.update(network=args.feature_network, network_kwargs=args.feature_network_kwargs)
    elif args.feature_network is not None:
        from ganeval.errors import GanevalError

        raise GanevalError("--feature-network goes with --extractor custom")
    extractor = get_extractor(args.extractor, **kwargs)
    chunks: dict[int, torch.Tensor] = {}
    on_batch = (lambda i, f: chunks.__setitem__(i, f["pool"].cpu())) if args.save_features else None
    stats = compute_stats(
        args.dataset, extractor, args.batch_size, args.data_dir, args.limit, on_batch,
        command="ganeval " + shlex.join(sys.argv[1:]), dist=dist, progress=args.progress,
    )
    features = dist.gather_to_main(chunks, -(-stats.meta["n"] // args.batch_size)) if args.save_features else None
    if not dist.all_ok(True):
        return EXIT_FAILED
    if not dist.is_main:
        return 0
    save_stats(args.out, stats)
    if features is not None:
        with atomic_path(args.save_features) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, torch.cat(features).numpy().astype(np.float32))
    print(f"wrote {args.out} (N={stats.meta['n']}, {stats.meta['seconds']} s, {dist.world} process(es))")
    return 0
