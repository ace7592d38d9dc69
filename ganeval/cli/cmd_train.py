"""``ganeval train``: train a bundled GAN (``mlp``: the seed's network; ``dcgan``) with resumable checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganeval.names import PRECISIONS

#: The early-stopping and seed-screening flags' defaults, set once the flags are known to be read (each flag parses
#: to None, so that one given without ``--early-stop`` / ``--screen-seeds`` is refused rather than ignored).
EARLY_STOP_DEFAULTS = {"patience": 3, "stop_threshold": 0.10, "stop_metric": "mnist_fd", "stop_samples": 2000,
                       "stop_precision": "fp32"}
SCREEN_DEFAULTS = {"screen_metric": "mnist_fd", "screen_samples": 2000, "screen_only": False}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval train``: the bundled MNIST GANs, with early stopping and seed screening."""
    p = sub.add_parser("train", help="train a bundled GAN on MNIST, writing checkpoints (resumable)",
                       description="Train a bundled GAN on MNIST-train. Unset hyper-parameters take the model's recipe "
                                   "(mlp: lr 2e-4, batch 32, 30000 iterations; dcgan and dcgan_info: lr 2e-4, batch 64, 30000 "
                                   "iterations) or, with --resume, the values stored in the run.")
    p.add_argument("--model", default=None,
                   help="mlp (default; the seed's network), dcgan, or dcgan_info (dcgan with an InfoGAN discrete code)")
    p.add_argument("--out", required=True, type=Path, help="run folder (must be empty or new unless --resume)")
    p.add_argument("--iterations", type=int, default=None, help="total generator steps (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate of G and D")
    p.add_argument("--n-critic", type=int, default=None, help="D steps per G step (default 1)")
    p.add_argument("--lr-decay-start", type=int, default=None, metavar="T",
                   help="after iteration T, decay the learning rate linearly toward 0 at the last iteration (default: "
                        "constant); a constant-rate run takes one on --resume if T is at or after its current iteration")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                   help="fp32 (default) or bf16: forward passes under bf16 autocast with channels_last, ~2.65x faster "
                        "on a CPU with AMX; weights and checkpoints stay fp32; kept on --resume")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--checkpoint-every", type=int, metavar="K",
                   help="checkpoint every K iterations (default 1000; with --resume, the run's own)")
    p.add_argument("--log-every", type=int, metavar="N",
                   help="log a row to train_log.csv every N iterations (default 100; with --resume, the run's own)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its train_state.safetensors")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: GANEVAL_DATA_DIR or the user cache)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--stop-file", type=Path, default=None, metavar="PATH",
                   help="pause (resumable) at the first checkpoint after PATH appears, e.g. raised by ganeval watch "
                        "--stop-file PATH; it must not exist at the start")
    s = p.add_argument_group("seed screening (docs/training.md#seed-screening)")
    s.add_argument("--screen-seeds", default=None, metavar="S1,S2,...",
                   help="train each seed to --screen-iterations in OUT/seed_S, score it, and finish only the best")
    s.add_argument("--screen-iterations", type=int, default=None, metavar="K", help="where the seeds are compared")
    s.add_argument("--screen-metric", default=None, choices=["mnist_fd", "class_kl", "mnist_is"],
                   help="what picks the seed (default mnist_fd, lower is better)")
    s.add_argument("--screen-samples", type=int, default=None, metavar="N", help="samples scored per seed (default 2000)")
    s.add_argument("--screen-only", action="store_true", help="screen and stop: do not finish the chosen seed")
    e = p.add_argument_group("early stopping (docs/training.md#early-stopping)")
    e.add_argument("--early-stop", action="store_true",
                   help="score every checkpoint against the best so far and stop when training has gone bad")
    e.add_argument("--patience", type=int, default=None, metavar="P",
                   help="stop after P checkpoints in a row worse than the best beyond noise (default 3)")
    e.add_argument("--stop-threshold", type=float, default=None, metavar="F",
                   help="…and worse by more than F, relative (default 0.10)")
    e.add_argument("--stop-metric", default=None, choices=["mnist_fd", "fid"],
                   help="what is compared (default mnist_fd; fid is slow on a CPU)")
    e.add_argument("--stop-samples", type=int, default=None, metavar="N", help="samples scored per checkpoint (default 2000)")
    e.add_argument("--stop-precision", choices=PRECISIONS, default=None,
                   help="feature precision of the judgements (default fp32; bf16: faster, features move ~1%%); "
                        "--precision is the training's")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval train``; returns 0 trained, 2 bad input, 130 interrupted."""
    _check_flags_read(args)
    if "bf16" in (args.precision, args.early_stop and args.stop_precision):
        import sys

        from ganeval.devices import emulated_bf16_note, resolve_device

        device = resolve_device(args.device)
        for flag, precision in (("--precision", args.precision), ("--stop-precision", args.early_stop and args.stop_precision)):
            if note := emulated_bf16_note(precision, device, flag):
                print(f"note: {note}", file=sys.stderr)
    if args.stop_file is not None and (args.early_stop or args.screen_seeds is not None or args.screen_iterations is not None):
        from ganeval.errors import GanevalError

        raise GanevalError("--stop-file is for plain training (watched by ganeval watch); --early-stop and seed "
                           "screening stop by themselves")
    if args.screen_seeds is not None or args.screen_iterations is not None:
        if args.early_stop:
            from ganeval.errors import GanevalError

            raise GanevalError("--early-stop and --screen-seeds cannot be combined: screen first, then resume the chosen "
                               "seed's run with --early-stop")
        return _screen(args)
    if args.early_stop:
        return _early_stop(args)
    from ganeval.train.loop import train

    result = train(
        args.out, args.model, iterations=args.iterations, batch_size=args.batch_size, lr=args.lr, n_critic=args.n_critic,
        lr_decay_start=args.lr_decay_start, precision=args.precision,
        seed=args.seed, device=args.device, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
        resume=args.resume, data_dir=args.data_dir, progress=not args.no_progress, stop_file=args.stop_file,
    )
    last = result.checkpoints[-1].name if result.checkpoints else "none"
    paused = (f"; paused by the stop file {args.stop_file} (remove it and --resume to continue)"
              if args.stop_file is not None and args.stop_file.exists() and result.iteration < result.target else "")
    print(f"{result.out_dir}: iteration {result.iteration}, {len(result.checkpoints)} checkpoints (last {last}), "
          f"{result.seconds:.1f} s of training{paused}")
    return 0


def _check_flags_read(args: argparse.Namespace) -> None:
    """Refuse an early-stopping flag without ``--early-stop`` and a screening flag without ``--screen-seeds`` (a run
    trained to the end with ``--patience 2`` and no early stop, silently); then fill in their defaults."""
    from ganeval.errors import GanevalError

    for needs, given, defaults in (("--early-stop", args.early_stop, EARLY_STOP_DEFAULTS),
                                   ("--screen-seeds", args.screen_seeds is not None, SCREEN_DEFAULTS)):
        if not given and (unread := ["--" + k.replace("_", "-") for k in defaults if getattr(args, k) not in (None, False)]):
            one = len(unread) == 1
            raise GanevalError(f"{', '.join(unread)} {'goes' if one else 'go'} with {needs}: nothing reads "
                               f"{'it' if one else 'them'} without it")
        for k, v in defaults.items():
            if getattr(args, k) is None:
                setattr(args, k, v)


def _screen(args: argparse.Namespace) -> int:
    from ganeval.errors import GanevalError
    from ganeval.screening import screen_seeds

    if args.screen_seeds is None or args.screen_iterations is None:
        raise GanevalError("seed screening needs both --screen-seeds and --screen-iterations")
    if args.seed is not None or args.resume:
        raise GanevalError("--screen-seeds sets the seeds and resumes by itself: drop --seed/--resume")
    try:
        seeds = [int(s) for s in args.screen_seeds.split(",")]  # an empty item ("1,,2", "1,2,") is refused too
    except ValueError as exc:
        raise GanevalError(f"--screen-seeds must be integers separated by commas (got {args.screen_seeds!r})") from exc
    result = screen_seeds(
        args.out, seeds, args.screen_iterations, metric=args.screen_metric, num_samples=args.screen_samples,
        finish=not args.screen_only, device=args.device, progress=not args.no_progress, model=args.model,
        iterations=args.iterations, batch_size=args.batch_size, lr=args.lr, n_critic=args.n_critic,
        lr_decay_start=args.lr_decay_start, precision=args.precision, checkpoint_every=args.checkpoint_every,
        log_every=args.log_every, data_dir=args.data_dir,
    )
    print(result.table.drop(columns=["checkpoint"]).to_string(index=False))
    print(f"chosen: seed {result.chosen} by {result.metric}; screen: {args.out / 'screen.json'}")
    if result.final is not None:
        print(f"{result.final.out_dir}: iteration {result.final.iteration}, {result.final.seconds:.1f} s of training")
    return 0


def _early_stop(args: argparse.Namespace) -> int:
    from ganeval.early_stop import REPORT_NAME, EarlyStopper, train_with_early_stop

    stopper = EarlyStopper(args.stop_metric, args.patience, args.stop_threshold, args.stop_samples, device=args.device,
                            precision=args.stop_precision)
    res = train_with_early_stop(
        args.out, stopper, resume=args.resume, checkpoint_every=args.checkpoint_every, model=args.model,
        iterations=args.iterations, batch_size=args.batch_size, lr=args.lr, n_critic=args.n_critic,
        lr_decay_start=args.lr_decay_start, precision=args.precision, seed=args.seed, device=args.device,
        log_every=args.log_every, data_dir=args.data_dir, progress=not args.no_progress,
    )
    last = res.stopper.history[-1] if res.stopper.history else {}
    diverged = last.get("verdict") == "diverged"
    how = (f"stopped at iteration {res.train.iteration}: {args.patience} checkpoint(s) in a row worse than the best by "
           f"more than {100 * args.stop_threshold:g}% beyond noise{' or diverged' if diverged else ''}" if res.stopped else
           f"ran to iteration {res.train.iteration} {'and diverged' if diverged else 'without going bad'}")
    if diverged:
        how += f" ({args.stop_metric} inf: the samples hold NaN/Inf values)"
    print(f"{res.train.out_dir}: {how}; best {res.stopper.best} ({args.stop_metric} {res.stopper.best_value:.4g}; "
          f"last {last.get('value', float('nan')):.4g}); {args.out / REPORT_NAME}")
    return 0
