"""``ganeval train-classifier``: train the MNIST-domain classifier used by the ``mnist`` extractor."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval train-classifier``: the MNIST feature network behind the mnist_* metrics."""
    p = sub.add_parser("train-classifier", help="train the MNIST classifier behind the 'mnist' extractor (deterministic)")
    p.add_argument("--epochs", type=int, default=12, help="passes over the 60,000 training images (default 12)")
    p.add_argument("--seed", type=int, default=0, help="seeds initialisation, dropout, shuffling, augmentation")
    p.add_argument("--out", type=Path, default=Path("mnist_classifier.safetensors"),
                   help="output .safetensors (default: mnist_classifier.safetensors here; name "
                        "ganeval/pretrained/mnist_classifier.safetensors to replace the shipped weights)")
    p.add_argument("--device", default="cpu", help="cpu (default, reproducible), cuda or auto")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads, 1 to 1024 (default: torch's; results are reproducible per thread count)")
    p.add_argument("--limit", type=int, default=None, help="only the first N training images, 2 or more (for tests)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval train-classifier``; returns 0 written, 2 bad input."""
    from ganeval.atomic import output_file
    from ganeval.errors import GanevalError
    from ganeval.features.mnist_classifier import SHIPPED_WEIGHTS
    from ganeval.threads import check_threads, cpu_threads
    from ganeval.train.classifier import train_and_save
    from ganeval.train.recipes import seed_problem

    if args.epochs < 1:
        raise GanevalError(f"--epochs must be at least 1, not {args.epochs}")
    if args.limit is not None and args.limit < 1:
        raise GanevalError(f"--limit must be a positive number of images, not {args.limit}")
    if args.limit == 1:
        raise GanevalError("--limit 1 is too few: the classifier's BatchNorm1d trains on batches of 2 or more images")
    if args.threads is not None:  # torch.set_num_threads(-1) raised a RuntimeError traceback; 0 meant the default
        check_threads(args.threads)
    if (problem := seed_problem(args.seed)) is not None:  # torch.manual_seed would raise an overflow traceback
        raise GanevalError(f"--seed {problem}")
    out = output_file(args.out, "--out")  # before training (46 min for the recipe), not found by the write after it
    command = "ganeval " + shlex.join(sys.argv[1:])
    with cpu_threads(args.threads):  # restored afterwards (the CLI also runs in-process, e.g. in tests)
        trained, digest = train_and_save(out, args.epochs, args.seed, args.device, args.data_dir, args.limit, command)
    print(f"wrote {out}: test accuracy {trained.test_accuracy:.4%} (10,000 images), {trained.seconds:.0f} s training")
    ship = "" if out.resolve() == SHIPPED_WEIGHTS.resolve() else f", copy it to {SHIPPED_WEIGHTS}"
    print(f"sha256 {digest}  (to ship it{ship} and update WEIGHTS_SHA256 in ganeval/features/mnist_classifier.py)")
    return 0
