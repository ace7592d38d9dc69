"""``ganeval watch RUN``: judge each checkpoint as a trainer writes it; raise a stop file when training has gone bad."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ganeval.cli.arguments import ListAction
from ganeval.errors import EXIT_FAILED, EXIT_OK, GanevalError
from ganeval.names import METRIC_NAMES, PRECISIONS


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval watch``: judge each checkpoint of a running trainer as it lands."""
    from ganeval.options import ScoreOptions

    p = sub.add_parser("watch", help="judge checkpoints as training writes them; raise a stop file when it goes bad",
                       description="Watch a run folder while any trainer writes checkpoints into it. Each new checkpoint "
                                   "is compared with the best so far (paired interval, the rule of train --early-stop); "
                                   "after PATIENCE in a row are worse beyond noise, confirmed on fresh latents, the stop "
                                   "file is written and the watch ends. docs/training.md#watching-a-run")
    p.add_argument("run", type=Path, metavar="RUN", help="the run's checkpoint folder (ckpt_*.safetensors); may not exist yet")
    p.add_argument("--stop-file", type=Path, default=None, metavar="PATH",
                   help="written (JSON) when the rule fires; ganeval train --stop-file PATH pauses at its next checkpoint")
    p.add_argument("--interval", type=float, default=30.0, metavar="S", help="seconds between looks at the folder (default 30)")
    p.add_argument("--idle-timeout", type=float, default=3600.0, metavar="S",
                   help="end after S seconds without a new checkpoint (default 3600; 0: never)")
    p.add_argument("--until", type=int, default=None, metavar="ITER", help="end once a checkpoint at or past ITER is judged")
    p.add_argument("--settle", type=float, default=5.0, metavar="S",
                   help="judge a checkpoint only once unchanged for S seconds (for trainers that write in place; default 5)")
    p.add_argument("--patience", type=int, default=3, metavar="P",
                   help="stop after P checkpoints in a row worse than the best beyond noise (default 3)")
    p.add_argument("--stop-threshold", type=float, default=0.10, metavar="F", help="…and worse by more than F, relative (default 0.10)")
    p.add_argument("--stop-metric", default="mnist_fd", choices=["mnist_fd", "fid", "custom_fd"],
                   help="what is compared (default mnist_fd; fid is slow on a CPU; custom_fd: your --feature-network's FD)")
    p.add_argument("--reference", default=None, help="reference statistics (default mnist-train; a folder for custom_fd)")
    p.add_argument("--feature-network", default=None, metavar="MODULE:NAME", help="your feature network, for custom_fd")
    p.add_argument("--feature-network-kwargs", default=None, metavar="JSON", help="its constructor arguments")
    p.add_argument("--num-samples", type=int, default=2000, metavar="N", help="samples scored per checkpoint (default 2000)")
    p.add_argument("--bootstrap", type=int, default=100, metavar="B",
                   help="bootstrap replicates of the paired interval (default 100; at least 2)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="feature precision of the judgements and the report (default fp32; bf16: faster, features move ~1%%)")
    p.add_argument("--report", action="store_true",
                   help="also rewrite OUT/report/ (ganeval score's report) after each new checkpoint")
    p.add_argument("--report-metrics", action=ListAction, valid=list(METRIC_NAMES), default=list(ScoreOptions().metrics),
                   metavar="METRIC", help="metrics of that report, space- or comma-separated (default: score's defaults)")
    p.add_argument("--real-floor", nargs="?", const="auto", default=None, metavar="DATA",
                   help="with --report: also held-out real images scored like a checkpoint at the same N, the floor to read "
                        "the report against (default the MNIST split the reference is not; scored once, then cached)")
    p.add_argument("--out", type=Path, default=None, help="where watch.json and report/ go (default RUN)")
    g = p.add_argument_group("your own generator's weight files (docs/inputs.md#your-own-generator-class)")
    g.add_argument("--generator", default=None, metavar="MODULE:NAME",
                   help="judge RUN's weight files (.pt/.pth/...; the last number in a name is its iteration) with this class")
    g.add_argument("--generator-kwargs", default=None, metavar="JSON", help="its constructor arguments")
    g.add_argument("--state-key", default=None, metavar="KEY", help="where in each file the generator's weights are")
    g.add_argument("--pattern", default=None, metavar="GLOB",
                   help="only the weight files matching GLOB, e.g. 'G_*.pt' when D_*.pt are saved beside them")
    g.add_argument("--z-dim", type=int, default=None, metavar="N", help="latent size, when the module has no nz-like attribute")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval watch`` until the run ends or goes bad; returns its exit code (130 on Ctrl-C)."""
    from ganeval.devices import emulated_bf16_note, resolve_device
    from ganeval.distributed import refuse_torchrun
    from ganeval.early_stop import EarlyStopper
    from ganeval.interrupts import sigterm_as_interrupt
    from ganeval.options import ScoreOptions
    from ganeval.watching import watch

    refuse_torchrun("watch")  # every rank would poll, judge and write on its own (and could judge different sets)
    hints = {k: v for k in ("generator", "generator_kwargs", "state_key", "z_dim") if (v := getattr(args, k)) is not None}
    if (hints or args.pattern is not None) and "generator" not in hints:
        raise GanevalError("--generator-kwargs, --state-key, --pattern and --z-dim need --generator MODULE:NAME")
    if "generator" in hints:  # import and build it once now: a bad spec is a usage error, not a failed checkpoint
        from ganeval.sources.state_dicts import resolve_spec

        resolve_spec(hints["generator"], hints.get("generator_kwargs"))
    if (args.stop_metric == "custom_fd") != (args.feature_network is not None):
        raise GanevalError("--stop-metric custom_fd and --feature-network go together")
    extra = {**hints, **{k: v for k in ("reference", "feature_network", "feature_network_kwargs")
                         if (v := getattr(args, k)) is not None}}
    stopper = EarlyStopper(args.stop_metric, args.patience, args.stop_threshold, args.num_samples, args.bootstrap,
                           device=args.device, precision=args.precision, extra=extra)
    if note := emulated_bf16_note(args.precision, resolve_device(args.device)):  # once, not at every judgement
        print(f"note: {note}", file=sys.stderr)
    if args.real_floor is not None and not args.report:
        raise GanevalError("--real-floor goes with --report (the floor is a row of the report)")
    if args.report_metrics != list(ScoreOptions().metrics) and not args.report:  # the judging reads --stop-metric alone
        raise GanevalError("--report-metrics goes with --report (they are the report's metrics; the judging uses "
                           "--stop-metric)")
    report = ({"metrics": tuple(args.report_metrics), "num_samples": args.num_samples, "bootstrap": args.bootstrap,
               "device": args.device, "progress": False, "real_floor": args.real_floor, "precision": args.precision}
              if args.report else None)
    with sigterm_as_interrupt() as terminated:  # SIGTERM ends the watch as Ctrl-C does: record saved, folder removed
        res = watch(args.run, stopper, interval_s=args.interval, idle_timeout_s=args.idle_timeout or None, until=args.until,
                    stop_file=args.stop_file, settle_s=args.settle, report=report, out=args.out,
                    emit=lambda line: print(line, flush=True), pattern=args.pattern or "*")
    best = f"best {stopper.best} ({stopper.metric} {stopper.best_value:.4g})" if stopper.best else "nothing judged"
    told = f"; stop file {res.stop_file}" if res.stopped and res.stop_file else ""
    failed = f"; {len(res.failed)} checkpoint(s) not judged" if res.failed else ""
    print(f"{args.run}: watch ended ({res.reason}) after {len(res.judged)} checkpoint(s); {best}{told}{failed}", flush=True)
    if res.reason == "interrupted":  # Ctrl-C: watch.json is saved, and the exit code says the watch did not end by itself
        return 128 + signal.SIGTERM if terminated else 130
    return EXIT_FAILED if res.failed else EXIT_OK
